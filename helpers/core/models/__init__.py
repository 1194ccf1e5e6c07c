"""Model architectures used across the chapters. Every model takes images in [0, 1] and normalizes them
itself with a :class:`Normalize` first layer, so attack budgets are always in pixel units.

The chapters add their documents' architectures here (with parameter-count tests); :func:`build` is the one
name-based entry point the notebooks validate their ``model`` parameter through. Every builder is registered
(:mod:`helpers.core.models.registry`), so a trained model saves with :func:`save` and comes back with :func:`load`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from helpers.core.data import MEAN_STD
from helpers.core.models.normalize import Normalize
from helpers.core.models.registry import architecture, create, describe, load, rebuild, registered, save
from helpers.core.params import check_choice, check_int

__all__ = [
    "ENCODERS", "Normalize", "SmallCNN", "architecture", "build", "build_encoder", "count_parameters", "create",
    "describe", "load", "rebuild", "registered", "save",
]  # fmt: skip


class SmallCNN(nn.Module):
    """The primer's classifier: two conv+maxpool stages and a two-layer head.

    Input (B, C, H, W) in [0, 1] with H, W divisible by 4; output logits (B, num_classes). ``width`` is the
    first conv's channel count (the second has twice as many). At width 32 on MNIST: 421,642 parameters.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 32,
        image_size: int = 28,
        mean: Sequence[float] = MEAN_STD["mnist"][0],
        std: Sequence[float] = MEAN_STD["mnist"][1],
        hidden: int = 128,
    ) -> None:
        super().__init__()
        check_int("width", width, low=1)
        self.net = nn.Sequential(
            Normalize(mean, std),
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (image_size // 4) ** 2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters: what the documents' tables report."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


CHANNELS_SIZE = {"mnist": (1, 28), "cifar10": (3, 32)}


def _small_cnn(dataset: str, width: int) -> nn.Module:
    channels, size = CHANNELS_SIZE[dataset]
    mean, std = MEAN_STD[dataset]
    return SmallCNN(channels, 10, width, size, mean, std)


def _resnet(depth: int) -> Callable[[str, int], nn.Module]:
    def make(dataset: str, width: int) -> nn.Module:
        from helpers.core.models.resnet import ResNet

        mean, std = MEAN_STD[dataset]
        return ResNet(depth, CHANNELS_SIZE[dataset][0], 10, width, mean, std)

    return make


def _cifar_net(kind: str) -> Callable[[str, int], nn.Module]:
    """Document 3's networks (:mod:`helpers.core.models.cifar_nets`) for ``dataset``'s channels and statistics."""

    def make(dataset: str, width: int) -> nn.Module:
        from helpers.core.models import cifar_nets

        channels, size = CHANNELS_SIZE[dataset]
        mean, std = MEAN_STD[dataset]
        if kind == "basicnet":
            return cifar_nets.BasicNet(channels, 10, width, size, mean, std)
        if kind == "vgg11":
            return cifar_nets.VGG11(channels, 10, width, mean, std)
        return cifar_nets.ResNet20(channels, 10, width, noisy=kind == "noisenet20", mean=mean, std=std)

    return make


# Chapters register their documents' architectures here: name -> (dataset, width) -> module.
_REGISTRY: dict[str, Callable[[str, int], nn.Module]] = {
    "small_cnn": _small_cnn,
    "resnet18": _resnet(18),
    "resnet34": _resnet(34),
    "resnet50": _resnet(50),
    "shakeshake26": lambda dataset, width: build_encoder("shakeshake26", dataset, 10, width),
    "basicnet": _cifar_net("basicnet"),
    "resnet20": _cifar_net("resnet20"),
    "noisenet20": _cifar_net("noisenet20"),
    "vgg11": _cifar_net("vgg11"),
}


@architecture("classifier")
def build(name: str, dataset: str, width: int = 32) -> nn.Module:
    """Build a registered model for ``dataset`` by name (unknown names raise ValueError naming ``model``)."""
    check_choice("model", name, sorted(_REGISTRY))
    check_choice("dataset", dataset, tuple(MEAN_STD))
    return _REGISTRY[name](dataset, width)


# Encoders to a d-dimensional latent code (the RegNet chapter): the latent dimension is the number of classes.
ENCODERS = ("resnet18", "resnet34", "resnet50", "shakeshake26")


@architecture("encoder")
def build_encoder(name: str, dataset: str, dim: int, width: int = 64) -> nn.Module:
    """An encoder from ``dataset``'s images (B, C, H, W) in [0, 1] to a ``dim``-dimensional code (B, dim).

    ``resnet18/34/50``: :class:`~helpers.core.models.resnet.ResNet` with a ``dim``-unit linear head (``width`` = first
    stage's channels, 64 in torchvision). ``shakeshake26``: Gastaldi's 26-layer
    :class:`~helpers.core.models.shakeshake.ShakeShake` (``width`` = first stage's channels per branch, 96 in his
    26 2x96d). Unknown names raise ValueError naming ``model``.
    """
    check_choice("model", name, ENCODERS)
    check_choice("dataset", dataset, tuple(MEAN_STD))
    check_int("dim", dim, low=1)
    channels, mean, std = CHANNELS_SIZE[dataset][0], *MEAN_STD[dataset]
    if name == "shakeshake26":
        from helpers.core.models.shakeshake import ShakeShake

        return ShakeShake(4, channels, dim, width, mean, std)
    from helpers.core.models.resnet import ResNet

    return ResNet(int(name.removeprefix("resnet")), channels, dim, width, mean, std)
