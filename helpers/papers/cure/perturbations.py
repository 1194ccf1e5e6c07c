"""Minimal l2 perturbations: DeepFool, its targeted form, the report's runner-up recipe, bisection refinement.

DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016) linearises the classifier around the current point and steps
to the nearest linearised boundary; :func:`push_to_class` is its targeted form and :func:`runner_up_attack` the
recipe of Bardusco & Carreau (2021) (ascend until the runner-up class overtakes the true one).
:func:`minimal_perturbation` refines DeepFool's answer by bisection along its direction and
:func:`minimal_perturbation_norm` gives the l2 size of that smallest perturbation.

Threat model: white box, l2, no budget: each attack finds a small perturbation rather than the worst one in a
ball. The contract is that of :mod:`helpers.core.attacks`: images (B, C, H, W) float in [0, 1] (normalisation is
a model layer), distances in those pixel units, gradients by ``torch.autograd.grad`` on the input only, inputs
never modified, the model's mode left to the caller (eval for all of this); every attack takes ``clip``
(``(0.0, 1.0)`` by default: the result is a valid image; ``None`` for points of R^d, such as toy problems) and
returns a new, detached tensor shaped like its input.
"""

from __future__ import annotations

import math

import torch

from helpers.core.attacks import Clip, Model, per_sample, per_sample_norm
from helpers.core.params import check_int, check_nonnegative

_TINY = 1e-12


@torch.no_grad()
def predict(model: Model, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Predicted labels (N,) for inputs (N, ...), in chunks of ``batch_size`` (no autograd graph)."""
    out = [model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def _bounded(x: torch.Tensor, clip: Clip) -> torch.Tensor:
    return x if clip is None else x.clamp(clip[0], clip[1])


def _deepfool(
    model: Model, x: torch.Tensor, candidates: int, overshoot: float, max_iter: int, clip: Clip
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`deepfool`'s images and whether each one changed label (bool (B,)), as the loop saw it."""
    candidates = check_int("candidates", candidates, low=2)
    overshoot = check_nonnegative("overshoot", overshoot)
    max_iter = check_int("max_iter", max_iter, low=1)
    x0 = x.detach()
    with torch.no_grad():
        logits0 = model(x0)
    k = min(candidates, logits0.shape[1])
    classes = logits0.argsort(dim=1, descending=True)[:, :k]  # (B, k); column 0 is the original label
    orig = classes[:, 0]
    r_tot = torch.zeros_like(x0)
    x_adv = x0.clone()
    active = torch.ones(len(x0), dtype=torch.bool, device=x0.device)
    for _ in range(max_iter):
        idx = active.nonzero().flatten()
        if len(idx) == 0:
            break
        xi = (x0[idx] + r_tot[idx]).requires_grad_(True)
        with torch.enable_grad():
            logits = model(xi)
            f = logits.gather(1, classes[idx])  # (b, k)
            diffs = f[:, 1:] - f[:, :1]  # f_k - f_o, (b, k-1)
            grads = []
            for j in range(k - 1):
                (g,) = torch.autograd.grad(diffs[:, j].sum(), xi, retain_graph=j < k - 2)
                grads.append(g)
        w = torch.stack(grads, 1)  # (b, k-1, C, H, W)
        w_norm = w.flatten(2).norm(dim=2) + _TINY  # (b, k-1)
        dist = diffs.detach().abs() / w_norm
        best = dist.argmin(1)
        ar = torch.arange(len(idx), device=x0.device)
        # the 1e-4 lands the linearised step strictly past the boundary, not on it
        step = (diffs.detach()[ar, best].abs() + 1e-4) / w_norm[ar, best] ** 2
        r_tot[idx] = r_tot[idx] + per_sample(step, xi) * w[ar, best]
        x_adv[idx] = _bounded(x0[idx] + (1 + overshoot) * r_tot[idx], clip)
        with torch.no_grad():
            still = model(x_adv[idx]).argmax(1) == orig[idx]
        active[idx] = still
    return x_adv.detach(), ~active


def deepfool(
    model: Model,
    x: torch.Tensor,
    *,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """Untargeted l2 DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016), batched.

    For each input, the ``candidates`` classes with the highest initial logits (the original class first)
    are the possible destinations; at each step the classifier is linearised and the input moves to the
    nearest linearised boundary, ``r = |f_k - f_o| / ||w_k||^2 * w_k`` with ``w_k = grad(f_k - f_o)``. The
    accumulated step is scaled by ``1 + overshoot`` so the point lands just past the boundary. Samples stop
    as soon as their label changes.

    ``x``: (B, C, H, W) in [0, 1]. Returns the perturbed images (within ``clip``), detached; those that did not
    change label within ``max_iter`` steps are where the search stopped (compare ``predict`` on both to tell).
    """
    return _deepfool(model, x, candidates, overshoot, max_iter, clip)[0]


def push_to_class(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """Targeted l2 DeepFool: move each input to the nearest point (linearised) classified as ``target``.

    At each step the current strongest other class ``k`` is found and the input moves along
    ``w = grad(f_target - f_k)`` by ``(f_k - f_target) / ||w||^2``; the accumulated move is scaled by
    ``1 + overshoot``. Inputs already classified as ``target`` are returned unchanged. This is the
    "push back into the region" step of :func:`helpers.papers.cure.paths.connect` and makes the adversarial
    pairs of Table 2.

    ``x``: (B, ...) (images in [0, 1] unless ``clip=None``); ``target``: (B,) int64. Returns the moved inputs,
    detached; ``predict(model, x_new) == target`` tells which reached their class within ``max_iter`` steps.
    """
    overshoot = check_nonnegative("overshoot", overshoot)
    max_iter = check_int("max_iter", max_iter, low=1)
    x0 = x.detach()
    target = target.to(x0.device)
    r_tot = torch.zeros_like(x0)
    x_new = x0.clone()
    with torch.no_grad():
        active = model(x0).argmax(1) != target
    for _ in range(max_iter):
        idx = active.nonzero().flatten()
        if len(idx) == 0:
            break
        xi = (x0[idx] + r_tot[idx]).requires_grad_(True)
        t = target[idx]
        with torch.enable_grad():
            logits = model(xi)
            other = logits.detach().clone()
            other.scatter_(1, t[:, None], -math.inf)
            k = other.argmax(1)
            gap = logits.gather(1, k[:, None])[:, 0] - logits.gather(1, t[:, None])[:, 0]  # > 0 while not there
            (w,) = torch.autograd.grad(-gap.sum(), xi)  # grad of f_target - f_k
        w_norm = per_sample_norm(w) + _TINY
        step = (gap.detach().clamp_min(0) + 1e-4) / w_norm**2
        r_tot[idx] = r_tot[idx] + per_sample(step, xi) * w
        x_new[idx] = _bounded(x0[idx] + (1 + overshoot) * r_tot[idx], clip)
        with torch.no_grad():
            active[idx] = model(x_new[idx]).argmax(1) != t
    return x_new.detach()


def runner_up_attack(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """The report's adversarial examples (Bardusco & Carreau 2021, Sec. 2.1.1), for adversarial fine-tuning.

    Threat model: white box, l2, no budget; the perturbation is as small as the linearised steps make it.
    For each correctly classified image, gradient ascent on the input (with DeepFool's step length) until
    the class that was initially second most probable overtakes the true class ``y``; misclassified images
    are returned unchanged. ``x``: (B, C, H, W) in [0, 1]; returns a detached tensor within ``clip``. The
    ``(model, x, y) -> x_adv`` signature fits :class:`helpers.core.training.Adversary`.
    """
    x0 = x.detach()
    with torch.no_grad():
        logits = model(x0)
    correct = logits.argmax(1) == y
    out = x0.clone()
    if correct.any():
        runner_up = logits.topk(2, dim=1).indices[:, 1]
        idx = correct.nonzero().flatten()
        out[idx] = push_to_class(model, x0[idx], runner_up[idx], overshoot=overshoot, max_iter=max_iter, clip=clip)
    return out


def _minimal(
    model: Model,
    x: torch.Tensor,
    candidates: int,
    overshoot: float,
    max_iter: int,
    bisection_steps: int,
    clip: Clip,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`minimal_perturbation`'s images and whether DeepFool changed each one's label (bool (B,))."""
    bisection_steps = check_int("bisection_steps", bisection_steps, low=0)
    x0 = x.detach()
    labels = predict(model, x0)
    x_adv, flipped = _deepfool(model, x0, candidates, overshoot, max_iter, clip)
    delta = x_adv - x0
    lo = torch.zeros(len(x0), device=x0.device)
    hi = torch.ones(len(x0), device=x0.device)
    for _ in range(bisection_steps):
        mid = (lo + hi) / 2
        with torch.no_grad():
            changed = model(_bounded(x0 + per_sample(mid, x0) * delta, clip)).argmax(1) != labels
        hi = torch.where(changed, mid, hi)
        lo = torch.where(changed, lo, mid)
    return _bounded(x0 + per_sample(hi, x0) * delta, clip).detach(), flipped


def minimal_perturbation(
    model: Model,
    x: torch.Tensor,
    *,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    bisection_steps: int = 12,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """The smallest label-changing point found on DeepFool's ray: DeepFool, then bisection along its direction.

    DeepFool's point ``x + delta`` changes the label; the bisection finds the smallest ``s`` in [0, 1] such
    that ``x + s * delta`` (within ``clip``) still does, which removes the overshoot and the linearisation's
    slack. ``x``: (B, C, H, W) in [0, 1]. Returns the images ``x + s * delta`` (B, C, H, W), detached; where
    DeepFool did not change the label, its last point (see :func:`minimal_perturbation_norm`).
    """
    return _minimal(model, x, candidates, overshoot, max_iter, bisection_steps, clip)[0]


def minimal_perturbation_norm(
    model: Model,
    x: torch.Tensor,
    *,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    bisection_steps: int = 12,
    clip: Clip = (0.0, 1.0),
    batch_size: int = 50,
) -> torch.Tensor:
    """l2 norm of :func:`minimal_perturbation`'s perturbation, per image: (B,) float on the CPU, pixel units.

    ``inf`` where DeepFool did not change the label within ``max_iter`` steps (no perturbation found). The
    images are attacked ``batch_size`` at a time (the chapter's Table 1 and suite comparison use 50), which
    bounds the memory of DeepFool's per-class gradients.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    norms = []
    for i in range(0, len(x), batch_size):
        x0 = x[i : i + batch_size].detach()
        x_min, flipped = _minimal(model, x0, candidates, overshoot, max_iter, bisection_steps, clip)
        n = per_sample_norm(x_min - x0)
        norms.append(torch.where(flipped, n, torch.full_like(n, math.inf)).cpu())
    return torch.cat(norms) if norms else torch.zeros(0)
