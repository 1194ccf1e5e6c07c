"""Curvature of the loss in input space: the Hessian of the cross-entropy with respect to the input.

:func:`hessian_frobenius_sq` is Hutchinson's (1989) Monte-Carlo estimate of ``||H||_F^2`` from Hessian-vector
products (double backprop); Moosavi-Dezfooli, Fawzi, Uesato & Frossard (2019, CURE) use it to show that robust
networks are flatter (Table 1 of Bardusco & Carreau 2021). :func:`top_hessian_direction` finds the direction of
highest curvature by power iteration, the second axis of CURE's cross-sections of the decision boundary.

Inputs are (B, C, H, W) images in [0, 1] (any (B, ...) works), labels (B,) int64; the model should be in eval
mode, so the batch-summed loss has a block-diagonal Hessian and one product serves every sample at once. Random
draws come from a CPU ``generator``, so a seed gives the same probes on every device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from helpers.core.attacks import Model, per_sample, per_sample_norm
from helpers.core.params import check_int

_TINY = 1e-12


def rademacher(shape: Sequence[int], *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Independent +-1 entries with probability 1/2 each (CPU, float32), drawn from ``generator``."""
    return torch.randint(0, 2, tuple(shape), generator=generator).float() * 2 - 1


def hessian_frobenius_sq(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    samples: int = 10,
    generator: torch.Generator | None = None,
    probes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Hutchinson estimate of ``||H(x)||_F^2``, H the Hessian of the cross-entropy w.r.t. the input.

    For a symmetric H and Rademacher probes v (E[v v^T] = I), ``E ||H v||^2 = tr(H^2) = ||H||_F^2``
    (Hutchinson 1989); each ``H v`` is one Hessian-vector product by double backprop. The loss is summed over
    the batch, so with the model in eval mode the Hessian is block-diagonal and one product gives every
    sample's ``H_i v_i`` at once. (For ReLU networks, H is the Gauss-Newton part ``J^T (diag p - p p^T) J``
    almost everywhere, which is what autograd returns.)

    ``x``: (B, ...) in [0, 1]; ``y``: (B,) labels. ``probes`` (S, ...) replaces the random draws, the same
    probes for every sample (e.g. all 2^d sign vectors, which make the estimate exact). Returns (B,) float,
    per-sample estimates in (pixel units)^-4.
    """
    x0 = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x0), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x0, create_graph=True)
        if probes is None:
            samples = check_int("samples", samples, low=1)
            draws = [rademacher(x0.shape, generator=generator).to(x0) for _ in range(samples)]
        else:
            draws = [p.to(x0).expand_as(x0) for p in probes]
        total = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
        for i, v in enumerate(draws):
            (hv,) = torch.autograd.grad(g, x0, grad_outputs=v, retain_graph=i < len(draws) - 1)
            total += hv.flatten(1).pow(2).sum(1)
    return (total / len(draws)).detach()


def top_hessian_direction(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    iters: int = 20,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Leading eigenvector of the input Hessian of the cross-entropy, per sample, by power iteration.

    Each iteration is one batched Hessian-vector product (double backprop on the batch-summed loss, whose
    Hessian is block-diagonal in eval mode); the iterate is renormalised per sample. Power iteration converges
    to the eigenvalue of largest *magnitude*; for ReLU networks H is the Gauss-Newton term, positive
    semi-definite, so that is the direction of highest curvature of the loss, the axis Moosavi-Dezfooli et al.
    (2019) pair with the normal to the boundary in their cross-sections.

    ``x``: (B, C, H, W) in [0, 1]; ``y``: (B,) labels. Returns ``(v, lam)``: unit directions (B, C, H, W) and
    the Rayleigh quotients ``v^T H v`` (B,) in (pixel units)^-2, detached.
    """
    iters = check_int("iters", iters, low=1)
    x0 = x.detach().requires_grad_(True)
    v = torch.randn(x0.shape, generator=generator).to(x0)
    v = v / per_sample(per_sample_norm(v) + _TINY, v)
    lam = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x0), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x0, create_graph=True)
        for i in range(iters):
            (hv,) = torch.autograd.grad(g, x0, grad_outputs=v, retain_graph=i < iters - 1)
            lam = (hv * v).flatten(1).sum(1)
            v = hv / per_sample(per_sample_norm(hv) + _TINY, hv)
    return v.detach(), lam.detach()
