"""Wide residual networks (Zagoruyko & Komodakis 2016, "Wide residual networks") for 32x32 inputs.

WRN-``depth``-``k``: a 3x3 stem convolution to 16 channels, three groups of ``n = (depth - 4) / 6``
pre-activation basic blocks (BN - activation - conv 3x3 - dropout - BN - activation - conv 3x3) at
``16k``, ``32k`` and ``64k`` channels (the second and third groups start with stride 2; a 1x1 convolution
projects the shortcut when the shape changes), then BN - activation - global average pooling - linear.
WRN-16-10, the document 2 network ("13 convolution layers and a width factor of 10"), has 13 3x3 convolutions
and 17,116,634 parameters. ``width`` is the first group's channel count (``16k``), so narrow CPU profiles can
use widths that are not multiples of 16.

Inputs (B, C, H, W) in [0, 1] (the first layer normalizes); outputs (B, num_classes) logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers.core.models.cifar_nets import ACTIVATIONS
from helpers.core.models.normalize import CIFAR_MEAN, CIFAR_STD, Normalize
from helpers.core.params import check_choice, check_fraction, check_int


class WideBlock(nn.Module):
    """A pre-activation basic block with dropout between its two convolutions."""

    def __init__(self, cin: int, cout: int, stride: int, activation: str, dropout: float) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        self.bn1, self.act1 = nn.BatchNorm2d(cin), act()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(cout), act()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if (stride != 1 or cin != cout) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.act1(self.bn1(x))
        # As in the reference implementation, the projection sees the pre-activated input.
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv1(o)
        o = self.conv2(self.drop(self.act2(self.bn2(o))))
        return o + skip


class WideResNet(nn.Module):
    """WRN-``depth``-k with ``width`` = 16k channels in the first group (see the module docstring)."""

    def __init__(
        self,
        depth: int = 16,
        width: int = 160,
        in_channels: int = 3,
        num_classes: int = 10,
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        mean: Sequence[float] = CIFAR_MEAN,
        std: Sequence[float] = CIFAR_STD,
    ) -> None:
        super().__init__()
        check_int("depth", depth, low=10)
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 for an integer n >= 1, e.g. 10, 16, 28 (got {depth})")
        check_int("width", width, low=1)
        check_choice("activation", activation, ACTIVATIONS)
        check_fraction("dropout", dropout)
        n = (depth - 4) // 6
        self.normalize = Normalize(mean, std)
        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        blocks, cin = [], 16
        for g, cout in enumerate((width, 2 * width, 4 * width)):
            for b in range(n):
                blocks.append(WideBlock(cin, cout, 2 if (g > 0 and b == 0) else 1, activation, dropout))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.bn, self.act = nn.BatchNorm2d(cin), ACTIVATIONS[activation]()
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(self.normalize(x)))
        x = self.act(self.bn(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
