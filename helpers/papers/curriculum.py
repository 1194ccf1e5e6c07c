"""Document 2 (curriculum adversarial training, capacity, randomized defences, NES): its building blocks.

- :func:`schedule` is the document's curriculum: with ``t`` = elapsed epochs / total epochs, the PGD radius
  ``eps = 0.01 (1 - t) + 0.1 t`` and the iteration count ``int(10 (1 - t) + 40 t)`` (Cai et al. 2018's idea
  without their learning stages); ``iter_scale`` shrinks the iteration counts for CPU profiles and keeps the
  schedule's shape. :func:`curriculum_adversary` and :func:`fixed_adversary` turn a schedule or one fixed
  attack into a :class:`~helpers.core.training.Adversary` that attacks a fraction (the "attacked ratio") of each
  batch.
- :func:`build` makes the chapter's networks from a flat spec: the PyTorch-tutorial "Net" and its doubled
  "BigNet" (:class:`~helpers.core.models.cifar_nets.BasicNet`), a wide ResNet
  (:class:`~helpers.core.models.wrn.WideResNet`), the conv-tokenized ViT
  (:class:`~helpers.core.models.convvit.ConvViT`),
  with ReLU or GELU, dropout, and the defences: PNI (He et al. 2019: trainable noise on every weight, via
  :func:`to_pni`), RSE (Liu et al. 2018: fixed Gaussian noise before every convolution, :func:`add_rse`,
  prediction averaged over passes by :class:`Ensemble`), spectral normalization (:func:`spectral_normalize`)
  and a learnable low-rank projection of the input (:class:`LowRankInput`).
- :func:`battery` is the document's PGD battery: test accuracy over a grid of radii ``eps`` x step sizes
  ``delta``; :func:`aggregated_score` sums it (in %), the score of the document's Table 1.
- :func:`effective_rank` is Roy & Vetterli (2007)'s effective rank of a data matrix, and
  :func:`principal_directions` its leading right singular vectors.

Images are (B, 3, 32, 32) in [0, 1]; every radius and step is in [0, 1] pixel units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from helpers.core import attacks as A
from helpers.core import training
from helpers.core.models import architecture, count_parameters
from helpers.core.models.cifar_nets import ACTIVATIONS, BasicNet
from helpers.core.models.noise import GaussianNoise, NoisyConv2d, NoisyLinear
from helpers.core.params import check_choice, check_fraction, check_int, check_nonnegative, check_positive, check_real

ARCHS = ("net", "bignet", "wrn", "vit")
DEFENSES = ("none", "pni", "rse", "spectral", "lowrank")
SCHEMES = ("natural", "fixed", "curriculum")
OPTIMIZERS = ("sgd", "adamw")


# ---------------------------------------------------------------- the curriculum
def schedule(
    t: float,
    *,
    eps_start: float = 0.01,
    eps_end: float = 0.1,
    iters_start: int = 10,
    iters_end: int = 40,
    iter_scale: float = 1.0,
) -> tuple[float, int]:
    """``(eps, iterations)`` of the curriculum at training progress ``t`` in [0, 1] (the document's Sec. 1).

    ``eps = eps_start (1 - t) + eps_end t``; ``iterations = int(iter_scale * (iters_start (1 - t) + iters_end
    t))``, at least 1. With the defaults: (0.01, 10) at t = 0, (0.055, 25) at t = 1/2, (0.1, 40) at t = 1.
    """
    t = check_real("t", t, low=0.0, high=1.0)
    check_real("iter_scale", iter_scale, low=0.0, high=1.0, low_open=True)
    eps = eps_start * (1 - t) + eps_end * t
    iters = max(1, int(iter_scale * (iters_start * (1 - t) + iters_end * t) + 1e-9))
    return eps, iters


def curriculum_adversary(
    epochs: int,
    *,
    fraction: float = 0.5,
    iter_scale: float = 1.0,
    step_ratio: float = 2.5,
    generator: torch.Generator | None = None,
    **schedule_kw: Any,
) -> training.ScheduledAdversary:
    """Curriculum adversarial training: l-inf PGD whose radius and iterations follow :func:`schedule`.

    ``t`` is the number of *elapsed* epochs over ``epochs`` (constant within an epoch, as in the document),
    so the last epoch trains at ``t = (epochs - 1) / epochs``. Each PGD run starts at a random point of the
    ball and steps by ``step_ratio * eps / iterations`` (Madry et al.'s rule; the document gives no step).
    ``fraction`` of every batch is attacked (the document: 0.5).
    """
    check_int("epochs", epochs, low=1)
    check_positive("step_ratio", step_ratio)

    def make(progress: float) -> A.AttackFn:
        t = math.floor(progress * epochs + 1e-9) / epochs
        eps, iters = schedule(t, iter_scale=iter_scale, **schedule_kw)
        return A.make_attack(
            "pgd", eps, alpha=step_ratio * eps / iters, steps=iters, random_start=True, generator=generator
        )

    return training.ScheduledAdversary(make, fraction)


def fixed_adversary(
    eps: float, alpha: float, steps: int, *, fraction: float = 0.5, generator: torch.Generator | None = None
) -> training.Adversary:
    """PGD adversarial training at one radius ``eps`` and step ``alpha`` on ``fraction`` of each batch."""
    attack = A.make_attack("pgd", eps, alpha=alpha, steps=steps, random_start=True, generator=generator)
    return training.Adversary(attack, fraction)


# ---------------------------------------------------------------- defences as model transformations
def to_pni(model: nn.Module, alpha: float = 0.25) -> nn.Module:
    """Parametric noise injection on the weights of every convolution and linear layer (He et al. 2019).

    Each ``nn.Conv2d`` / ``nn.Linear`` becomes a :class:`~helpers.core.models.noise.NoisyConv2d` /
    :class:`~helpers.core.models.noise.NoisyLinear` with the same shape and weights, whose forward pass uses
    ``w + alpha_l * std(w) * N(0, I)`` with one trainable ``alpha_l`` per layer, in training and at eval.
    Modifies ``model`` in place and returns it.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d) and not isinstance(child, NoisyConv2d):
            new = NoisyConv2d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                child.stride,
                child.padding,
                child.dilation,
                child.groups,
                child.bias is not None,
                alpha=alpha,
            )
        elif isinstance(child, nn.Linear) and not isinstance(child, NoisyLinear):
            new = NoisyLinear(child.in_features, child.out_features, child.bias is not None, alpha=alpha)
        else:
            to_pni(child, alpha)
            continue
        new.load_state_dict(child.state_dict(), strict=False)
        setattr(model, name, new)
    return model


def add_rse(model: nn.Module, sigma_init: float, sigma_inner: float) -> nn.Module:
    """Random self-ensemble (Liu et al. 2018): a Gaussian noise layer in front of every convolution.

    The first convolution (in module order) gets noise of std ``sigma_init``, the others ``sigma_inner``;
    the noise is fixed (not learned), unclipped (it acts on normalized inputs and on feature maps), and on at
    evaluation too. Modifies ``model`` in place and returns it.
    """
    check_nonnegative("sigma_init", sigma_init)
    check_nonnegative("sigma_inner", sigma_inner)
    first = [True]

    def visit(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d):
                sigma = sigma_init if first[0] else sigma_inner
                first[0] = False
                noise = GaussianNoise(sigma, clip=None)
                noise.rse = True  # marks the model as an RSE ensemble member (see has_rse)
                setattr(module, name, nn.Sequential(noise, child))
            else:
                visit(child)

    visit(model)
    return model


def has_rse(model: nn.Module) -> bool:
    """Whether ``model`` carries RSE noise layers (made by :func:`add_rse`): its prediction is an ensemble."""
    return any(getattr(m, "rse", False) for m in model.modules())


def spectral_normalize(model: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) of every convolution and linear layer, in place.

    Each weight is divided by the largest singular value of its (out, in * k * k) matrix, estimated by power
    iteration during training: every layer is then about 1-Lipschitz (for a convolution, the bound on the
    reshaped kernel is a proxy for the operator norm, not the exact constant).
    """
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(model.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m)
    return model


class LowRankInput(nn.Module):
    """``x -> mu + W W^T (x - mu)`` on flattened images: a learnable projection of rank ``W.shape[1]``.

    ``W`` (D, r) starts at the top-r principal directions of the training images (a PCA projection) and is
    trained with the network; ``mu`` (D,) is the fixed training mean. Output has the input's shape; no
    clipping (the projection is part of the model, not of the threat model).
    """

    def __init__(self, basis: torch.Tensor, mean: torch.Tensor, shape: Sequence[int] = (3, 32, 32)) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.W = nn.Parameter(basis.detach().clone().float())
        self.register_buffer("mu", mean.detach().clone().float().flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1) - self.mu
        return (self.mu + (z @ self.W) @ self.W.T).view(-1, *self.shape)


class Ensemble(nn.Module):
    """Average the softmax of ``passes`` forward passes of a randomized ``model``; returns log-probabilities.

    RSE's prediction (Liu et al. 2018). ``argmax`` of the output is the ensemble's class. With a
    deterministic model all passes agree and the output is ``log_softmax(model(x))``.
    """

    def __init__(self, model: nn.Module, passes: int) -> None:
        super().__init__()
        self.model = model
        self.passes = check_int("passes", passes, low=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([self.model(x).float().softmax(-1) for _ in range(self.passes)]).mean(0)
        return probs.clamp_min(1e-12).log()


# ---------------------------------------------------------------- the chapter's networks
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


# ---------------------------------------------------------------- evaluation (the battery: helpers.core.evaluate)
def aggregated_score(grid: pd.DataFrame) -> float:
    """The document's "aggregated attacked score": the sum over the battery of the accuracies, in %."""
    return float(100 * grid.to_numpy().sum())


# ---------------------------------------------------------------- effective rank (Sec. 5)
def _spectrum(x: torch.Tensor, center: bool, vectors: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Squared singular values of ``x`` (N, D) in descending order, and optionally its right singular vectors.

    Works on the smaller of the two Gram matrices: ``x x^T`` (N x N) when N < D, else ``x^T x`` (D x D); the
    non-zero eigenvalues are the same, and ``V = x^T U / s`` recovers the right singular vectors.
    """
    x = x.flatten(1).double()
    if center:
        x = x - x.mean(0)
    small = x.shape[0] < x.shape[1]
    gram = x @ x.T if small else x.T @ x
    if not vectors:
        return torch.linalg.eigvalsh(gram).clamp_min(0).flip(0), None
    evals, evecs = torch.linalg.eigh(gram)
    evals, evecs = evals.clamp_min(0).flip(0), evecs.flip(1)
    if small:
        evecs = (x.T @ evecs) / evals.sqrt().clamp_min(1e-12)
    return evals, evecs


def effective_rank(x: torch.Tensor, *, center: bool = False) -> float:
    """Roy & Vetterli (2007)'s effective rank of the data matrix ``x`` (N, ...) flattened to (N, D).

    With singular values ``s_k`` and ``p_k = s_k / sum(s)``, it is ``exp(-sum p_k log p_k)``: min(N, D) for a
    matrix whose singular values are all equal, 1 for rank one. ``center`` subtracts the mean first (PCA).
    """
    evals, _ = _spectrum(x, center)
    s = evals.sqrt()
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def principal_directions(x: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(basis (D, rank), mean (D,))``: the top principal directions of ``x`` (N, ...) and its mean."""
    check_int("rank", rank, low=1, high=min(len(x), x[0].numel()))
    _, evecs = _spectrum(x, center=True, vectors=True)
    return evecs[:, :rank].float(), x.flatten(1).double().mean(0).float()


def parameter_table(models: Mapping[str, nn.Module]) -> pd.Series:
    """Trainable parameter counts of named models."""
    return pd.Series({k: count_parameters(m) for k, m in models.items()}, name="parameters")


def trade_off(clean: float, robust: float, other_clean: float, other_robust: float, tol: float) -> bool:
    """Whether (clean, robust) improves the trade-off over the other point: neither accuracy is lower by more
    than ``tol`` and at least one is higher by more than ``tol`` (a Pareto improvement at resolution tol)."""
    d_clean, d_rob = clean - other_clean, robust - other_robust
    return min(d_clean, d_rob) >= -tol and max(d_clean, d_rob) > tol


__all__ = [
    "ARCHS", "DEFENSES", "OPTIMIZERS", "SCHEMES", "Ensemble", "LowRankInput", "add_rse", "aggregated_score",
    "build", "curriculum_adversary", "has_rse", "effective_rank", "fixed_adversary", "make_optimizer",
    "parameter_table", "principal_directions", "schedule", "spectral_normalize", "to_pni",
    "trade_off",
]  # fmt: skip
