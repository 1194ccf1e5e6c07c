"""Encoders of the RegNet chapter (Volpato 2019; Testa et al. 2019): the training configuration, the learning-rate
schedule, train-or-load, and the 100-class numerics run.

An encoder maps an image in [0, 1] to ``z`` in R^d, d = number of classes; class c's target is
N(mu_t e_c, sigma_t^2 I) and the decision rule is the nearest target mean, ``z.argmax(1)``
(:func:`helpers.papers.regnet.losses.regnet_loss`). Cross-entropy encoders ("ce") read the same ``z`` as logits,
so both kinds are scored and attacked the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import augment as augment_mod
from helpers.core.data import Loader, TensorData
from helpers.core.models.registry import architecture
from helpers.core.params import check_choice, check_int, check_nonnegative, check_positive
from helpers.core.training import config_hash
from helpers.papers.regnet.losses import REGNET_KINDS, naive_cov_loss, regnet_loss
from helpers.papers.regnet.problems import fingerprint

LOSSES = ("ce", *REGNET_KINDS)


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


def schedule(n_epochs: int, lr_milestones: Sequence[float]) -> dict[str, Any]:
    """``{"epochs", "lr_milestones"}`` for :class:`LatentConfig`: the epochs (in [1, n_epochs - 1]) after which
    the learning rate drops 10x, at the fractions ``lr_milestones`` (in (0, 1]) of ``n_epochs``; none for a
    single epoch. Rounded fractions that land on the same epoch give one drop."""
    check_int("n_epochs", n_epochs, low=1)
    ms = sorted({min(n_epochs - 1, max(1, round(f * n_epochs))) for f in lr_milestones}) if n_epochs > 1 else []
    return {"epochs": n_epochs, "lr_milestones": tuple(ms)}


def training_key(cfg: LatentConfig, train: TensorData, dataset: str) -> dict[str, Any]:
    """Everything that determines a trained encoder: the configuration, the dataset (channels and input
    statistics), the latent dimension and the training set's :func:`fingerprint`. JSON-able."""
    return {**asdict(cfg), "dataset": dataset, "dim": len(train.classes), "data": fingerprint(train)}


def train_encoder(
    cfg: LatentConfig,
    train: TensorData,
    *,
    dataset: str,
    device: torch.device | str = "cpu",
    checkpoint: Any = None,
    model: nn.Module | None = None,
    desc: str | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """Train an encoder with ``cfg`` on ``train`` (labels in [0, d), d = number of classes) and return it in
    eval mode with its history.

    The model is built from ``cfg`` (``dataset`` picks the channels and the normalization) unless ``model`` is
    given; the global RNG is reseeded from ``cfg.seed`` first, so the result does not depend on what ran before.
    ``checkpoint`` (a path, optional) is written every epoch and resumed or loaded by
    :func:`helpers.core.training.fit`. The last incomplete batch is dropped when the set is larger than a batch:
    a tiny batch would give a noisy per-class covariance.
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
        drop_last=len(train) > cfg.batch_size,
    )
    history = training.fit(
        model,
        loader,
        optimizer=opt,
        scheduler=sched,
        epochs=cfg.epochs,
        loss_fn=cfg.loss_fn(),
        checkpoint=checkpoint,
        seed=cfg.seed,
        desc=desc or cfg.label(),
    )
    return model.eval(), history


def trained(run: Any, cfg: LatentConfig, train: TensorData, dataset: str = "mnist") -> nn.Module:
    """Train-or-load one encoder for the chapter's ``run`` (a :class:`helpers.experiment.Experiment`): once
    per configuration and run, checkpointed under the hash of :func:`training_key`.

    The model carries that hash as ``model.train_key``, so score-once caches (:func:`helpers.papers.regnet.latent.
    fgsm_scores`) key on what the model is, not on the Python object.
    """
    key = training_key(cfg, train, dataset)

    def fit(checkpoint: Any) -> nn.Module:
        model = train_encoder(cfg, train, dataset=dataset, device=run.dev, checkpoint=checkpoint)[0]
        model.train_key = config_hash(key)
        return model

    return run.trained("encoder", key, fit)


@dataclass
class SyntheticRun:
    """The 100-class numerics run: the trained MLP encoder, the loss of every step, and whether the float32
    determinant form of the loss (:func:`naive_cov_loss`) was finite on the same batch."""

    model: nn.Module
    step_losses: list[float]
    naive_finite: list[bool]

    @property
    def all_finite(self) -> bool:
        """Every step's loss and every trained parameter finite: the book's check at many classes."""
        params = all(bool(torch.isfinite(p).all()) for p in self.model.parameters())
        return bool(torch.isfinite(torch.tensor(self.step_losses)).all()) and params

    @property
    def naive_bad(self) -> float:
        """Fraction of the batches on which the float32 determinant form is not finite, in [0, 1]."""
        return 1.0 - sum(self.naive_finite) / max(1, len(self.naive_finite))


def train_synthetic(
    cfg: LatentConfig, train: TensorData, *, epochs: int, device: torch.device | str = "cpu"
) -> SyntheticRun:
    """Train :func:`mlp_encoder` on a :func:`~helpers.papers.regnet.problems.synthetic_latent_problem` with
    ``cfg``'s loss (thesis Sec. 3.5: the covariance loss at d = the number of classes), recording every step.

    Batches of ``cfg.batch_size`` (the last incomplete one dropped), Adam at ``cfg.lr``, ``epochs`` passes; the
    global RNG is reseeded from ``cfg.seed`` before the model is built. No checkpoint: the per-step record is
    the result.
    """
    from helpers.core import training

    losses: list[float] = []
    finite: list[bool] = []
    loss = cfg.loss_fn()

    def logged(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = loss(z, y)
        losses.append(float(value.detach()))
        naive = naive_cov_loss(z.detach(), y, mu_t=cfg.mu_t, sigma_t=cfg.sigma_t)
        finite.append(bool(torch.isfinite(naive)))
        return value

    torch.manual_seed(cfg.seed)
    model = mlp_encoder(train.x.shape[1], len(train.classes)).to(device)
    training.fit(
        model,
        Loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed, device=device, drop_last=True),
        optimizer=torch.optim.Adam(model.parameters(), lr=cfg.lr),
        epochs=epochs,
        loss_fn=logged,
        seed=cfg.seed,
        desc=f"{len(train.classes)} classes",
    )
    return SyntheticRun(model, losses, finite)
