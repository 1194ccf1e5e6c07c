"""Path-connectedness of classification regions (Fawzi, Moosavi-Dezfooli, Frossard & Soatto 2018).

:func:`connect` is their algorithm: try the straight segment between two inputs of one predicted class; where it
leaves the class's region, replace the segment's midpoint by a point pushed back into the region (targeted
DeepFool, :func:`helpers.papers.cure.perturbations.push_to_class`) and recurse on both halves. A path is
summarised by its vertices and by its largest distance to the straight segment over the segment's length
(Table 2 of Bardusco & Carreau 2021); :func:`path_pca` gives the principal components of the path densified
along its length (their Figs. 5-8). :func:`segment_labels` reads the labels along a straight segment.

Inputs are any shape, (C, H, W) images in [0, 1] in the chapter; distances are l2 in pixel units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.core.attacks import Clip, Model
from helpers.core.params import check_int
from helpers.papers.cure.perturbations import predict, push_to_class

_TINY = 1e-12


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
    clip: Clip = (0.0, 1.0),
    batch_size: int = 1024,
) -> Path:
    """Find a path from ``x0`` to ``x1`` (both (C, H, W), or any shape) inside the region of class ``label``.

    The algorithm of Fawzi et al. (2018): start from the straight segment; check ``n_check`` evenly spaced
    points of every unchecked segment; replace each failing segment by two halves whose shared midpoint, if
    it is outside the region, is pushed back in with :func:`push_to_class` (targeted DeepFool with
    ``overshoot``); repeat. All segments of a round are checked and pushed in one batch. Stops when every
    segment is inside the region (``valid=True``), or after ``max_rounds`` rounds or ``max_points`` vertices
    (``valid=False``). The pushed points stay within ``clip`` ([0, 1] for images); toy problems in R^d pass ``None``.
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
        mids = push_to_class(model, mids, target, overshoot=overshoot, max_iter=max_iter, clip=clip)
        if not bool((predict(model, mids, batch_size) == label).all()):  # a push fell short: give up
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


def segment_labels(model: Model, x0: torch.Tensor, x1: torch.Tensor, n: int = 64) -> torch.Tensor:
    """Labels of ``n`` evenly spaced points from ``x0`` to ``x1`` inclusive (for plots of interpolations)."""
    alphas = torch.linspace(0, 1, n).to(x0).view(-1, *([1] * x0.dim()))
    return predict(model, x0[None] + alphas * (x1 - x0)[None]).cpu()
