"""Shake-Shake residual networks for small images (Gastaldi 2017, "Shake-Shake regularization").

Each residual block has two parallel branches ``ReLU-conv3x3-BN-ReLU-conv3x3-BN`` whose outputs are blended
with a random weight: ``x + alpha * b1(x) + (1 - alpha) * b2(x)`` in the forward pass and an independent
``beta`` in the backward pass, both uniform in [0, 1] and drawn per image ("Shake-Shake-Image"). In eval mode
both are 0.5, so the trained network is deterministic and attacks on it need no EOT.

The layout is Gastaldi's CIFAR network: a 3x3 stem of 16 channels, three stages of ``blocks`` blocks each with
``width``, ``2 width`` and ``4 width`` channels (strides 1, 2, 2), then ReLU, global average pooling and a linear
head. Depth = 2 + 3 * 2 * blocks: ``blocks=4`` is the 26-layer network; ``width=96`` is his "26 2x96d" (two
branches of 96 channels), the RegNet thesis' shake-shake-96 encoder. When the shape changes the shortcut is
his two-path one: ReLU, then 1x1 convolutions on the input average-pooled at stride 2 and on the input shifted by
one pixel, concatenated, then BN. Input (B, C, H, W) in [0, 1] (the first layer normalizes); output (B, num_classes)
logits, or a (B, d) latent code when used as an encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.models.normalize import CIFAR_MEAN, CIFAR_STD
from helpers.core.params import check_int


def shake(a: torch.Tensor, b: torch.Tensor, training: bool) -> torch.Tensor:
    """Blend two branches: ``alpha a + (1 - alpha) b`` forward, with ``beta`` in the backward pass (training);
    the plain average in eval mode. ``a``, ``b``: (B, C, H, W); the weights are drawn per image."""
    if not training:
        return 0.5 * (a + b)
    shape = (a.shape[0],) + (1,) * (a.dim() - 1)
    alpha = torch.rand(shape, device=a.device, dtype=a.dtype)
    beta = torch.rand(shape, device=a.device, dtype=a.dtype)
    backward = beta * a + (1 - beta) * b
    # The detached difference carries the forward value; gradients flow through the beta blend only.
    return backward + (alpha * a + (1 - alpha) * b - backward).detach()


def _branch(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
    )


class _Shortcut(nn.Module):
    """Gastaldi's downsampling shortcut: two strided 1x1 paths (one on a one-pixel shift), concatenated."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.path1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.path2 = nn.Conv2d(cin, cout - cout // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        p1 = F.avg_pool2d(x, 1, self.stride)
        p2 = F.avg_pool2d(F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1)), 1, self.stride)
        return self.bn(torch.cat([self.path1(p1), self.path2(p2)], 1))


class ShakeBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.branch1 = _branch(cin, cout, stride)
        self.branch2 = _branch(cin, cout, stride)
        self.shortcut = None if (cin == cout and stride == 1) else _Shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return skip + shake(self.branch1(x), self.branch2(x), self.training)


class ShakeShake(nn.Module):
    """Shake-Shake network (Gastaldi 2017) of depth ``2 + 6 * blocks`` with a Normalize first layer."""

    def __init__(
        self,
        blocks: int = 4,
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 96,
        mean: Sequence[float] = CIFAR_MEAN,
        std: Sequence[float] = CIFAR_STD,
    ) -> None:
        super().__init__()
        from helpers.core.models.normalize import Normalize

        check_int("blocks", blocks, low=1)
        check_int("width", width, low=2)
        self.normalize = Normalize(mean, std)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16))
        layers, cin = [], 16
        for i in range(3):
            cout = width * 2**i
            for j in range(blocks):
                layers.append(ShakeBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
        self.features_dim = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled penultimate representation (B, features_dim)."""
        x = F.relu(self.layers(self.stem(self.normalize(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
