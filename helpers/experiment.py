"""The chapter scaffold: one call from a chapter's parameters cell to a validated, seeded run.

Every chapter starts the same way::

    run = experiment.start("03_matrand_wrn", "MAT-Rand and wide ResNets", globals(), matrand.PARAMETERS,
                           check=matrand.check_parameters)
    run.dev, run.gen                          # the torch.device (HELPERS_DEVICE, auto, cuda:N...); a seeded generator
    run.show(fig, "table1")                   # saved under results/figures/03_matrand_wrn/ and displayed
    history = run.trained("basicnet-fgsm", config, lambda ckpt: training.fit(model, loader, ..., checkpoint=ckpt))
    acc = run.scored(("table1", model_key), lambda: grader.table(...))

:func:`start` reads the chapter's parameters from the notebook's namespace by the names of its rules (so each
parameter is named once, in the rules table of the chapter's document module, beside its valid range), checks
them before any compute (a ``ValueError`` names the parameter and its range), resolves the device, seeds every
generator, applies the book's figure style and returns an :class:`Experiment`, the chapter's run record
(:class:`helpers.results.Run`) with the device and two caches:

- :meth:`Experiment.trained`: train-or-load. The configuration's hash names a checkpoint under
  ``<HELPERS_CACHE>/checkpoints/``; the training function receives that path (``helpers.core.training.fit``
  resumes from it and skips what is done), and the result is kept in memory for the rest of the run.
- :meth:`Experiment.scored`: score once. A costly evaluation keyed by a configuration is computed on first use
  and reused by every later table, figure and claim of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from helpers.core import params as P
from helpers.core.device import get_device, seed_everything
from helpers.core.training import checkpoint_path, config_hash
from helpers.results import Run

T = TypeVar("T")

DEVICES = "auto, cpu, cuda, cuda:N, mps"


def _device_rule(name: str, value: Any) -> str:
    """``device``: auto (HELPERS_DEVICE if set, else the best available), cpu, cuda, cuda:N or mps."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be one of {DEVICES} (got {value!r})")
    kind, _, index = value.strip().lower().partition(":")
    if kind not in ("auto", "cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"{name} must be one of {DEVICES} (got {value!r})")
    return value


def _seed_rule(name: str, value: Any) -> Any:
    """``seed``: an integer >= 0, or a non-empty list of them (chapters that train over several seeds)."""
    if isinstance(value, (list, tuple)):
        return P.check_list(name, list(value), lambda n, v: P.check_int(n, v, low=0))
    return P.check_int(name, value, low=0)


COMMON: dict[str, P.Rule] = {
    "profile": lambda name, value: P.check_profile(value),
    "seed": _seed_rule,
    "device": _device_rule,
}


class Experiment(Run):
    """A chapter's run record (:class:`helpers.results.Run`) with its device, parameters and caches."""

    def __init__(
        self,
        chapter: str,
        title: str,
        *,
        params: Mapping[str, Any],
        dev: torch.device,
        gen: torch.Generator,
        seeds: list[int] | None = None,
    ) -> None:
        seed = seeds if seeds is not None else params["seed"]
        super().__init__(chapter, title, profile=params["profile"], seed=seed, device=dev, params=params)
        self.dev = dev
        self.gen = gen  # the CPU generator seeded with the run's seed (attack starts, noise draws)
        self._trained: dict[str, Any] = {}
        self._scored: dict[str, Any] = {}

    @property
    def seed(self) -> int:
        """The run's first seed (the one every subset, initialisation and attack start derives from)."""
        return self.seeds[0]

    def show(self, fig: Any, name: str) -> None:
        """Save ``fig`` as ``results/figures/<chapter>/<name>.png`` and display it; returns None."""
        from helpers.core import plots

        plots.show(fig, name, self.chapter)

    def trained(self, tag: str, config: Mapping[str, Any], train: Callable[[Any], T]) -> T:
        """Train-or-load: ``train(checkpoint_path)`` once per (``tag``, ``config``) in this run.

        ``config`` must hold everything that changes the result (architecture, data sizes, schedule, attack,
        seed); its hash names the checkpoint ``<cache>/checkpoints/<chapter>-<tag>-<hash>.pt`` that ``train``
        writes and resumes from, so a rerun with the same configuration loads instead of training.
        """
        key = config_hash({"tag": tag, **config})
        if key not in self._trained:
            self._trained[key] = train(checkpoint_path(f"{self.chapter}-{tag}", config))
        return self._trained[key]

    def scored(self, key: Any, compute: Callable[[], T]) -> T:
        """Score once: ``compute()`` on the first call with ``key`` (any JSON-able value), the same result after."""
        k = config_hash({"key": key})
        if k not in self._scored:
            self._scored[k] = compute()
        return self._scored[k]


def start(
    chapter: str,
    title: str,
    namespace: Mapping[str, Any],
    rules: Mapping[str, P.Rule],
    *,
    check: Callable[[dict[str, Any]], None] | None = None,
    seeds: Callable[[dict[str, Any]], list[int]] | None = None,
) -> Experiment:
    """Validate the chapter's parameters, pick the device, seed everything, set the figure style, open the record.

    - ``namespace``: the notebook's ``globals()`` after the parameters cell (papermill injects its values).
    - ``rules``: ``{name: rule}`` for every parameter of the chapter besides ``profile``, ``seed`` and
      ``device`` (:data:`COMMON` checks those); rules come from :mod:`helpers.core.params` (``integer``, ``real``,
      ``choice``...). The run's ``params`` are these values, in this order.
    - ``check``: cross-parameter constraints (``eps`` in ``eps_sweep``...), called with the checked values;
      it raises ``ValueError`` naming the parameter.
    - ``seeds``: for a chapter that trains over several seeds derived from ``seed`` (``seed, seed+1, ...``),
      a function of the checked values giving them all, so that the record and the banner list every one;
      the generators are still seeded with ``seed``.

    Nothing is computed, loaded or seeded before every check has passed.
    """
    values = P.validate(namespace, {**COMMON, **rules})
    if check is not None:
        check(values)
    device = values["device"]
    dev = get_device(None if device == "auto" else device)
    first = values["seed"][0] if isinstance(values["seed"], (list, tuple)) else values["seed"]
    gen = seed_everything(int(first))
    from helpers.core import plots

    plots.use_style()
    run = Experiment(chapter, title, params=values, dev=dev, gen=gen, seeds=seeds(values) if seeds else None)
    run.banner()
    return run
