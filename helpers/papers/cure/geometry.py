"""Geometry and topology of a classifier's decision regions in input space.

The tools of chapter 5, after three papers by Fawzi, Moosavi-Dezfooli et al. and the report that reproduces
them (Bardusco & Carreau 2021):

- **Minimal perturbations.** DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016) linearises the classifier
  around the current point and steps to the nearest linearised boundary, in l2; :func:`push_to_class` is its
  targeted form and :func:`runner_up_attack` is the report's recipe (ascend until the runner-up class
  overtakes the true one). :func:`minimal_perturbation` refines DeepFool's answer by bisection along its
  direction, giving the l2 norm of the smallest perturbation on that ray that changes the label.
- **Curvature.** :func:`hessian_frobenius_sq` is Hutchinson's (1989) Monte-Carlo estimate of
  ``||H||_F^2``, H the Hessian of the cross-entropy with respect to the input, from Hessian-vector products
  (double backprop); Moosavi-Dezfooli et al. (2019, CURE) use it to show that robust networks are flatter.
- **Decision-boundary planes.** :func:`class_map` labels a grid of the plane ``x + s u + t v``;
  :func:`boundary_curve` finds, for each ``t``, where the label first changes along ``u``; and
  :func:`fit_boundary_curvature` fits ``s(t) = a t^2 + b t + c`` and returns the curvature at ``t = 0``.
- **Path-connectedness.** :func:`connect` is the algorithm of Fawzi, Moosavi-Dezfooli, Frossard & Soatto
  (2018): try the straight segment; where it leaves the region, replace the segment's midpoint by a point
  pushed back into the region and recurse on both halves. :func:`path_pca` gives the principal components of
  the resulting path.
- **Perceptual attack.** :func:`hue_rotate` turns every pixel's colour about the grey axis of RGB space (a
  hue shift that keeps brightness), and :func:`hue_attack` searches the smallest rotation that changes the
  predictions of several models at once.

Conventions (as in :mod:`helpers.core.attacks`): images are (B, C, H, W) float in [0, 1] (normalisation is a model
layer), distances are l2 in those pixel units, gradients come from ``torch.autograd.grad`` on the input only,
inputs are never modified, and the model's mode (eval for all of this) is the caller's business. Geometry in
a plane (class maps, boundary curves) is that of the classifier as a function on R^d, so plane points are not
clipped to [0, 1]; the attacks' outputs are valid images unless ``clamp=False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from helpers.core.attacks import Model
from helpers.core.params import check_int, check_nonnegative, check_positive

_TINY = 1e-12


def _flat_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-sample l2 norm of (B, ...) as (B,)."""
    return v.flatten(1).norm(dim=1)


def _bcast(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) to scale per-sample tensors shaped like ``like``."""
    return s.view(-1, *([1] * (like.dim() - 1)))


@torch.no_grad()
def predict(model: Model, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Predicted labels (N,) for inputs (N, ...), in chunks of ``batch_size`` (no autograd graph)."""
    out = [model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def _clip(x: torch.Tensor, clamp: bool) -> torch.Tensor:
    return x.clamp(0.0, 1.0) if clamp else x


# ----------------------------------------------------------------------------------------------------------
# Minimal perturbations: DeepFool, its targeted form, the report's runner-up recipe, bisection refinement.
# ----------------------------------------------------------------------------------------------------------


def deepfool(
    model: Model,
    x: torch.Tensor,
    *,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    clamp: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Untargeted l2 DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016), batched.

    For each input, the ``candidates`` classes with the highest initial logits (the original class first)
    are the possible destinations; at each step the classifier is linearised and the input moves to the
    nearest linearised boundary, ``r = |f_k - f_o| / ||w_k||^2 * w_k`` with ``w_k = grad(f_k - f_o)``. The
    accumulated step is scaled by ``1 + overshoot`` so the point lands just past the boundary. Samples stop
    as soon as their label changes.

    ``x``: (B, C, H, W) in [0, 1]. Returns ``(x_adv, flipped)``: the perturbed images (clipped to [0, 1]
    unless ``clamp=False``), detached, and a bool (B,) telling which ones changed label within ``max_iter``.
    """
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
        step = (diffs.detach()[ar, best].abs() + 1e-4) / w_norm[ar, best] ** 2
        r_tot[idx] = r_tot[idx] + _bcast(step, xi) * w[ar, best]
        x_adv[idx] = _clip(x0[idx] + (1 + overshoot) * r_tot[idx], clamp)
        with torch.no_grad():
            still = model(x_adv[idx]).argmax(1) == orig[idx]
        active[idx] = still
    return x_adv.detach(), ~active


def push_to_class(
    model: Model,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    clamp: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Targeted l2 DeepFool: move each input to the nearest point (linearised) classified as ``target``.

    At each step the current strongest other class ``k`` is found and the input moves along
    ``w = grad(f_target - f_k)`` by ``(f_k - f_target) / ||w||^2``; the accumulated move is scaled by
    ``1 + overshoot``. Inputs already classified as ``target`` are returned unchanged. This is the
    "push back into the region" step of :func:`connect` and makes the adversarial pairs of Table 2.

    ``x``: (B, ...) (images in [0, 1] when ``clamp``); ``target``: (B,) int64. Returns ``(x_new, reached)``,
    detached, with ``reached`` a bool (B,).
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
        w_norm = _flat_norm(w) + _TINY
        step = (gap.detach().clamp_min(0) + 1e-4) / w_norm**2
        r_tot[idx] = r_tot[idx] + _bcast(step, xi) * w
        x_new[idx] = _clip(x0[idx] + (1 + overshoot) * r_tot[idx], clamp)
        with torch.no_grad():
            active[idx] = model(x_new[idx]).argmax(1) != t
    return x_new.detach(), ~active


def runner_up_attack(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
) -> torch.Tensor:
    """The report's adversarial examples (Bardusco & Carreau 2021, Sec. 2.1.1), for adversarial fine-tuning.

    Threat model: white box, l2, no budget; the perturbation is as small as the linearised steps make it.
    For each correctly classified image, gradient ascent on the input (with DeepFool's step length) until
    the class that was initially second most probable overtakes the true class ``y``; misclassified images
    are returned unchanged. ``x``: (B, C, H, W) in [0, 1]; returns a detached tensor in [0, 1]. The
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
        out[idx], _ = push_to_class(model, x0[idx], runner_up[idx], overshoot=overshoot, max_iter=max_iter)
    return out


def minimal_perturbation(
    model: Model,
    x: torch.Tensor,
    *,
    candidates: int = 10,
    overshoot: float = 0.02,
    max_iter: int = 50,
    bisection_steps: int = 12,
) -> tuple[torch.Tensor, torch.Tensor]:
    """l2 norm of the smallest label-changing perturbation found: DeepFool, then bisection along its ray.

    DeepFool's point ``x + delta`` changes the label; the bisection finds the smallest ``s`` in [0, 1] such
    that ``x + s * delta`` (clipped to [0, 1]) still does, so overshoot and linearisation slack are removed.
    ``x``: (B, C, H, W) in [0, 1]. Returns ``(norms, x_min)``: norms (B,) in pixel units (``inf`` where
    DeepFool did not change the label) and the corresponding images (B, C, H, W), detached.
    """
    bisection_steps = check_int("bisection_steps", bisection_steps, low=0)
    x0 = x.detach()
    labels = predict(model, x0)
    x_adv, flipped = deepfool(model, x0, candidates=candidates, overshoot=overshoot, max_iter=max_iter)
    delta = x_adv - x0
    lo = torch.zeros(len(x0), device=x0.device)
    hi = torch.ones(len(x0), device=x0.device)
    for _ in range(bisection_steps):
        mid = (lo + hi) / 2
        with torch.no_grad():
            changed = model((x0 + _bcast(mid, x0) * delta).clamp(0, 1)).argmax(1) != labels
        hi = torch.where(changed, mid, hi)
        lo = torch.where(changed, lo, mid)
    x_min = (x0 + _bcast(hi, x0) * delta).clamp(0, 1)
    norms = _flat_norm(x_min - x0)
    norms = torch.where(flipped, norms, torch.full_like(norms, math.inf))
    return norms.detach(), x_min.detach()


# ----------------------------------------------------------------------------------------------------------
# Curvature of the loss: Hutchinson's estimate of the squared Frobenius norm of the input Hessian.
# ----------------------------------------------------------------------------------------------------------


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
    v = v / _bcast(_flat_norm(v) + _TINY, v)
    lam = torch.zeros(len(x0), dtype=x0.dtype, device=x0.device)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x0), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x0, create_graph=True)
        for i in range(iters):
            (hv,) = torch.autograd.grad(g, x0, grad_outputs=v, retain_graph=i < iters - 1)
            lam = (hv * v).flatten(1).sum(1)
            v = hv / _bcast(_flat_norm(hv) + _TINY, hv)
    return v.detach(), lam.detach()


# ----------------------------------------------------------------------------------------------------------
# Decision boundaries in 2-D planes: class maps, boundary curves and their fitted curvature.
# ----------------------------------------------------------------------------------------------------------


def orthonormal_direction(u: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random unit vector shaped like ``u`` (one image, no batch axis), orthogonal to ``u``."""
    v = torch.randn(u.shape, generator=generator).to(u)
    un = u / (u.norm() + _TINY)
    v = v - (v * un).sum() * un
    return v / (v.norm() + _TINY)


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
    return x[None] + _bcast(coef_u, x[None]) * u[None] + _bcast(coef_v, x[None]) * v[None]


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
        pts = x[None] + _bcast(mid.to(x), x[None]) * u[None] + _bcast(tt, x[None]) * v[None]
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


# ----------------------------------------------------------------------------------------------------------
# Path-connectedness of classification regions (Fawzi, Moosavi-Dezfooli, Frossard & Soatto 2018).
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Path:
    """A polygonal path inside one classification region.

    ``points``: (n, ...) the vertices, first and last the two endpoints. ``valid``: every segment was
    checked at ``n_check`` points and stayed in the region. ``max_deviation``: the largest distance of a
    vertex to the straight segment between the endpoints, divided by that segment's length (0 for a straight
    path). ``pushes``: how many midpoints had to be pushed back into the region.
    """

    points: torch.Tensor
    valid: bool
    max_deviation: float
    pushes: int

    @property
    def n_points(self) -> int:
        return len(self.points)


def deviation_from_segment(points: torch.Tensor) -> torch.Tensor:
    """Distance of each point (n, ...) to the segment from ``points[0]`` to ``points[-1]``, over its length."""
    p = points.flatten(1).double()
    a, b = p[0], p[-1]
    d = b - a
    length = float(d.norm())
    if length == 0:
        return torch.zeros(len(p), dtype=torch.float64, device=p.device)
    s = ((p - a) @ d / length**2).clamp(0, 1)
    return (p - a - s[:, None] * d).norm(dim=1) / length


def connect(
    model: Model,
    x0: torch.Tensor,
    x1: torch.Tensor,
    label: int,
    *,
    n_check: int = 32,
    max_rounds: int = 12,
    max_points: int = 512,
    overshoot: float = 0.02,
    max_iter: int = 50,
    clamp: bool = True,
    batch_size: int = 1024,
) -> Path:
    """Find a path from ``x0`` to ``x1`` (both (C, H, W), or any shape) inside the region of class ``label``.

    The algorithm of Fawzi et al. (2018): start from the straight segment; check ``n_check`` evenly spaced
    points of every unchecked segment; replace each failing segment by two halves whose shared midpoint, if
    it is outside the region, is pushed back in with :func:`push_to_class` (targeted DeepFool with
    ``overshoot``); repeat. All segments of a round are checked and pushed in one batch. Stops when every
    segment is inside the region (``valid=True``), or after ``max_rounds`` rounds or ``max_points`` vertices
    (``valid=False``). With ``clamp`` the pushed points stay in [0, 1] (images); toy problems pass ``False``.
    """
    n_check = check_int("n_check", n_check, low=2)
    max_rounds = check_int("max_rounds", max_rounds, low=0)
    ends = torch.stack([x0.detach(), x1.detach()])
    if bool((predict(model, ends) != label).any()):
        raise ValueError(f"label must be the predicted class of both endpoints (got {label})")
    points = [ends[0], ends[1]]
    checked = [False]  # checked[i]: the segment points[i] -> points[i+1] stays in the region
    pushes = 0
    alphas = torch.linspace(0, 1, n_check + 2)[1:-1].to(x0)
    shape = (-1,) + (1,) * x0.dim()
    for rnd in range(max_rounds + 1):
        todo = [i for i, ok in enumerate(checked) if not ok]
        a = torch.stack([points[i] for i in todo])
        b = torch.stack([points[i + 1] for i in todo])
        pts = a[:, None] + alphas.view(1, *shape) * (b - a)[:, None]  # (S, n_check, ...)
        inside = (predict(model, pts.flatten(0, 1), batch_size) == label).view(len(todo), n_check).all(1)
        failing = [i for i, ok in zip(todo, inside.tolist(), strict=True) if not ok]
        for i, ok in zip(todo, inside.tolist(), strict=True):
            checked[i] = ok
        if not failing:
            return _path(points, True, pushes)
        if rnd == max_rounds or len(points) + len(failing) > max_points:
            break
        mids = torch.stack([(points[i] + points[i + 1]) / 2 for i in failing])
        target = torch.full((len(mids),), label, dtype=torch.long, device=mids.device)
        outside = predict(model, mids, batch_size) != label
        pushes += int(outside.sum())
        mids, reached = push_to_class(model, mids, target, overshoot=overshoot, max_iter=max_iter, clamp=clamp)
        if not bool(reached.all()):
            break
        for m, i in sorted(zip(mids, failing, strict=True), key=lambda p: -p[1]):  # insert from the back
            points.insert(i + 1, m)
            checked[i : i + 1] = [False, False]
    return _path(points, False, pushes)


def _path(points: list[torch.Tensor], valid: bool, pushes: int) -> Path:
    stacked = torch.stack(points).detach()
    return Path(stacked, valid, float(deviation_from_segment(stacked).max()), pushes)


def resample_path(points: torch.Tensor, n: int = 100) -> torch.Tensor:
    """``n`` points evenly spaced by arc length along the polygonal path ``points`` (m, ...): (n, ...)."""
    n = check_int("n", n, low=2)
    flat = points.flatten(1).double()
    seg = (flat[1:] - flat[:-1]).norm(dim=1)
    cum = torch.cat([seg.new_zeros(1), seg.cumsum(0)])  # on the path's device (CUDA too)
    total = float(cum[-1])
    if total == 0:
        return points[:1].expand(n, *points.shape[1:]).clone()
    want = torch.linspace(0, total, n, dtype=flat.dtype, device=flat.device)
    j = torch.searchsorted(cum, want, right=True).clamp(1, len(flat) - 1)
    w = ((want - cum[j - 1]) / seg[j - 1].clamp_min(_TINY)).clamp(0, 1)
    out = flat[j - 1] + w[:, None] * (flat[j] - flat[j - 1])
    return out.to(points.dtype).view(n, *points.shape[1:])


def path_pca(points: torch.Tensor, n_components: int = 10, resample: int = 200) -> dict[str, torch.Tensor]:
    """Principal components of a path, densified to ``resample`` points evenly spaced by arc length.

    Returns ``{"ratio": explained-variance ratios (k,), "coords": (resample, k) projections, "vertices":
    (n, k) the vertices' projections}`` on the CPU, k = min(n_components, resample). A straight path has
    ratio[0] = 1.
    """
    dense = resample_path(points, resample).flatten(1).double()
    mean = dense.mean(0)
    centred = dense - mean
    _, sv, vt = torch.linalg.svd(centred, full_matrices=False)
    k = min(n_components, len(sv))
    var = sv**2
    ratio = var[:k] / var.sum().clamp_min(_TINY)
    return {  # on the CPU: these are for tables and plots
        "ratio": ratio.float().cpu(),
        "coords": (centred @ vt[:k].T).float().cpu(),
        "vertices": ((points.flatten(1).double() - mean) @ vt[:k].T).float().cpu(),
    }


# ----------------------------------------------------------------------------------------------------------
# A perceptual attack: hue rotation.
# ----------------------------------------------------------------------------------------------------------


def hue_matrix(degrees: float) -> torch.Tensor:
    """3x3 rotation by ``degrees`` about the grey axis (1, 1, 1)/sqrt(3) of RGB space (Rodrigues' formula).

    Greys are fixed, the mean of R, G, B (a brightness) is kept, and 120 degrees maps red to green.
    """
    th = math.radians(degrees)
    k = torch.full((3,), 1 / math.sqrt(3.0), dtype=torch.float64)
    cross = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    m = math.cos(th) * torch.eye(3, dtype=torch.float64) + (1 - math.cos(th)) * torch.outer(k, k)
    return (m + math.sin(th) * cross).float()


def hue_rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate the hue of RGB images ``x`` (B, 3, H, W) in [0, 1] by ``degrees``; result clipped to [0, 1]."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be RGB images shaped (B, 3, H, W) (got {tuple(x.shape)})")
    m = hue_matrix(degrees).to(x)
    return torch.einsum("ij,bjhw->bihw", m, x).clamp(0.0, 1.0)


def hue_attack(
    models: Sequence[Model] | dict[str, Model],
    x: torch.Tensor,
    angles: Sequence[float],
) -> dict[str, torch.Tensor]:
    """The colour-shift attack: for each image, the hue rotations that change every model's prediction.

    ``x``: (B, 3, H, W) in [0, 1]; ``angles``: rotations in degrees to try (the smallest |angle| wins).
    Returns ``{"flips": bool (len(models), A, B) whether rotation a changes model m's label of image b,
    "all": bool (A, B) whether it changes all of them, "best_angle": (B,) the smallest-|angle| rotation that
    changes all models' labels (NaN if none), "clean": (len(models), B) the unrotated labels}``.
    """
    nets = list(models.values()) if isinstance(models, dict) else list(models)
    if not angles:
        raise ValueError("angles must list at least one rotation (got none)")
    clean = torch.stack([predict(m, x) for m in nets]).cpu()
    flips = torch.zeros(len(nets), len(angles), len(x), dtype=torch.bool)
    for a, deg in enumerate(angles):
        shifted = hue_rotate(x, float(deg))
        for i, m in enumerate(nets):
            flips[i, a] = predict(m, shifted).cpu() != clean[i]
    every = flips.all(0)
    order = sorted(range(len(angles)), key=lambda a: abs(float(angles[a])))
    best = torch.full((len(x),), math.nan)
    for a in reversed(order):  # the last write is the smallest |angle|
        best = torch.where(every[a], torch.tensor(float(angles[a])), best)
    return {"flips": flips, "all": every, "best_angle": best, "clean": clean}


def segment_labels(model: Model, x0: torch.Tensor, x1: torch.Tensor, n: int = 64) -> torch.Tensor:
    """Labels of ``n`` evenly spaced points from ``x0`` to ``x1`` inclusive (for plots of interpolations)."""
    alphas = torch.linspace(0, 1, n).to(x0).view(-1, *([1] * x0.dim()))
    return predict(model, x0[None] + alphas * (x1 - x0)[None]).cpu()
