"""The photometric-redshift networks of Campagne (2020), after Pasquet et al. (2019).

Both take ``(images, ebv)``: images (B, 5, S, S) are ugriz cutouts in calibrated flux units (nanomaggies per
pixel; values may be negative), ``ebv`` (B,) the galactic reddening E(B-V) in magnitudes, fed to the first fully
connected layer. The output is (B, 180) logits over redshift bins of width 1/180 on [0, 1]: softmax gives the
redshift PDF. Attacks perturb the images only.

- :class:`PhotoZInception` (Table A1): a 5x5 conv, then five inception cells i0..i4 with average pooling, and
  three fully connected layers. Every convolution has a per-channel PReLU; the fully connected layers use ReLU.
  At full size (``width=1``, 64x64): 27,596,372 trainable parameters. Options from Section 4.3:
  ``i4_width=256`` (i4's two s2 branches widened from 128 to 256: fc0 input 38,657, 45,720,660 parameters) and
  ``fc_width=2000`` (fc0's output and fc1's input: 48,722,852 parameters).
- :class:`PhotoZCNN` (Table A2): three convolutions with average pooling and two fully connected layers,
  13,461,008 parameters. Its convolutions carry no PReLU parameters in Table A2, so they use ReLU.

``width`` scales every channel count and fully connected width (for the small/medium profiles), and ``image_size``
is the cutout side (64 in the document; 32 at the small profile). Weights are Xavier-uniform and biases 0.1,
the document's initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from helpers.core.models.registry import architecture
from helpers.core.params import check_choice, check_int, check_positive

N_BINS = 180


def _c(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


class ConvPReLU(nn.Sequential):
    """Convolution followed by a per-channel PReLU (Pasquet et al.'s convolutional unit)."""

    def __init__(self, cin: int, cout: int, kernel: int, padding: int = 0) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, padding=padding), nn.PReLU(cout))


class PadAvgPool(nn.Module):
    """Pad one pixel on the bottom/right and average 2x2 with stride 1: the cells' 'pool0' (33x33 -> 32x32)."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.pool = nn.AvgPool2d(2, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pad(x))


class InceptionCell(nn.Module):
    """One inception cell of Table A1.

    Branches, concatenated in the table's order (s2_2, s2_1, s2_0, pool0): a 1x1 conv (s2_2); 1x1 (s1_1) then
    5x5 (s2_1); 1x1 (s1_0) then 3x3 (s2_0); 1x1 (s1_2) then the padded average pool. ``with_5x5=False`` drops
    the 5x5 branch (cell i4).
    """

    def __init__(self, cin: int, c1: int, c2: int, *, with_5x5: bool = True, c2_wide: int | None = None) -> None:
        super().__init__()
        c2w = c2_wide or c2
        self.s2_2 = ConvPReLU(cin, c2w, 1)
        self.s1_1 = ConvPReLU(cin, c1, 1) if with_5x5 else None
        self.s2_1 = ConvPReLU(c1, c2, 5, padding=2) if with_5x5 else None
        self.s1_0 = ConvPReLU(cin, c1, 1)
        self.s2_0 = ConvPReLU(c1, c2w, 3, padding=1)
        self.s1_2 = ConvPReLU(cin, c1, 1)
        self.pool0 = PadAvgPool()
        self.out_channels = c2w + (c2 if with_5x5 else 0) + c2w + c1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.s2_2(x)]
        if self.s2_1 is not None:
            branches.append(self.s2_1(self.s1_1(x)))
        branches += [self.s2_0(self.s1_0(x)), self.pool0(self.s1_2(x))]
        return torch.cat(branches, 1)


def _init(module: nn.Module) -> None:
    """Xavier-uniform weights and biases of 0.1 (Campagne 2020, following Pasquet et al. 2019)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.constant_(m.bias, 0.1)


class _InputScale(nn.Module):
    """Divide the fluxes by a fixed per-band scale: the 'normalization layer' for calibrated images.

    Attack budgets stay in the data's flux units because the scaling happens inside the model.
    """

    def __init__(self, scale: float | list[float]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.scale


class PhotoZInception(nn.Module):
    """Table A1's Inception network; ``model(images, ebv) -> (B, 180)`` logits. See the module docstring."""

    def __init__(
        self,
        width: float = 1.0,
        image_size: int = 64,
        *,
        i4_width: int = 128,
        fc_width: int = 1096,
        input_scale: float | list[float] = 1.0,
        n_bins: int = N_BINS,
    ) -> None:
        super().__init__()
        check_positive("width", width)
        check_int("image_size", image_size, low=8)
        if image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 (got {image_size})")
        c = lambda n: _c(n, width)  # noqa: E731
        self.scale = _InputScale(input_scale)
        self.conv0 = ConvPReLU(5, c(64), 5, padding=2)
        self.pool = nn.AvgPool2d(2)
        self.i0 = InceptionCell(c(64), c(48), c(64))
        self.i1 = InceptionCell(self.i0.out_channels, c(64), c(92))
        self.i2 = InceptionCell(self.i1.out_channels, c(92), c(128))
        self.i3 = InceptionCell(self.i2.out_channels, c(92), c(128))
        self.i4 = InceptionCell(self.i3.out_channels, c(92), c(128), with_5x5=False, c2_wide=c(i4_width))
        side = image_size // 8
        self.fc0_in = self.i4.out_channels * side * side + 1
        hidden = c(fc_width)
        self.fc0 = nn.Linear(self.fc0_in, hidden)
        self.fc1 = nn.Linear(hidden, c(1096))
        self.fc2 = nn.Linear(c(1096), n_bins)
        self.relu = nn.ReLU()
        _init(self)

    def forward(self, images: torch.Tensor, ebv: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv0(self.scale(images)))
        x = self.pool(self.i1(self.i0(x)))
        x = self.pool(self.i3(self.i2(x)))
        x = self.i4(x)
        x = torch.cat([x.flatten(1), ebv.view(-1, 1).to(x.dtype)], 1)
        return self.fc2(self.relu(self.fc1(self.relu(self.fc0(x)))))


class PhotoZCNN(nn.Module):
    """Table A2's simpler CNN; ``model(images, ebv) -> (B, 180)`` logits. See the module docstring."""

    def __init__(
        self, width: float = 1.0, image_size: int = 64, *, input_scale: float | list[float] = 1.0, n_bins: int = N_BINS
    ) -> None:
        super().__init__()
        check_positive("width", width)
        check_int("image_size", image_size, low=8)
        c = lambda n: _c(n, width)  # noqa: E731
        self.scale = _InputScale(input_scale)
        self.features = nn.Sequential(
            nn.Conv2d(5, c(64), 5, padding=2),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(c(64), c(92), 3, padding=2),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(c(92), c(128), 3, padding=2),
            nn.ReLU(),
            nn.AvgPool2d(2, ceil_mode=True),  # 19 -> 10 at 64x64, as in Table A2
        )
        with torch.no_grad():
            n_feat = self.features(torch.zeros(1, 5, image_size, image_size)).numel()
        self.fc0 = nn.Linear(n_feat + 1, c(1024))
        self.fc1 = nn.Linear(c(1024), n_bins)
        self.relu = nn.ReLU()
        _init(self)

    def forward(self, images: torch.Tensor, ebv: torch.Tensor) -> torch.Tensor:
        x = self.features(self.scale(images)).flatten(1)
        x = torch.cat([x, ebv.view(-1, 1).to(x.dtype)], 1)
        return self.fc1(self.relu(self.fc0(x)))


ARCHS = ("inception", "inception_i4_256", "inception_fc2000", "cnn")


@architecture("photoz")
def build(arch: str, width: float, image_size: int, input_scale: float | list[float] = 1.0) -> nn.Module:
    """One of the document's networks by name: ``inception`` (Table A1), its Sec. 4.3 variants
    ``inception_i4_256`` and ``inception_fc2000``, or ``cnn`` (Table A2)."""
    check_choice("arch", arch, ARCHS)
    if arch == "cnn":
        return PhotoZCNN(width, image_size, input_scale=input_scale)
    options = {"inception_i4_256": {"i4_width": 256}, "inception_fc2000": {"fc_width": 2000}}.get(arch, {})
    return PhotoZInception(width, image_size, input_scale=input_scale, **options)
