"""Batched, seeded augmentations on float images in [0, 1], shape (B, C, H, W).

Each takes ``(x, generator)`` and returns a new tensor; randomness is drawn on the CPU from ``generator`` so
runs are reproducible on every device. Compose them with :class:`Compose`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _bernoulli(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=g) < p).to(device)


class Compose:
    """Apply augmentations in order."""

    def __init__(self, augments: Sequence[Augment]) -> None:
        self.augments = list(augments)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for a in self.augments:
            x = a(x, g)
        return x


class HFlip:
    """Horizontal flip with probability ``p`` (CIFAR-10's standard augmentation)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        m = _bernoulli(len(x), self.p, g, x.device).view(-1, 1, 1, 1)
        return torch.where(m, x.flip(-1), x)


class RandomCrop:
    """Zero-pad by ``padding`` pixels and crop back at a random offset per image."""

    def __init__(self, padding: int = 4) -> None:
        self.padding = padding

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        p = self.padding
        b, c, h, w = x.shape
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=g).to(x.device)
        # Two gathers (rows, then columns) keep the crop vectorised over the batch.
        rows = (dy.view(b, 1, 1, 1) + torch.arange(h, device=x.device).view(1, 1, h, 1)).expand(b, c, h, w + 2 * p)
        cols = (dx.view(b, 1, 1, 1) + torch.arange(w, device=x.device).view(1, 1, 1, w)).expand(b, c, h, w)
        return padded.gather(2, rows).gather(3, cols)


class Dihedral:
    """A random element of the dihedral group: horizontal/vertical flips and 90/180/270 degree rotations.

    This is the photo-z chapter's augmentation (sky images have no preferred orientation).
    """

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        k = torch.randint(0, 4, (len(x),), generator=g)
        flip = torch.rand(len(x), generator=g) < 0.5
        out = x.clone()
        for r in range(4):
            for f in (False, True):
                sel = ((k == r) & (flip == f)).nonzero().flatten().to(x.device)
                if len(sel):
                    v = x[sel].flip(-1) if f else x[sel]
                    out[sel] = torch.rot90(v, r, dims=(-2, -1))
        return out


class ColorJitter:
    """Random brightness, contrast and saturation factors in [1-s, 1+s], per image; output clamped to [0, 1]."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2) -> None:
        self.b, self.c, self.s = brightness, contrast, saturation

    def _factor(self, n: int, s: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
        return (1 + (2 * torch.rand(n, generator=g) - 1) * s).to(device).view(-1, 1, 1, 1)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n = len(x)
        x = x * self._factor(n, self.b, g, x.device)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * self._factor(n, self.c, g, x.device) + mean
        if x.shape[1] == 3:
            gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
            x = (x - gray) * self._factor(n, self.s, g, x.device) + gray
        return x.clamp(0.0, 1.0)


class RandomAffine:
    """Random rotation (degrees), shear (degrees), shift (fraction of size) and zoom, zero fill.

    The Keras-style augmentation of the RegNet thesis (rotations up to 20 degrees, shear, shifts, zoom).
    """

    def __init__(self, degrees: float = 20.0, shear: float = 10.0, shift: float = 0.1, zoom: float = 0.1) -> None:
        self.degrees, self.shear, self.shift, self.zoom = degrees, shear, shift, zoom

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n = len(x)

        def u(scale: float) -> torch.Tensor:
            return (2 * torch.rand(n, generator=g) - 1) * scale

        rot, sh = u(math.radians(self.degrees)), u(math.radians(self.shear))
        zoom = 1 + u(self.zoom)
        tx, ty = u(2 * self.shift), u(2 * self.shift)  # affine_grid uses [-1, 1] coordinates
        cos, sin = torch.cos(rot), torch.sin(rot)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = cos / zoom
        theta[:, 0, 1] = (-sin + torch.tan(sh) * cos) / zoom
        theta[:, 1, 0] = sin / zoom
        theta[:, 1, 1] = (cos + torch.tan(sh) * sin) / zoom
        theta[:, 0, 2], theta[:, 1, 2] = tx, ty
        grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


AUGMENTATIONS = ("none", "flip", "flip_crop_jitter", "dihedral", "affine")


def make(name: str) -> Augment | None:
    """The named augmentation recipes the chapters use ("none" gives None)."""
    from helpers.core.params import check_choice

    check_choice("augment", name, AUGMENTATIONS)
    return {
        "none": None,
        "flip": HFlip(),
        "flip_crop_jitter": Compose([HFlip(), RandomCrop(4), ColorJitter()]),
        "dihedral": Dihedral(),
        "affine": RandomAffine(),
    }[name]
