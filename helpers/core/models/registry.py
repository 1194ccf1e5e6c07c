"""Self-describing models: every architecture the book trains is built through a registered builder, which
records its own call, so a checkpoint can rebuild the model with no chapter code.

- ``@architecture("name")`` registers a builder (any function returning an ``nn.Module``); every model it
  returns carries ``arch_config = {"name", "module", "kwargs"}``: the registered name, the module that defines
  the builder, and the call's arguments (defaults filled in; tensors stored as their shape, since their values
  are weights the state dict restores).
- :func:`save` writes ``{"arch": arch_config, "model": state_dict}`` atomically; :func:`load` reads it with
  ``weights_only=True``, imports the builder's module (only modules of this package), rebuilds the model,
  loads the weights and returns it in eval mode. One call: ``models.load(path)``.

Document modules register their own builders (``helpers.papers.curriculum`` registers "curriculum"); the registry
never imports them itself: :func:`load` imports the module a checkpoint names.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers.core.io import atomic_path
from helpers.core.params import check_choice

Builder = Callable[..., nn.Module]
_BUILDERS: dict[str, Builder] = {}


def _encode(value: Any) -> Any:
    """JSON-like form of a builder argument: tensors become ``{"tensor_shape": [...]}``."""
    if isinstance(value, torch.Tensor):
        return {"tensor_shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"architecture arguments must be numbers, strings, lists or tensors (got {type(value).__name__})")


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "tensor_shape" in value:
        return torch.zeros(value["tensor_shape"], dtype=getattr(torch, value.get("dtype", "float32")))
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


def architecture(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder`` under ``name``; the models it returns remember the call (``arch_config``)."""

    def register(builder: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name].__wrapped__ is not builder:  # type: ignore[attr-defined]
            raise ValueError(f"architecture {name!r} is already registered")
        signature = inspect.signature(builder)

        @functools.wraps(builder)
        def build(*args: Any, **kwargs: Any) -> nn.Module:
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            model = builder(*args, **kwargs)
            model.arch_config = {"name": name, "module": builder.__module__, "kwargs": _encode(dict(call.arguments))}
            return model

        _BUILDERS[name] = build
        return build

    return register


def registered() -> list[str]:
    """The registered architecture names (after the modules that register them were imported)."""
    return sorted(_BUILDERS)


def create(architecture_name: str, /, **kwargs: Any) -> nn.Module:
    """Build a registered architecture by name: ``create("classifier", name="basicnet", dataset="cifar10",
    width=6)``. A document's architectures are registered when its module is imported; an unknown name raises
    ValueError listing the registered ones."""
    check_choice("architecture", architecture_name, registered())
    return _BUILDERS[architecture_name](**kwargs)


def describe(model: nn.Module) -> dict[str, Any]:
    """The model's ``arch_config``; a ValueError says how to build it when it was not built by a builder."""
    config = getattr(model, "arch_config", None)
    if config is None:
        raise ValueError(
            f"model {type(model).__name__} has no arch_config: build it with a registered builder "
            f"(one of {registered()}) so that it can be saved and loaded"
        )
    return config


def rebuild(config: dict[str, Any]) -> nn.Module:
    """A fresh model (random weights) from an ``arch_config``."""
    module = str(config.get("module", ""))
    if module != "helpers" and not module.startswith("helpers."):
        raise ValueError(f"checkpoint architecture module must be part of helpers (got {module!r})")
    importlib.import_module(module)  # registers the builder
    check_choice("architecture", config.get("name"), registered())
    return _BUILDERS[config["name"]](**_decode(config["kwargs"]))


def save(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``{"arch": arch_config, "model": state_dict}`` to ``path`` atomically."""
    state = {"arch": describe(model), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load(path: str | os.PathLike[str], map_location: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the model saved by :func:`save` at ``path``, with its weights, in eval mode."""
    if not Path(path).exists():
        raise ValueError(f"path must name a saved model; {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "arch" not in state or "model" not in state:
        raise ValueError(f"path must name a model saved with helpers.core.models.save ({path} has no 'arch')")
    model = rebuild(state["arch"])
    model.load_state_dict(state["model"])
    return model.to(map_location).eval()
