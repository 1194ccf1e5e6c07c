"""The first layer of every model: per-channel ``(x - mean) / std``, so models take images in [0, 1] and attack
budgets stay in pixel units. The datasets' statistics come from one place, :data:`helpers.core.data.MEAN_STD`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers.core.data import MEAN_STD

CIFAR_MEAN, CIFAR_STD = MEAN_STD["cifar10"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as buffers (they move with the model and are saved with it)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
