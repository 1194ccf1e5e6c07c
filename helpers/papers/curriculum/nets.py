"""The chapter's CIFAR-10 networks, registered as the architecture "curriculum", and their optimisers.

:func:`build` makes every network of the document from a flat spec: the PyTorch-tutorial "Net" and its
widened "BigNet" (:class:`~helpers.core.models.cifar_nets.BasicNet`), a wide ResNet
(:class:`~helpers.core.models.wrn.WideResNet`) and the conv-tokenized ViT
(:class:`~helpers.core.models.convvit.ConvViT`), with ReLU or GELU, dropout and one of the defences of
:mod:`.defenses`. Being registered, every model it returns can be saved and rebuilt by
:func:`helpers.core.models.load`. :func:`make_optimizer` is the document's SGD / AdamW switch.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import torch
from torch import nn

from helpers.core.models import architecture, count_parameters
from helpers.core.models.cifar_nets import ACTIVATIONS, BasicNet
from helpers.core.params import check_choice, check_fraction, check_int
from helpers.papers.curriculum.defenses import LowRankInput, add_rse, spectral_normalize, to_pni

ARCHS = ("net", "bignet", "wrn", "vit")
DEFENSES = ("none", "pni", "rse", "spectral", "lowrank")
SCHEMES = ("natural", "fixed", "strong", "curriculum")
OPTIMIZERS = ("sgd", "adamw")


@architecture("curriculum")
def build(
    arch: str,
    *,
    width: int,
    depth: int = 16,
    dim: int = 128,
    activation: str = "relu",
    dropout: float = 0.0,
    defense: str = "none",
    pni_alpha: float = 0.25,
    sigma_init: float = 0.2,
    sigma_inner: float = 0.1,
    basis: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
) -> nn.Module:
    """One of the chapter's CIFAR-10 networks.

    ``arch``: "net" (BasicNet with first-layer ``width``: 6 is the tutorial's Net), "bignet" (every layer of
    Net scaled by ``width / 6``: 12 doubles them all), "wrn" (WRN-``depth`` with ``width`` channels in its
    first group: 160 is WRN-16-10) or "vit" (:class:`ConvViT` with ``depth`` blocks of size ``dim``).
    ``defense``: "none", "pni", "rse" (``sigma_init``, ``sigma_inner``), "spectral", or "lowrank" (needs the
    projection's initial ``basis`` (3072, r) and the training ``mean``).
    """
    check_choice("arch", arch, ARCHS)
    check_choice("defense", defense, DEFENSES)
    check_choice("activation", activation, ACTIVATIONS)
    check_fraction("dropout", dropout)
    check_int("width", width, low=1)
    if arch in ("net", "bignet"):
        scale = width / 6 if arch == "bignet" else 1.0
        hidden = (max(1, round(120 * scale)), max(1, round(84 * scale)))
        model: nn.Module = BasicNet(width=width, hidden=hidden, activation=activation, dropout=dropout)
    elif arch == "wrn":
        from helpers.core.models.wrn import WideResNet

        model = WideResNet(depth, width, activation=activation, dropout=dropout)
    else:
        from helpers.core.models.convvit import ConvViT

        heads = 4 if dim % 4 == 0 else 1
        model = ConvViT(depth, dim, heads=heads, activation=activation, dropout=dropout)
    if defense == "pni":
        to_pni(model, pni_alpha)
    elif defense == "rse":
        add_rse(model, sigma_init, sigma_inner)
    elif defense == "spectral":
        spectral_normalize(model)
    elif defense == "lowrank":
        if basis is None or mean is None:
            raise ValueError("defense='lowrank' needs basis (3072, r) and mean (3072,)")
        model = nn.Sequential(LowRankInput(basis, mean), model)
    return model


def make_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """SGD with momentum 0.9, or AdamW (the document's switch); PNI's noise scales get no weight decay."""
    from helpers.core.models.noise import noise_parameters

    check_choice("optimizer", name, OPTIMIZERS)
    scales, rest = noise_parameters(model)
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if scales:
        groups.append({"params": scales, "weight_decay": 0.0})
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=lr)


def parameter_table(models: Mapping[str, nn.Module]) -> pd.Series:
    """Trainable parameter counts of named models."""
    return pd.Series({k: count_parameters(m) for k, m in models.items()}, name="parameters")
