"""Latent-space classifiers trained with the RegNet loss (Volpato 2019; Testa et al. 2019): training,
Gaussianity measures, attack losses, and the latent plots of the RegNet chapter.

An encoder maps an image in [0, 1] to ``z`` in R^d, d = number of classes; class c's target is
N(mu_t e_c, sigma_t^2 I) and the decision rule is the nearest target mean, ``z.argmax(1)``
(:func:`helpers.papers.regnet.losses.regnet_loss`). Everything here takes latent codes ``z`` (N, d) and labels
``y`` (N,) int64 in [0, d).

- Gaussianity: :func:`histogram_rmse` (the measure the thesis recommends, Sec. 2.3.2), :func:`skewness`,
  and :func:`gaussianity`, which averages them with :func:`helpers.papers.regnet.losses.kurtosis` over classes
  and dimensions.
- Attack losses on latent codes (summed over the batch, as :mod:`helpers.core.attacks` expects): cross-entropy of
  ``z`` read as logits is the attacks' default; :func:`margin_loss` (Carlini & Wagner 2017) does not saturate
  when the targets are far apart, which makes it the check for gradient masking.
- :func:`train_encoder` trains one configuration through :func:`helpers.core.training.fit` with a cached checkpoint.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import augment as augment_mod
from helpers.core.attacks import AttackFn, eval_mode
from helpers.core.data import Loader, TensorData
from helpers.core.models.registry import architecture
from helpers.core.params import check_choice, check_int, check_nonnegative, check_positive
from helpers.papers.regnet.losses import REGNET_KINDS, kurtosis, regnet_loss

LOSSES = ("ce", *REGNET_KINDS)


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------


def relabel(data: TensorData, groups: Sequence[Sequence[int]]) -> TensorData:
    """Keep the samples whose label is in one of ``groups`` and relabel them by group index.

    ``groups=[[0, 1, 2], [3, 4, 5], [6, 7, 8]]`` gives the thesis' grouped three-class problem (digit 9 left
    out); ``[[0], [1], [2]]`` its single-label one. Class names become e.g. ``"0,1,2"``.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError(f"groups must be a non-empty list of non-empty label lists (got {groups!r})")
    flat = [int(c) for g in groups for c in g]
    if len(set(flat)) != len(flat) or min(flat) < 0 or max(flat) >= len(data.classes):
        raise ValueError(f"groups must hold distinct labels in [0, {len(data.classes)}) (got {groups!r})")
    lookup = torch.full((len(data.classes),), -1, dtype=torch.long)
    for i, g in enumerate(groups):
        lookup[torch.tensor([int(c) for c in g])] = i
    new = lookup[data.y]
    keep = torch.nonzero(new >= 0).flatten()
    names = tuple(",".join(data.classes[int(c)] for c in g) for g in groups)
    sub = data.subset(keep)
    return TensorData(sub.x, new[keep], names, sub.extra, sub.source)


def synthetic_latent_problem(
    num_classes: int,
    n_per_class: int,
    dim_in: int = 32,
    *,
    spread: float = 0.2,
    seed: int = 0,
    noise_seed: int | None = None,
) -> TensorData:
    """A synthetic classification problem with many classes, for the loss's numerics at d = ``num_classes``.

    Class c's inputs are ``u_c + spread * noise`` in R^``dim_in``, with ``u_c`` random unit vectors drawn from
    ``seed`` and standard normal noise drawn from ``noise_seed`` (default ``seed + 1``): a held-out set is the
    same problem with another ``noise_seed``. Returns float inputs ``x`` (N, dim_in) (not images) with labels
    (N,), N = num_classes * n_per_class.
    """
    check_int("num_classes", num_classes, low=2)
    check_int("n_per_class", n_per_class, low=1)
    check_int("dim_in", dim_in, low=1)
    centres = torch.randn(num_classes, dim_in, generator=torch.Generator().manual_seed(seed))
    centres = centres / centres.norm(dim=1, keepdim=True)
    g = torch.Generator().manual_seed(seed + 1 if noise_seed is None else noise_seed)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim_in, generator=g)
    return TensorData(x, y, tuple(str(c) for c in range(num_classes)))


@architecture("mlp_encoder")
def mlp_encoder(dim_in: int, dim: int, hidden: int = 128) -> nn.Module:
    """A two-hidden-layer ReLU MLP from (B, dim_in) to a (B, dim) latent code, for the synthetic problem."""
    return nn.Sequential(
        nn.Linear(dim_in, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, dim),
    )


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatentConfig:
    """One training configuration of the RegNet chapter (the thesis' Secs. 2.1-3.4 settings, scaled).

    ``loss``: "ce" (cross-entropy on z as logits), "cov" or "simplified" (:func:`regnet_loss`);
    ``mu_t``, ``sigma_t``, ``kurtosis_weight`` (F_k) as there. ``encoder`` in
    :data:`helpers.core.models.ENCODERS` with first-stage ``width``. Adam with learning rate ``lr``, divided by 10
    at each epoch in ``lr_milestones`` (the thesis' decade schedule). ``augment`` names a
    :func:`helpers.core.augment.make` recipe ("affine" is the thesis' rotations/shear/shifts/zoom).
    """

    loss: str = "cov"
    mu_t: float = 70.0
    sigma_t: float = 1.0
    kurtosis_weight: float = 0.0
    encoder: str = "resnet18"
    width: int = 8
    epochs: int = 2
    batch_size: int = 200
    lr: float = 1e-3
    lr_milestones: tuple[int, ...] = field(default_factory=tuple)
    augment: str = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("loss", self.loss, LOSSES)
        check_nonnegative("mu_t", self.mu_t)
        check_positive("sigma_t", self.sigma_t)
        check_nonnegative("kurtosis_weight", self.kurtosis_weight)
        check_int("width", self.width, low=1)
        check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=2)
        check_positive("lr", self.lr)
        check_choice("augment", self.augment, augment_mod.AUGMENTATIONS)
        object.__setattr__(self, "lr_milestones", tuple(int(m) for m in self.lr_milestones))

    def loss_fn(self) -> Any:
        """The training loss ``(z, y) -> scalar`` of this configuration."""
        if self.loss == "ce":
            return lambda z, y: F.cross_entropy(z, y)
        kw = {"mu_t": self.mu_t, "sigma_t": self.sigma_t, "kind": self.loss, "kurtosis_weight": self.kurtosis_weight}
        return lambda z, y: regnet_loss(z, y, **kw)

    def label(self) -> str:
        """A short legend label: "CE", "cov μT=70", "cov+kurt μT=70 (F_k=0.2)"..."""
        if self.loss == "ce":
            return "CE"
        k = f"+kurt F_k={self.kurtosis_weight:g}" if self.kurtosis_weight > 0 else ""
        return f"{self.loss}{k} μT={self.mu_t:g}"


def fingerprint(data: TensorData) -> str:
    """A short hash of a data set's labels and a strided sample of its pixels: checkpoints key on it."""
    h = hashlib.sha256()
    h.update(data.y.numpy().tobytes())
    flat = data.x.reshape(len(data), -1)
    h.update(flat[:, :: max(1, flat.shape[1] // 64)].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train_encoder(
    chapter: str,
    cfg: LatentConfig,
    train: TensorData,
    *,
    dataset: str,
    device: torch.device | str = "cpu",
    model: nn.Module | None = None,
    desc: str | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train an encoder with ``cfg`` on ``train`` (labels in [0, d), d = number of classes) and return it in
    eval mode with its history. The model is built from ``cfg`` (``dataset`` picks the channels and the
    normalization) unless ``model`` is given; it is initialised from ``cfg.seed``, so the result does not depend
    on what ran before. The checkpoint is keyed by ``cfg``, the data's fingerprint and the model's class, so a
    rerun loads it instead of training.
    """
    from helpers.core import models, training

    dim = len(train.classes)
    torch.manual_seed(cfg.seed)
    if model is None:
        model = models.build_encoder(cfg.encoder, dataset, dim, cfg.width)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.lr_milestones), 0.1) if cfg.lr_milestones else None
    loader = Loader(
        train,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        device=device,
        augment=augment_mod.make(cfg.augment),
        drop_last=len(train) > cfg.batch_size,  # a tiny last batch would give a noisy per-class covariance
    )
    key = {**asdict(cfg), "dataset": dataset, "dim": dim, "data": fingerprint(train), "model": type(model).__name__}
    history = training.fit(
        model,
        loader,
        optimizer=opt,
        scheduler=sched,
        epochs=cfg.epochs,
        loss_fn=cfg.loss_fn(),
        checkpoint=training.checkpoint_path(chapter, key),
        seed=cfg.seed,
        desc=desc or cfg.label(),
    )
    return model.eval(), history


# ----------------------------------------------------------------------------------------------------------
# Latent codes and attack losses
# ----------------------------------------------------------------------------------------------------------


def latents(model: nn.Module, loader: Loader, attack: AttackFn | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The latent codes (N, d) float32 on the CPU and labels (N,) of ``loader`` (optionally ``attack``-ed),
    with the model in eval mode (restored afterwards)."""
    zs, ys = [], []
    with eval_mode(model):
        for x, y, *_ in loader:
            if attack is not None:
                x = attack(model, x, y)
            with torch.no_grad():
                zs.append(model(x).float().cpu())
            ys.append(y.cpu())
    return torch.cat(zs), torch.cat(ys)


def margin_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin ``max_{j != y} z_j - z_y`` summed over the batch; positive once misclassified.

    Its input gradient is the difference of two rows of the Jacobian, whatever the scale of ``z``: unlike
    cross-entropy on ``z`` read as logits, it cannot vanish because a softmax saturates at a large mu_t.
    """
    true = z.gather(1, y.view(-1, 1)).squeeze(1)
    others = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), float("-inf"))
    return (others.max(1).values - true).sum()


# ----------------------------------------------------------------------------------------------------------
# Gaussianity
# ----------------------------------------------------------------------------------------------------------


def targets(mu_t: float, d: int) -> torch.Tensor:
    """The target means (d, d): row c is ``mu_t e_c``."""
    return mu_t * torch.eye(d, dtype=torch.float64)


def skewness(z: torch.Tensor, y: torch.Tensor, num_classes: int | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Sample skewness ``E[(z - m)^3] / E[(z - m)^2]^(3/2)`` per class and dimension, (C, d) float64; 0 for
    a normal distribution; NaN rows for classes with fewer than 2 samples."""
    c = num_classes if num_classes is not None else z.shape[1]
    z = z.double()
    out = torch.full((c, z.shape[1]), float("nan"), dtype=torch.float64)
    for k in range(c):
        s = z[y == k]
        if len(s) >= 2:
            sc = s - s.mean(0)
            out[k] = sc.pow(3).mean(0) / (sc.pow(2).mean(0).pow(1.5) + eps)
    return out


def histogram_rmse(
    z: torch.Tensor,
    y: torch.Tensor,
    mu_t: float,
    sigma_t: float = 1.0,
    *,
    span: float = 4.0,
    bins_per_sigma: int = 4,
) -> torch.Tensor:
    """RMSE between each class's per-dimension histogram and its target Gaussian (thesis Sec. 2.3.2), (C, d).

    For class c and dimension i the target is N(mu_t [i == c], sigma_t^2). The histogram has
    ``bins_per_sigma`` bins per sigma_t over the target mean +- ``span`` sigma_t, normalised as a density by
    the class's sample count (so samples outside the window lower the histogram, as they should), and compared
    with the target density at the bin centres. The RMSE is divided by the target's peak density
    ``1 / (sigma_t sqrt(2 pi))``: 0 is a perfect match, and a histogram empty over the window scores about 0.5.
    Classes with no samples get NaN.
    """
    check_positive("sigma_t", sigma_t)
    d = z.shape[1]
    nb = int(round(2 * span * bins_per_sigma))
    rel = np.linspace(-span, span, nb + 1)
    centres = 0.5 * (rel[1:] + rel[:-1])
    pdf = np.exp(-0.5 * centres**2) / (sigma_t * math.sqrt(2 * math.pi))
    peak = 1.0 / (sigma_t * math.sqrt(2 * math.pi))
    width = (rel[1] - rel[0]) * sigma_t
    zn, yn = z.double().numpy(), y.numpy()
    out = np.full((d, d), np.nan)
    for c in range(d):
        s = zn[yn == c]
        if not len(s):
            continue
        for i in range(d):
            m = mu_t if i == c else 0.0
            counts, _ = np.histogram(s[:, i], bins=m + rel * sigma_t)
            dens = counts / (len(s) * width)
            out[c, i] = math.sqrt(float(np.mean((dens - pdf) ** 2))) / peak
    return torch.from_numpy(out)


def gaussianity(z: torch.Tensor, y: torch.Tensor, mu_t: float, sigma_t: float = 1.0) -> dict[str, float]:
    """Averages over classes and dimensions: ``rmse`` (:func:`histogram_rmse`), ``kurtosis`` (3 if Gaussian),
    ``abs_skewness`` (0 if Gaussian), plus ``spread`` (the mean per-dimension standard deviation, sigma_t if on
    target) and ``mean_error`` (mean distance of the class means from their targets)."""
    d = z.shape[1]
    k = kurtosis(z, y, num_classes=d)
    sk = skewness(z, y, d)
    stds, errs = [], []
    for c in range(d):
        s = z[y == c].double()
        if len(s) >= 2:
            stds.append(float(s.std(0).mean()))
            errs.append(float((s.mean(0) - targets(mu_t, d)[c]).norm()))
    return {
        "rmse": float(np.nanmean(histogram_rmse(z, y, mu_t, sigma_t).numpy())),
        "kurtosis": float(np.nanmean(k.numpy())),
        "abs_skewness": float(np.nanmean(sk.abs().numpy())),
        "spread": float(np.mean(stds)) if stds else float("nan"),
        "mean_error": float(np.mean(errs)) if errs else float("nan"),
    }


# ----------------------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------------------


def scatter3d(ax: Any, z: torch.Tensor, y: torch.Tensor, classes: Sequence[str], *, max_points: int = 400) -> None:
    """A 3-D scatter of a three-dimensional latent space (``ax`` made with ``projection="3d"``), one colour per
    class, at most ``max_points`` per class (the first ones: loaders are in a fixed order)."""
    if z.shape[1] != 3:
        raise ValueError(f"z must be three-dimensional for a 3-D scatter (got d={z.shape[1]})")
    for c, name in enumerate(classes):
        s = z[y == c][:max_points].numpy()
        ax.scatter(s[:, 0], s[:, 1], s[:, 2], s=4, alpha=0.5, label=name, depthshade=False)
    ax.set(xlabel="$z_0$", ylabel="$z_1$", zlabel="$z_2$")


def residual_histograms(
    axes: Sequence[Any], z: torch.Tensor, y: torch.Tensor, mu_t: float, sigma_t: float = 1.0, *, span: float = 5.0
) -> None:
    """One panel per latent dimension i (``axes`` has d axes): the histograms of ``z_i - target_i`` for every
    class (step outlines, one colour per class), against the target density N(0, sigma_t^2) in black.

    Plotting residuals puts every class on one axis whatever mu_t, so the shapes (heavy tails, two spikes, a
    wrong spread) are comparable across target means. Values beyond +- ``span`` sigma_t are piled on the edges,
    so an outlier still shows.
    """
    d = z.shape[1]
    edges = np.linspace(-span, span, 41) * sigma_t
    grid = np.linspace(-span, span, 200) * sigma_t
    pdf = np.exp(-0.5 * (grid / sigma_t) ** 2) / (sigma_t * math.sqrt(2 * math.pi))
    res = (z.double() - targets(mu_t, d)[y]).numpy()
    lim = span * sigma_t * (1 - 1e-9)
    for i, ax in enumerate(axes):
        for c in range(d):
            r = np.clip(res[y.numpy() == c, i], -lim, lim)
            if len(r):
                ax.hist(r, bins=edges, density=True, histtype="step", lw=1.4, color=f"C{c}")
        ax.plot(grid, pdf, color="k", lw=1)
        ax.set(xlabel=f"$z_{i}$ − target", yticks=[])


def attack_curve(
    model: nn.Module,
    loader: Loader,
    eps_list: Sequence[float],
    *,
    attack: str = "fgsm",
    loss_fn: Any = None,
    steps: int = 10,
    seed: int = 0,
    desc: str = "",
) -> list[float]:
    """Accuracy (decision rule: argmax z) under an l-inf ``attack`` ("fgsm" or "pgd") at each radius in
    ``eps_list`` ([0, 1] pixel units); ``loss_fn(z, y)`` is the attacked loss, summed over the batch
    (default: cross-entropy on z as logits). PGD takes ``steps`` steps of 2.5 eps / steps from a random start
    drawn from a generator seeded with ``seed``. The model is evaluated in eval mode.
    """
    from helpers.core import attacks, evaluate

    check_choice("attack", attack, ("fgsm", "pgd"))
    out = []
    for e in eps_list:
        if e == 0:
            atk = None
        elif attack == "fgsm":
            atk = lambda m, x, y, e=e: attacks.fgsm(m, x, y, e, loss_fn=loss_fn)  # noqa: E731
        else:
            gen = torch.Generator().manual_seed(seed)
            atk = lambda m, x, y, e=e, gen=gen: attacks.pgd(  # noqa: E731
                m, x, y, e, 2.5 * e / steps, steps, random_start=True, loss_fn=loss_fn, generator=gen
            )
        out.append(evaluate.accuracy(model, loader, atk, desc=f"{desc} {attack} eps={e:g}".strip()))
    return out


def naive_cov_loss(z: torch.Tensor, y: torch.Tensor, *, mu_t: float, sigma_t: float = 1.0) -> torch.Tensor:
    """The covariance loss written the straightforward way: float32, ``log(det(Sigma_O))``, no jitter.

    For illustration only (the RegNet chapter's 100-class section): with fewer samples per class than
    dimensions the sample covariance is singular, ``det`` returns 0 (or a tiny negative number from rounding)
    and the loss becomes -inf, +inf or NaN, which is how the thesis' training failed at many classes. Use
    :func:`helpers.papers.regnet.losses.regnet_loss`.
    """
    z = z.float()
    d = z.shape[1]
    eye = torch.eye(d, device=z.device)
    total = z.new_zeros(())
    for c in range(d):
        s = z[y == c]
        if len(s) < 2:
            continue
        m = s.mean(0)
        cov = torch.cov(s.T)
        diff = mu_t * eye[c] - m
        total = total + 0.5 * (
            2 * d * math.log(sigma_t)
            - torch.log(torch.det(cov))
            - d
            + torch.trace(cov) / sigma_t**2
            + diff.dot(diff) / sigma_t**2
        )
    return total
