"""Decision boundaries in 2-D planes through an image: class maps, boundary curves and their curvature.

After Fawzi, Moosavi-Dezfooli, Frossard & Soatto (2018) and Moosavi-Dezfooli et al. (2019, CURE), as the report
of Bardusco & Carreau (2021) draws them (its Figs. 2-4): :func:`class_map` labels a grid of the plane
``x + s u + t v``; :func:`boundary_curve` finds, for each ``t``, where the label first changes along ``u``; and
:func:`fit_boundary_curvature` fits ``s(t) = a t^2 + b t + c`` and returns the curvature at ``t = 0``. The first
axis is :func:`adversarial_direction` (toward the runner-up adversarial example), the second a random
(:func:`orthonormal_direction`) or a chosen direction made orthogonal to it (:func:`unit_orthogonal`).

Geometry in a plane is that of the classifier as a function on R^d: plane points are not clipped to [0, 1].
An image is (C, H, W) float in [0, 1], directions have its shape, distances are l2 in pixel units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from helpers.core.attacks import Model, per_sample
from helpers.core.params import check_int, check_positive
from helpers.papers.cure.perturbations import predict, runner_up_attack

_TINY = 1e-12


def orthonormal_direction(u: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random unit vector shaped like ``u`` (one image, no batch axis), orthogonal to ``u``."""
    v = torch.randn(u.shape, generator=generator).to(u)
    un = u / (u.norm() + _TINY)
    v = v - (v * un).sum() * un
    return v / (v.norm() + _TINY)


def unit_orthogonal(d: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``d`` minus its component along the unit vector ``u``, scaled to unit length (one image, no batch axis)."""
    d = d - (d * u).sum() * u
    return d / d.norm()


def adversarial_direction(model: Model, x: torch.Tensor, y: int | torch.Tensor) -> tuple[torch.Tensor, float]:
    """Unit direction (C, H, W) from one image ``x`` (C, H, W) to its runner-up adversarial example, and the
    distance to that example (the report's first plane axis). Misclassified images have no such example and
    raise ValueError."""
    yy = torch.as_tensor([int(y)], device=x.device)
    x_adv = runner_up_attack(model, x[None], yy, overshoot=0.0)[0]
    d = x_adv - x
    norm = float(d.norm())
    if norm == 0:
        raise ValueError("x must be correctly classified to have a runner-up adversarial direction")
    return d / norm, norm


def plane_points(x: torch.Tensor, u: torch.Tensor, v: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points ``x + s_j u + t_i v`` for the grid t (rows) x s (columns): (len(t) * len(s), *x.shape), row-major."""
    ss, tt = s.to(x).view(1, -1), t.to(x).view(-1, 1)
    coef_u, coef_v = (ss + 0 * tt).flatten(), (tt + 0 * ss).flatten()
    return x[None] + per_sample(coef_u, x[None]) * u[None] + per_sample(coef_v, x[None]) * v[None]


def class_map(
    model: Model,
    x: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    s: torch.Tensor,
    t: torch.Tensor,
    *,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Predicted labels on the plane through ``x`` (C, H, W) spanned by ``u`` and ``v``: (len(t), len(s)) int64.

    Entry [i, j] is the label of ``x + s[j] u + t[i] v`` (not clipped: the classifier as a function on R^d).
    """
    out = []
    for i in range(0, len(t), max(1, batch_size // max(len(s), 1))):
        rows = t[i : i + max(1, batch_size // max(len(s), 1))]
        out.append(predict(model, plane_points(x, u, v, s, rows), batch_size).view(len(rows), len(s)))
    return torch.cat(out).cpu()


def boundary_curve(
    model: Model,
    x: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    t: torch.Tensor,
    *,
    s_max: float,
    label: int | None = None,
    coarse: int = 24,
    bisection_steps: int = 10,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Where the decision boundary crosses each line ``{x + s u + t_i v : s in [0, s_max]}``.

    For each ``t_i`` the first ``s`` where the label stops being ``label`` (default: the label of ``x``) is
    found by a scan of ``coarse`` points then bisection inside the first changing cell. Returns (len(t),)
    float64 on the CPU with NaN where the line starts outside the region or never leaves it within ``s_max``.
    """
    s_max = check_positive("s_max", s_max)
    coarse = check_int("coarse", coarse, low=2)
    if label is None:
        label = int(predict(model, x[None])[0])
    grid = torch.linspace(0.0, s_max, coarse, dtype=torch.float64)
    labels = class_map(model, x, u, v, grid, t, batch_size=batch_size)  # (T, coarse)
    inside = labels == label
    out = torch.full((len(t),), math.nan, dtype=torch.float64)
    first_out = (~inside).float().argmax(1)  # index of the first point outside (0 if none)
    ok = inside[:, 0] & (~inside).any(1)
    if not ok.any():
        return out
    rows = ok.nonzero().flatten()
    lo = grid[first_out[rows] - 1].clone()
    hi = grid[first_out[rows]].clone()
    tt = t[rows].to(x)
    for _ in range(bisection_steps):
        mid = (lo + hi) / 2
        pts = x[None] + per_sample(mid.to(x), x[None]) * u[None] + per_sample(tt, x[None]) * v[None]
        still = (predict(model, pts, batch_size) == label).cpu()
        lo = torch.where(still, mid, lo)
        hi = torch.where(still, hi, mid)
    out[rows] = (lo + hi) / 2
    return out


@dataclass(frozen=True)
class QuadraticFit:
    """``s(t) = a t^2 + b t + c`` fitted to a boundary curve; ``curvature`` is the signed curvature of that
    parabola at ``t = 0``, ``2a / (1 + b^2)^{3/2}`` (1 / pixel units; 0 for a flat boundary); ``n`` is the
    number of points used."""

    a: float
    b: float
    c: float
    curvature: float
    n: int

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return self.a * t**2 + self.b * t + self.c


def fit_boundary_curvature(t: torch.Tensor, s: torch.Tensor) -> QuadraticFit:
    """Least-squares quadratic fit of a boundary curve ``s(t)`` (NaNs ignored; needs at least 3 points)."""
    t, s = t.double().cpu(), s.double().cpu()
    keep = ~torch.isnan(s)
    if int(keep.sum()) < 3:
        return QuadraticFit(math.nan, math.nan, math.nan, math.nan, int(keep.sum()))
    tk, sk = t[keep], s[keep]
    design = torch.stack([tk**2, tk, torch.ones_like(tk)], 1)
    coef = torch.linalg.lstsq(design, sk[:, None]).solution[:, 0]
    a, b, c = (float(v) for v in coef)
    return QuadraticFit(a, b, c, 2 * a / (1 + b * b) ** 1.5, int(keep.sum()))
