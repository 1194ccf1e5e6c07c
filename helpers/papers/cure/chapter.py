"""Chapter 5's parameters and its three networks: a base ResNet, its adversarial and its CURE fine-tunings.

Bardusco & Carreau (2021) compare a network trained on clean images with copies fine-tuned (i) on their
runner-up adversarial examples (:func:`helpers.papers.cure.perturbations.runner_up_attack`) and (ii) with the
curvature regularizer CURE of Moosavi-Dezfooli, Fawzi, Uesato & Frossard (2019)
(:func:`helpers.papers.cure.losses.cure_penalty`). The report trained on Tiny ImageNet; the chapter uses
CIFAR-10, as the CURE paper did, so every image here is (B, 3, 32, 32) float in [0, 1] and every network a
small-input ResNet of :mod:`helpers.core.models` that normalises its input itself.

- :data:`PARAMETERS` and :func:`check_parameters`: the rules :func:`helpers.experiment.start` applies to the
  chapter's parameters cell (each parameter named once, beside its valid range).
- :func:`checkpoint_configs`: what names each network's checkpoint (for ``run.trained``).
- :func:`train_base`, :func:`fine_tune_adversarial`, :func:`fine_tune_cure`: the three trainings, with AdamW as
  in the report.
- :func:`accuracy_table`: clean accuracy and the report's "adversarial set" accuracy of each network.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from helpers.core import models
from helpers.core import params as P
from helpers.core.data import Loader
from helpers.core.training import Adversary, fit
from helpers.papers.cure.losses import cure_penalty
from helpers.papers.cure.perturbations import predict, runner_up_attack

DATASET = "cifar10"  # the only one the chapter runs on (the hue attack needs RGB images)

PARAMETERS: dict[str, P.Rule] = {
    "model_name": P.choice("resnet18", "resnet34", "resnet50"),
    "width": P.integer(1),
    "n_train": P.integer(100, 50000),
    "n_finetune": P.integer(100, 50000),
    "n_test": P.integer(10, 10000),
    "epochs": P.integer(1),
    "batch_size": P.integer(1),
    "lr": P.positive(),
    "lr_gamma": P.real(0.0, 1.0, low_open=True),
    "weight_decay": P.nonnegative(),
    "ft_epochs": P.integer(1),
    "ft_lr": P.positive(),
    "at_fraction": P.fraction(),
    "overshoot": P.nonnegative(),
    "cure_lambda": P.nonnegative(),
    "cure_h": P.positive(),
    "cure_h_start": P.nonnegative(),
    "cure_warmup": P.fraction(),
    "n_geom": P.integer(10, 10000),
    "hutchinson_samples": P.integer(1),
    "plane_extent": P.positive(),
    "plane_points": P.integer(5),
    "n_curv_images": P.integer(1),
    "wide_extent": P.positive(),
    "wide_points": P.integer(5),
    "n_nat_pairs": P.integer(2),
    "n_adv_pairs": P.integer(2),
    "path_check": P.integer(2),
    "path_rounds": P.integer(1),
    "path_overshoot": P.nonnegative(),
    "hue_angles": P.list_of(P.real(-360.0, 360.0)),
    "n_hue": P.integer(10, 10000),
    "suite_budget": P.choice("reduced", "full"),
    "suite_eps": P.positive(),
    "n_suite": P.integer(10),
    "square_queries": P.integer(1),
}


def check_parameters(values: Mapping[str, Any]) -> None:
    """Cross-parameter rule: the suite grades a subset of the test images, so ``n_suite <= n_test``."""
    P.check_int("n_suite", values["n_suite"], low=10, high=values["n_test"])


def checkpoint_configs(p: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The configuration behind each network, ``{"base", "at", "cure"}``: its hash names the checkpoint.

    ``p``: the chapter's checked parameters (``run.params``). Each configuration holds what changes that network
    (the fine-tunings inherit the base network's), so a changed parameter retrains only what it touches.
    """
    base = {"model": p["model_name"], "dataset": DATASET}
    base |= {k: p[k] for k in ("width", "n_train", "epochs", "batch_size", "lr", "lr_gamma", "weight_decay", "seed")}
    ft = {**base, "n_finetune": p["n_finetune"], "ft_epochs": p["ft_epochs"], "ft_lr": p["ft_lr"]}
    return {
        "base": base,
        "at": {**ft, "at_fraction": p["at_fraction"], "overshoot": p["overshoot"]},
        "cure": {
            **ft,
            "lambda": p["cure_lambda"],
            "h": p["cure_h"],
            "h_start": p["cure_h_start"],
            "warmup": p["cure_warmup"],
        },
    }


def adamw(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW on every parameter of ``model``: the report's optimiser for training and fine-tuning alike."""
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def train_base(
    train: Loader,
    val: Loader,
    *,
    model_name: str,
    width: int,
    epochs: int,
    lr: float,
    lr_gamma: float,
    weight_decay: float,
    seed: int,
    device: torch.device | str,
    checkpoint: str | Path | None = None,
) -> nn.Module:
    """The base network: a CIFAR-10 ResNet (``model_name``, first stage ``width`` channels) trained from scratch.

    The report's recipe: AdamW at ``lr`` with weight decay, the learning rate multiplied by ``lr_gamma`` after
    every epoch. ``torch.manual_seed(seed)`` fixes the initialisation; ``checkpoint`` is written every epoch and
    resumed (a finished one is loaded). Returns the model on ``device``, in eval mode.
    """
    torch.manual_seed(seed)
    model = models.build(model_name, DATASET, width=width).to(device)
    opt = adamw(model, lr, weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=lr_gamma)
    fit(model, train, optimizer=opt, scheduler=scheduler, epochs=epochs, val=val, checkpoint=checkpoint, seed=seed,
        desc="base")  # fmt: skip
    return model.eval()


def fine_tune_adversarial(
    base: nn.Module,
    train: Loader,
    val: Loader,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    fraction: float,
    overshoot: float,
    seed: int,
    checkpoint: str | Path | None = None,
) -> nn.Module:
    """A copy of ``base`` fine-tuned on the report's adversarial examples (Bardusco & Carreau 2021, Sec. 2.1.1).

    A share ``fraction`` of every batch is replaced by runner-up examples regenerated against the current
    network (DeepFool's step length, ``overshoot`` past the linearised boundary; l2, no budget), the rest stays
    clean. ``base`` is left untouched. Returns the fine-tuned copy in eval mode.
    """
    model = copy.deepcopy(base)
    adversary = Adversary(lambda m, x, y: runner_up_attack(m, x, y, overshoot=overshoot), fraction=fraction)
    fit(model, train, optimizer=adamw(model, lr, weight_decay), epochs=epochs, adversary=adversary, val=val,
        checkpoint=checkpoint, seed=seed, desc="adversarial fine-tuning")  # fmt: skip
    return model.eval()


def fine_tune_cure(
    base: nn.Module,
    train: Loader,
    val: Loader,
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    lam: float,
    h: float,
    h_start: float,
    warmup: float,
    seed: int,
    checkpoint: str | Path | None = None,
) -> nn.Module:
    """A copy of ``base`` fine-tuned with CURE (Moosavi-Dezfooli et al. 2019): cross-entropy plus ``lam`` times
    the curvature term, its step growing from ``h_start`` to ``h`` (l2 pixel units) over the first ``warmup``
    fraction of fine-tuning, as the CURE paper does. ``base`` is left untouched; returns the copy in eval mode."""
    model = copy.deepcopy(base)
    term = cure_penalty(lam, h, h_start=h_start, warmup=warmup)
    fit(model, train, optimizer=adamw(model, lr, weight_decay), epochs=epochs, regularizer=term, val=val,
        checkpoint=checkpoint, seed=seed, desc="CURE fine-tuning")  # fmt: skip
    return model.eval()


def adversarial_set(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, overshoot: float) -> torch.Tensor:
    """The report's "adversarial set": runner-up examples built against ``model`` (the base network) for every
    correctly classified image of ``x`` (N, 3, 32, 32) in [0, 1]; the others unchanged. 250 images at a time."""
    return torch.cat(
        [runner_up_attack(model, x[i : i + 250], y[i : i + 250], overshoot=overshoot) for i in range(0, len(x), 250)]
    )


def accuracy_table(
    nets: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor, adv_set: torch.Tensor, *, ft_epochs: int
) -> pd.DataFrame:
    """Per network (index ``network``): clean accuracy on ``x``, accuracy on ``adv_set`` (same labels ``y``,
    fractions in [0, 1]) and the fine-tuning epochs (0 for ``"base"``)."""
    rows = [
        {
            "network": name,
            "clean accuracy": float((predict(net, x) == y).float().mean()),
            "accuracy on the adversarial set": float((predict(net, adv_set) == y).float().mean()),
            "fine-tuning epochs": 0 if name == "base" else ft_epochs,
        }
        for name, net in nets.items()
    ]
    return pd.DataFrame(rows).set_index("network")
