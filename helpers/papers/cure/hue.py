"""A perceptual attack: rotating the hue of every pixel (Fig. 9 of Bardusco & Carreau 2021).

Threat model: no l_p budget at all. The attacker may rotate every pixel's colour about the grey axis of RGB space
by one angle (:func:`hue_rotate`), a change large in pixels but small to a person (the report turns a red pepper
orange). :func:`hue_flips` tells which rotations change which model's prediction, :func:`smallest_hue_angle`
the smallest rotation that changes all of them, and :func:`hue_attack` returns the images so rotated.

Images are RGB (B, 3, H, W) float in [0, 1]; angles in degrees. As in :mod:`helpers.core.attacks`, rotated
images are kept within ``clip`` (``(0.0, 1.0)`` by default, ``None`` to leave them unbounded) and inputs are
never modified.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from helpers.core.attacks import Clip, Model
from helpers.papers.cure.perturbations import predict


def hue_matrix(degrees: float) -> torch.Tensor:
    """3x3 rotation by ``degrees`` about the grey axis (1, 1, 1)/sqrt(3) of RGB space (Rodrigues' formula).

    Greys are fixed, the mean of R, G, B (a brightness) is kept, and 120 degrees maps red to green.
    """
    th = math.radians(degrees)
    k = torch.full((3,), 1 / math.sqrt(3.0), dtype=torch.float64)
    cross = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    m = math.cos(th) * torch.eye(3, dtype=torch.float64) + (1 - math.cos(th)) * torch.outer(k, k)
    return (m + math.sin(th) * cross).float()


def hue_rotate(x: torch.Tensor, degrees: float, *, clip: Clip = (0.0, 1.0)) -> torch.Tensor:
    """Rotate the hue of RGB images ``x`` (B, 3, H, W) in [0, 1] by ``degrees``; the result is kept within
    ``clip`` (a rotation can leave the RGB cube: a saturated red turned by 60 degrees needs a negative blue)."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be RGB images shaped (B, 3, H, W) (got {tuple(x.shape)})")
    m = hue_matrix(degrees).to(x)
    out = torch.einsum("ij,bjhw->bihw", m, x.detach())
    return out if clip is None else out.clamp(clip[0], clip[1])


def _models(models: Sequence[Model] | Mapping[str, Model]) -> list[Model]:
    return list(models.values()) if isinstance(models, Mapping) else list(models)


def hue_flips(
    models: Sequence[Model] | Mapping[str, Model],
    x: torch.Tensor,
    angles: Sequence[float],
    *,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """Which hue rotations change which model's prediction: bool (len(models), len(angles), B) on the CPU.

    Entry [m, a, b] is True when rotating image ``b`` of ``x`` (B, 3, H, W) by ``angles[a]`` degrees changes
    model ``m``'s label of it (the unrotated image's label is the reference, right or wrong).
    """
    nets = _models(models)
    if not angles:
        raise ValueError("angles must list at least one rotation (got none)")
    clean = torch.stack([predict(m, x) for m in nets]).cpu()
    flips = torch.zeros(len(nets), len(angles), len(x), dtype=torch.bool)
    for a, deg in enumerate(angles):
        shifted = hue_rotate(x, float(deg), clip=clip)
        for i, m in enumerate(nets):
            flips[i, a] = predict(m, shifted).cpu() != clean[i]
    return flips


def smallest_hue_angle(every: torch.Tensor, angles: Sequence[float]) -> torch.Tensor:
    """Per image, the smallest-|angle| rotation that changes every model's label, NaN where none does.

    ``every``: bool (len(angles), B), whether rotation a changes all models' labels of image b (``hue_flips(...)
    .all(0)``). Returns (B,) float32 on the CPU, in degrees; on a tie in |angle| the angle listed first wins.
    """
    if every.shape[0] != len(angles):
        raise ValueError(f"every must have one row per angle ({len(angles)}, got {every.shape[0]})")
    order = sorted(range(len(angles)), key=lambda a: abs(float(angles[a])))
    best = torch.full((every.shape[1],), math.nan)
    for a in reversed(order):  # the last write is the smallest |angle|
        best = torch.where(every[a].cpu(), torch.tensor(float(angles[a])), best)
    return best


def hue_attack(
    models: Sequence[Model] | Mapping[str, Model],
    x: torch.Tensor,
    angles: Sequence[float],
    *,
    clip: Clip = (0.0, 1.0),
) -> torch.Tensor:
    """The colour-shift attack: each image rotated by the smallest hue angle that changes every model's label.

    ``x``: (B, 3, H, W) in [0, 1]; ``angles``: the rotations to try, in degrees. Returns a new, detached tensor
    shaped like ``x``, within ``clip``; an image no rotation fools all models with is returned unchanged.
    """
    best = smallest_hue_angle(hue_flips(models, x, angles, clip=clip).all(0), angles)
    out = x.detach().clone()
    for deg in best[~torch.isnan(best)].unique().tolist():
        idx = (best == deg).nonzero().flatten().to(x.device)
        out[idx] = hue_rotate(x[idx], deg, clip=clip)
    return out
