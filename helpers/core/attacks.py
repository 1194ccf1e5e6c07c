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
- NES, Ilyas et al. (2018), "Black-box adversarial attacks with limited queries and information": a
  query-limited (black-box) l-inf PGD whose gradients are antithetic finite-difference estimates of
  ``P(y|x)`` along Gaussian directions (:func:`nes_gradient`, :func:`nes_pgd`); it only calls the model
  forward, under ``no_grad``.

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

from helpers.core.params import check_choice, check_int, check_nonnegative

NORMS = ("linf", "l2")
ATTACKS = ("none", "noise", "fgsm", "fgsm_rs", "pgd", "pgd_l2", "fgm_l2")

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


def per_sample_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-sample l2 norm of a (B, ...) tensor, shape (B,): the one norm helper of every attack."""
    return v.flatten(1).norm(p=2, dim=1)


def per_sample(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor of per-sample scalars viewed as (B, 1, ..., 1), to scale tensors shaped like ``like``."""
    return s.view(-1, *([1] * (like.dim() - 1)))


def _flat_norm(v: torch.Tensor) -> torch.Tensor:
    return per_sample(per_sample_norm(v), v)


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
    eot_samples: int = 1,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015); with ``norm="l2"`` the fast gradient method.

    ``x``: (B, C, H, W) in [0, 1]; ``y``: (B,) labels (the target labels when ``targeted``). One step of
    size ``eps`` along the steepest-ascent direction of the loss (descent when targeted), clipped to ``clip``
    ([0, 1]; ``None`` for unbounded data). Against a randomized model ``eot_samples`` > 1 averages the
    gradient over that many forward/backward passes (EOT, Athalye et al. 2018). Returns a detached tensor;
    ``eps=0`` returns a copy of ``x``.
    """
    eps = _check(eps, norm)
    x = x.detach()
    if eps == 0:
        return x.clone()
    g = input_gradient(model, x, y, loss_fn=loss_fn, eot_samples=eot_samples)
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

    ``name``: "none" (identity), "noise" (uniform l-inf noise), "fgsm" (l-inf), "fgm_l2", "pgd" (l-inf),
    "pgd_l2", or "fgsm_rs": FGSM with a random start (Wong, Rice & Kolter 2020, "Fast is better than free"),
    a uniform start in the l-inf ball, one signed step of ``alpha`` (default 1.25 eps), projected back; the
    training attack of fast adversarial training (guard it with ``training.fit(collapse=...)``).
    ``alpha`` defaults to ``2.5 * eps / steps`` (Madry et al.'s rule of thumb); ``clip`` as in :func:`pgd`;
    ``eot_samples`` reaches every gradient attack (FGSM included).
    """
    check_choice("attack", name, ATTACKS)
    eps = check_nonnegative("eps", eps)
    if name == "fgsm_rs":  # Wong, Rice & Kolter (2020): one step of 1.25 eps from a uniform start, projected
        name, steps, random_start = "pgd", 1, True
        alpha = 1.25 * eps if alpha is None else alpha
    if alpha is None:
        alpha = 2.5 * eps / max(steps, 1)
    if name == "none":
        return lambda model, x, y: x.detach().clone()
    if name == "noise":
        return lambda model, x, y: uniform_noise(x, eps, generator=generator, clip=clip)
    if name in ("fgsm", "fgm_l2"):
        norm = "linf" if name == "fgsm" else "l2"
        return lambda model, x, y: fgsm(
            model, x, y, eps, norm=norm, loss_fn=loss_fn, eot_samples=eot_samples, clip=clip
        )
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


def nes_gradient(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigma: float = 0.001,
    n_samples: int = 100,
    generator: torch.Generator | None = None,
    chunk: int = 8192,
) -> torch.Tensor:
    """NES estimate of the gradient of ``P(y|x)`` (softmax probability of class ``y``) per sample.

    ``(1 / (2 n sigma)) * sum_i [P(y | x + sigma u_i) - P(y | x - sigma u_i)] u_i`` with ``u_i ~ N(0, I)`` and
    ``n = n_samples / 2`` antithetic pairs, so each estimate costs ``n_samples`` queries per image (Ilyas et
    al. 2018). ``x``: (B, ...); returns a detached (B, ...) tensor. The queries are not clipped to [0, 1]
    (``sigma`` is far below a pixel level). Directions come from ``generator`` on the CPU; the model is
    queried forward only, in batches of at most ``chunk`` images, in whatever mode the caller set.
    """
    sigma = check_nonnegative("sigma", sigma)
    n_samples = check_int("n_samples", n_samples, low=2)
    if n_samples % 2 or sigma == 0:
        raise ValueError(f"n_samples must be an even integer >= 2 and sigma > 0 (got {n_samples}, {sigma})")
    n = n_samples // 2
    x = x.detach()
    b = len(x)
    u = torch.randn((b, n, *x.shape[1:]), generator=generator).to(x.device, x.dtype)
    queries = torch.cat([x[:, None] + sigma * u, x[:, None] - sigma * u], 1).flatten(0, 1)  # (B * 2n, ...)
    labels = y.repeat_interleave(2 * n)
    probs = []
    with torch.no_grad():
        for i in range(0, len(queries), chunk):
            out = model(queries[i : i + chunk]).float().softmax(-1)
            probs.append(out.gather(1, labels[i : i + chunk, None]).squeeze(1))
    p = torch.cat(probs).view(b, 2, n)  # [:, 0] the + queries, [:, 1] the - queries
    diff = (p[:, 0] - p[:, 1]).view(b, n, *([1] * (x.dim() - 1)))
    return ((diff * u).sum(1) / (2 * n * sigma)).detach()


def nes_pgd(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    queries: int,
    *,
    n_samples: int = 100,
    sigma: float = 0.001,
    generator: torch.Generator | None = None,
    clip: Clip = (0.0, 1.0),
    chunk: int = 8192,
) -> torch.Tensor:
    """Query-limited black-box l-inf PGD with NES gradients (Ilyas et al. 2018; the document's Sec. 4).

    Threat model: the attacker sees only the predicted probabilities, ``queries`` model evaluations per image.
    It runs ``queries // n_samples`` iterations; each estimates the gradient of each image's own ``P(y|x)``
    with :func:`nes_gradient` (``n_samples`` queries) and steps ``x <- x - alpha * sign(g)`` (lowering the
    true class's probability), then projects onto the ``eps``-ball around ``x`` and onto ``clip``.
    ``x``: (B, C, H, W) in [0, 1]; returns a detached tensor within ``eps`` of ``x``; ``x`` is not modified.
    Fewer than ``n_samples`` queries leaves ``x`` unchanged (no iteration can be afforded).
    """
    eps = _check(eps, "linf")
    alpha = check_nonnegative("alpha", alpha)
    queries = check_int("queries", queries, low=0)
    x0 = x.detach()
    x_adv = x0.clone()
    if eps == 0:
        return x_adv
    for _ in range(queries // check_int("n_samples", n_samples, low=2)):
        g = nes_gradient(model, x_adv, y, sigma=sigma, n_samples=n_samples, generator=generator, chunk=chunk)
        x_adv = x_adv - alpha * g.sign()
        x_adv = _clip(x0 + project(x_adv - x0, eps, "linf"), clip)
    return x_adv.detach()
