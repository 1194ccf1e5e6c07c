"""Document 3's CIFAR-10 networks besides the small-input ResNet-18 of :mod:`helpers.core.models.resnet`.

- :class:`BasicNet`: the basic CNN of the document's course (the LeNet-style network of PyTorch's CIFAR-10
  tutorial): conv 5x5 (6) - max-pool - conv 5x5 (16) - max-pool - fc 120 - fc 84 - fc 10, ReLU between.
  ``width`` is the first convolution's channel count (6; the second has 16/6 as many): 62,006 parameters.
  Options for document 2 (defaults leave the network above unchanged): ``hidden`` (the two hidden fully
  connected widths; BigNet doubles every layer), ``activation`` ("relu" or "gelu") and ``dropout`` (before
  each hidden fully connected layer).
- :class:`ResNet20`: He et al. (2016, Sec. 4.2)'s CIFAR ResNet: a 3x3 stem, three stages of three basic
  blocks at 16/32/64 channels (``width`` = 16), global average pooling, one linear layer; the stride-2 blocks
  use the parameter-free "option A" shortcut (subsample, pad channels with zeros): 269,722 parameters.
  ``noisy=True`` makes every convolution and the linear layer a PNI-W layer
  (:class:`~helpers.core.models.noise.NoisyConv2d`): the document's NoiseNet20 (20 more parameters, one noise
  scale per layer).
- :class:`VGG11`: Simonyan & Zisserman (2015)'s configuration A with batch normalization after every
  convolution, as usually adapted to 32x32 inputs: five max-pools take the map to 1x1, then one linear
  layer (``width`` = 64, the first stage's channels): 9,231,114 parameters.

Inputs (B, 3, 32, 32) in [0, 1]; the first layer normalizes. Outputs (B, num_classes) logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.models.noise import NoisyConv2d, NoisyLinear
from helpers.core.models.normalize import CIFAR_MEAN, CIFAR_STD, Normalize
from helpers.core.params import check_choice, check_fraction, check_int

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


class BasicNet(nn.Module):
    """The course's basic CNN (see the module docstring); ``width`` 6 is the original."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 6,
        image_size: int = 32,
        mean: Sequence[float] = CIFAR_MEAN,
        std: Sequence[float] = CIFAR_STD,
        *,
        hidden: tuple[int, int] = (120, 84),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("width", width, low=1)
        check_choice("activation", activation, ACTIVATIONS)
        check_fraction("dropout", dropout)
        h1, h2 = (check_int(f"hidden[{i}]", h, low=1) for i, h in enumerate(hidden))
        act = ACTIVATIONS[activation]
        c2 = max(1, round(width * 16 / 6))
        side = ((image_size - 4) // 2 - 4) // 2

        # Dropout layers exist only when asked for, so the default network keeps its state_dict layout.
        def drop() -> list[nn.Module]:
            return [nn.Dropout(dropout)] if dropout > 0 else []

        self.net = nn.Sequential(
            Normalize(mean, std),
            nn.Conv2d(in_channels, width, 5),
            act(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, c2, 5),
            act(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            *drop(),
            nn.Linear(c2 * side * side, h1),
            act(),
            *drop(),
            nn.Linear(h1, h2),
            act(),
            nn.Linear(h2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


Conv = Callable[..., nn.Module]


class _Block(nn.Module):
    """A basic residual block with an option-A shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int, conv: Conv) -> None:
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad > 0:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-(6n+2) with n=3 blocks per stage; ``noisy`` gives NoiseNet20 (PNI-W)."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 16,
        blocks: int = 3,
        *,
        noisy: bool = False,
        mean: Sequence[float] = CIFAR_MEAN,
        std: Sequence[float] = CIFAR_STD,
    ) -> None:
        super().__init__()
        check_int("width", width, low=1)
        check_int("blocks", blocks, low=1)
        conv: Conv = NoisyConv2d if noisy else nn.Conv2d
        self.normalize = Normalize(mean, std)
        self.conv1 = conv(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, cin = [], width
        for stage in range(3):
            cout = width * 2**stage
            for b in range(blocks):
                layers.append(_Block(cin, cout, 2 if (stage > 0 and b == 0) else 1, conv))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = (NoisyLinear if noisy else nn.Linear)(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


VGG11_LAYOUT = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")  # channels in units of width/1


class VGG11(nn.Module):
    """VGG-11 (configuration A) with batch normalization, for 32x32 inputs; ``width`` 64 is the original."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 64,
        mean: Sequence[float] = CIFAR_MEAN,
        std: Sequence[float] = CIFAR_STD,
    ) -> None:
        super().__init__()
        check_int("width", width, low=1)
        layers: list[nn.Module] = [Normalize(mean, std)]
        cin = in_channels
        for i, item in enumerate(VGG11_LAYOUT):
            if item == "M":  # the last pool is adaptive: 2x2 -> 1x1 on CIFAR, and 28x28 inputs work too
                layers.append(nn.AdaptiveMaxPool2d(1) if i == len(VGG11_LAYOUT) - 1 else nn.MaxPool2d(2))
                continue
            cout = width * int(item)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
