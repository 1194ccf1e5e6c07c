"""White-box evasion attacks on classifiers with inputs in [0, 1].

Threat model: an attacker who knows the model (gradients) perturbs each input ``x`` by ``delta`` with
``||delta||_p <= eps`` (p = inf or 2), keeping ``x + delta`` a valid image in [0, 1]. Budgets ``eps`` and steps
``alpha`` are in [0, 1] pixel units, because normalization is a layer inside the model.

- FGSM, Goodfellow, Shlens & Szegedy (2015), "Explaining and harnessing adversarial examples": one step
  ``x + eps * sign(grad)`` (l-inf), or ``x + eps * grad / ||grad||_2`` (l2, the "fast gradient method").
- PGD, Madry et al. (2018), "Towards deep learning models resistant to adversarial attacks": ``steps``
  ascent steps of size ``alpha`` (sign for l-inf, ``alpha * g / ||g||_2`` for l2), each followed by projection
  onto the eps-ball around ``x`` and onto [0, 1]; optional random start, uniform in the ball.
- EOT, Athalye, Carlini & Wagner (2018), "Obfuscated gradients give a false sense of security": for
  randomized models, each step uses the gradient averaged over ``eot_samples`` forward/backward passes.

Inputs are images in [0, 1] by default. Data in physical units (the photo-z chapter's calibrated fluxes, which
may be negative) pass ``clip=None``: the attack then bounds only the perturbation, not the values.

Contract shared by every attack here (the tests check each point):
- ``model`` is any callable mapping ``x`` (B, ...) to logits (B, K); wrap models with extra inputs
  (``lambda im: net(im, ebv)``). Its mode is never changed: set it with :func:`eval_mode`.
- Gradients are taken with ``torch.autograd.grad`` with respect to the input only, so parameters' ``.grad``
  are never touched, and the input tensor is never modified.
- The result is a new, detached tensor of the same shape, in [0, 1], within ``eps`` of ``x``.
- The loss is summed over the batch (``reduction="sum"``) so each sample's gradient does not depend on the
  batch it sits in: attacking a batch equals attacking its samples one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from helpers.params import check_choice, check_int, check_nonnegative

NORMS = ("linf", "l2")
ATTACKS = ("none", "noise", "fgsm", "pgd", "pgd_l2", "fgm_l2")

Model = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AttackFn = Callable[[Model, torch.Tensor, torch.Tensor], torch.Tensor]

_TINY = 1e-12
Clip = tuple[float, float] | None


def _clip(x: torch.Tensor, clip: Clip) -> torch.Tensor:
    return x if clip is None else x.clamp_(clip[0], clip[1])


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule of ``model`` in eval mode, and restore each one's previous mode on exit.

    Restores per submodule (not just ``model.train(prev)``), so a deliberately frozen BatchNorm inside a
    training model stays as it was.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def cross_entropy_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default attack loss: cross-entropy summed over the batch."""
    return F.cross_entropy(logits.float(), y, reduction="sum")


def input_gradient(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: LossFn | None = None,
    eot_samples: int = 1,
) -> torch.Tensor:
    """Gradient of ``loss_fn(model(x), y)`` with respect to ``x`` (averaged over ``eot_samples`` draws).

    ``x``: (B, ...) float; returns a detached tensor of the same shape. Uses ``torch.autograd.grad`` on the
    input alone, so no parameter gradient is computed or accumulated.
    """
    loss_fn = loss_fn or cross_entropy_sum
    check_int("eot_samples", eot_samples, low=1)
    x = x.detach().requires_grad_(True)
    total = torch.zeros_like(x)
    with torch.enable_grad():  # attacks may be called from evaluation code running under no_grad
        for _ in range(eot_samples):
            (g,) = torch.autograd.grad(loss_fn(model(x), y), x)
            total += g
    return total / eot_samples


def _flat_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-sample l2 norm of (B, ...) as shape (B, 1, ..., 1) for broadcasting."""
    return v.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (v.dim() - 1)))


def steepest_direction(g: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit-norm ascent direction for a gradient ``g``: ``sign(g)`` (l-inf) or ``g/||g||_2`` (l2)."""
    if norm == "linf":
        return g.sign()
    return g / (_flat_norm(g) + _TINY)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project perturbations ``delta`` (B, ...) onto the ``eps``-ball of the given norm, per sample."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    factor = torch.clamp(eps / (_flat_norm(delta) + _TINY), max=1.0)
    return delta * factor


def random_in_ball(
    shape: torch.Size | tuple[int, ...],
    eps: float,
    norm: str,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draws uniform in the ``eps``-ball: a uniform cube for l-inf; for l2 a Gaussian direction with radius
    ``eps * U^(1/d)`` (d = numel per sample), which is uniform in the ball (E||delta||/eps = d/(d+1)).

    Random numbers come from a CPU generator, so a seed gives the same draws on every device.
    """
    if norm == "linf":
        return ((2 * torch.rand(shape, generator=generator) - 1) * eps).to(device)
    d = 1
    for s in shape[1:]:
        d *= s
    direction = torch.randn(shape, generator=generator)
    direction = direction / (_flat_norm(direction) + _TINY)
    radius = torch.rand(shape[0], generator=generator).pow(1.0 / d).view(-1, *([1] * (len(shape) - 1)))
    return (direction * radius * eps).to(device)


def _check(eps: float, norm: str) -> float:
    eps = check_nonnegative("eps", eps)
    check_choice("norm", norm, NORMS)
    return eps


def fgsm(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    norm: str = "linf",
    loss_fn: LossFn | None = None,
    targeted: bool = False,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015); with ``norm="l2"`` the fast gradient method.

    ``x``: (B, C, H, W) in [0, 1]; ``y``: (B,) labels (the target labels when ``targeted``). One step of
    size ``eps`` along the steepest-ascent direction of the loss (descent when targeted), clipped to ``clip``
    ([0, 1]; ``None`` for unbounded data). Returns a detached tensor; ``eps=0`` returns a copy of ``x``.
    """
    eps = _check(eps, norm)
    x = x.detach()
    if eps == 0:
        return x.clone()
    g = input_gradient(model, x, y, loss_fn=loss_fn)
    sign = -1.0 if targeted else 1.0
    return _clip(x + sign * eps * steepest_direction(g, norm), clip).detach()


def pgd(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    steps: int,
    *,
    norm: str = "linf",
    random_start: bool = False,
    loss_fn: LossFn | None = None,
    targeted: bool = False,
    eot_samples: int = 1,
    generator: torch.Generator | None = None,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """Projected gradient descent on the loss (Madry et al. 2018), l-inf or l2, optionally with EOT.

    ``x``: (B, C, H, W) in [0, 1]; ``y``: (B,) labels (target labels when ``targeted``). ``eps`` is the
    radius, ``alpha`` the step size and ``steps`` the number of iterations; ``random_start`` starts from a
    point uniform in the ball (drawn from ``generator``); ``eot_samples`` averages each step's gradient over
    that many passes, for randomized models (Athalye et al. 2018). Returns a detached tensor within ``clip``
    ([0, 1]; ``None`` for unbounded data) with ``||x_adv - x|| <= eps``.
    """
    eps = _check(eps, norm)
    alpha = check_nonnegative("alpha", alpha)
    steps = check_int("steps", steps, low=0)
    x0 = x.detach()
    if eps == 0:
        return x0.clone()
    x_adv = x0.clone()
    if random_start:
        delta = random_in_ball(x0.shape, eps, norm, generator=generator, device=x0.device)
        x_adv = _clip(x0 + delta.to(x0.dtype), clip)
    sign = -1.0 if targeted else 1.0
    for _ in range(steps):
        g = input_gradient(model, x_adv, y, loss_fn=loss_fn, eot_samples=eot_samples)
        x_adv = x_adv + sign * alpha * steepest_direction(g, norm)
        x_adv = _clip(x0 + project(x_adv - x0, eps, norm), clip)
    return x_adv.detach()


def uniform_noise(
    x: torch.Tensor, eps: float, *, generator: torch.Generator | None = None, clip: Clip = (0.0, 1.0)
) -> torch.Tensor:
    """The random baseline: ``x + U[-eps, eps]`` per pixel, clipped to ``clip``. Same budget as l-inf attacks."""
    eps = check_nonnegative("eps", eps)
    noise = (2 * torch.rand(x.shape, generator=generator) - 1).to(x.device, x.dtype) * eps
    return _clip(x.detach() + noise, clip)


def make_attack(
    name: str,
    eps: float,
    *,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = False,
    eot_samples: int = 1,
    loss_fn: LossFn | None = None,
    generator: torch.Generator | None = None,
    clip: Clip = (0.0, 1.0),
) -> AttackFn:
    """An attack by name, as an ``(model, x, y) -> x_adv`` callable for training and evaluation loops.

    ``name``: "none" (identity), "noise" (uniform l-inf noise), "fgsm" (l-inf), "fgm_l2", "pgd" (l-inf) or
    "pgd_l2". ``alpha`` defaults to ``2.5 * eps / steps`` (Madry et al.'s rule of thumb); ``clip`` as in
    :func:`pgd`.
    """
    check_choice("attack", name, ATTACKS)
    eps = check_nonnegative("eps", eps)
    if alpha is None:
        alpha = 2.5 * eps / max(steps, 1)
    if name == "none":
        return lambda model, x, y: x.detach().clone()
    if name == "noise":
        return lambda model, x, y: uniform_noise(x, eps, generator=generator, clip=clip)
    if name in ("fgsm", "fgm_l2"):
        norm = "linf" if name == "fgsm" else "l2"
        return lambda model, x, y: fgsm(model, x, y, eps, norm=norm, loss_fn=loss_fn, clip=clip)
    norm = "linf" if name == "pgd" else "l2"
    return lambda model, x, y: pgd(
        model,
        x,
        y,
        eps,
        alpha,
        steps,
        norm=norm,
        random_start=random_start,
        loss_fn=loss_fn,
        eot_samples=eot_samples,
        generator=generator,
        clip=clip,
    )
