"""Randomized layers: Gaussian noise on the input at prediction, and trainable per-layer noise (PNI).

- :class:`GaussianNoise` adds ``sigma * N(0, I)`` to its input, in training *and* at evaluation (a randomized
  defence is random when it is attacked). :func:`with_input_noise` puts one in front of a trained model:
  the prediction becomes ``f(x + eta)``, the "noise injection at predict" of Araujo et al. (2020). The wrapped
  model is self-describing (registered architecture "input_noise": the inner model's ``arch_config`` and
  ``sigma``), so ``helpers.core.models.load`` rebuilds it, noise included.
- :class:`ParametricNoise` is the building block of Parametric Noise Injection (He, Rakin & Fan 2019):
  ``v + alpha * std(v) * N(0, I)`` with one trainable scale ``alpha`` per layer (initialised at 0.25, the
  paper's value); ``std(v)`` is detached, so the gradient reaches ``alpha`` and ``v`` but not the scale.
  :class:`NoisyConv2d` and :class:`NoisyLinear` apply it to their weights (PNI-W, ``target="weight"``) or to
  their input activations (PNI-A, ``target="input"``). PNI trains ``alpha`` adversarially: with clean
  training alone it would shrink to 0; weight decay must not reach it (see :func:`noise_parameters`).

Every noisy module draws from torch's global generator, so a seeded run gives the same draws on the CPU, and
has an ``enabled`` flag: :func:`set_noise` switches all of a model's noise off (a deterministic twin) or on.
Attacks on these models must average gradients over draws (EOT, ``eot_samples`` in :mod:`helpers.core.attacks`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from helpers.core.models.registry import architecture, describe, rebuild
from helpers.core.params import check_choice, check_nonnegative

TARGETS = ("weight", "input")


class GaussianNoise(nn.Module):
    """``x + sigma * N(0, I)``, clipped to ``clip`` (``None``: unclipped), in train and eval mode alike."""

    def __init__(self, sigma: float, *, clip: tuple[float, float] | None = (0.0, 1.0)) -> None:
        super().__init__()
        self.sigma = check_nonnegative("sigma", sigma)
        self.clip = clip
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.sigma == 0:
            return x
        out = x + self.sigma * torch.randn_like(x)
        return out if self.clip is None else out.clamp(self.clip[0], self.clip[1])

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}, clip={self.clip}"


def with_input_noise(model: nn.Module, sigma: float) -> nn.Sequential:
    """``x -> model(x + sigma * N(0, I))``: noise injection at prediction in front of a trained model.

    The model is shared, not copied: the wrapper adds no parameters. When ``model`` was built by a registered
    builder, the wrapper records itself as :func:`input_noise` of the model's ``arch_config``, so it can be
    saved and loaded like any other model (a bare ``nn.Module`` is wrapped all the same, without that record).
    """
    wrapped = nn.Sequential(GaussianNoise(sigma), model)
    if getattr(model, "arch_config", None) is not None:
        # the record input_noise(describe(model), sigma) would make, without building (and discarding) a twin
        wrapped.arch_config = {
            "name": "input_noise",
            "module": __name__,
            "kwargs": {"inner": describe(model), "sigma": float(sigma)},
        }
    return wrapped


@architecture("input_noise")
def input_noise(inner: dict, sigma: float) -> nn.Sequential:
    """A fresh :func:`with_input_noise` model: the inner model rebuilt from its ``arch_config`` (random weights,
    which :func:`helpers.core.models.load` then replaces), behind Gaussian noise of std ``sigma`` in pixel units."""
    return nn.Sequential(GaussianNoise(float(sigma)), rebuild(inner))


class ParametricNoise(nn.Module):
    """``v + alpha * std(v).detach() * N(0, I)`` with a trainable scalar ``alpha`` (He et al. 2019)."""

    def __init__(self, alpha: float = 0.25) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(check_nonnegative("alpha", alpha))))
        self.enabled = True

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return v
        scale = v.detach().std() if v.numel() > 1 else v.new_tensor(0.0)
        return v + self.alpha * scale * torch.randn_like(v)


class _NoisyLayer:
    """What PNI adds to a layer: a ``target`` ("weight" or "input") and its trainable noise scale."""

    weight: torch.Tensor

    def _init_noise(self, target: str, alpha: float) -> None:
        self.target = check_choice("target", target, TARGETS)
        self.noise = ParametricNoise(alpha)

    def _noisy(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, weight) with one noise draw on the chosen target."""
        if self.target == "input":
            return self.noise(x), self.weight
        return x, self.noise(self.weight)


class NoisyConv2d(_NoisyLayer, nn.Conv2d):
    """A convolution with parametric noise on its weight (PNI-W) or on its input (PNI-A).

    Same constructor as ``nn.Conv2d`` plus ``target`` ("weight" or "input") and ``alpha`` (initial scale).
    """

    def __init__(self, *args: object, target: str = "weight", alpha: float = 0.25, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._init_noise(target, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(*self._noisy(x), self.bias)


class NoisyLinear(_NoisyLayer, nn.Linear):
    """A linear layer with parametric noise on its weight (PNI-W) or on its input (PNI-A)."""

    def __init__(self, *args: object, target: str = "weight", alpha: float = 0.25, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._init_noise(target, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(*self._noisy(x), self.bias)


NOISY = (GaussianNoise, ParametricNoise)


def noise_modules(model: nn.Module) -> Iterator[nn.Module]:
    """Every noise source inside ``model``."""
    return (m for m in model.modules() if isinstance(m, NOISY))


def set_noise(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch every noise source of ``model`` on or off (off: a deterministic model); returns ``model``."""
    for m in noise_modules(model):
        m.enabled = bool(enabled)
    return model


def is_randomized(model: nn.Module) -> bool:
    """Whether ``model`` has an enabled noise source (then attacks need EOT)."""
    return any(m.enabled and not (isinstance(m, GaussianNoise) and m.sigma == 0) for m in noise_modules(model))


def noise_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(noise scales, other parameters)``: give the scales their own optimizer group without weight decay."""
    scales = [m.alpha for m in model.modules() if isinstance(m, ParametricNoise)]
    ids = {id(p) for p in scales}
    return scales, [p for p in model.parameters() if id(p) not in ids]


def noise_scales(model: nn.Module) -> list[float]:
    """The current ``alpha`` of every :class:`ParametricNoise`, in module order (for learning curves)."""
    return [float(m.alpha.detach()) for m in model.modules() if isinstance(m, ParametricNoise)]
