"""Training the chapter's networks: one procedure for all of them, trained once and cached by configuration.

The document (BIPARO 2021) trains every network with SGD (momentum 0.9, weight decay, the rate divided by 10 at
fixed fractions of training) on adversarial batches crafted with the model in eval mode. :class:`Trainer` holds
what every run of the chapter shares (data, validation split, training threat, hyperparameters) and trains one
configuration per call, through the chapter's train-or-load cache (``run.trained``): the configuration's hash
names the checkpoint, so a rerun loads instead of training. :func:`fit_selected` adds robust validation every
epoch and keeps the best epoch (early stopping as Rice et al. 2020 recommend, selected on validation data, not
on the test set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.core import attacks as A
from helpers.core import evaluate, models, training
from helpers.core.data import Loader, TensorData
from helpers.core.models.noise import noise_parameters, noise_scales
from helpers.papers.matrand.threat import Threat, make_adversary, step_schedule

Trained = tuple[nn.Module, training.History, dict[str, Any] | None]  # (model in eval mode, history, selected epoch)


def fit_selected(
    model: nn.Module,
    train: Loader,
    val: Loader,
    *,
    val_attack: A.AttackFn,
    checkpoint: str | Path,
    test_curve: Callable[[nn.Module], float] | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    **fit_kwargs: Any,
) -> tuple[training.History, dict[str, Any]]:
    """:func:`~helpers.core.training.fit` with robust validation every epoch and early stopping on it.

    Every epoch records ``val_robust_acc`` (``val_attack`` on ``val``); the model is returned at the epoch
    where it was highest, and the second value is ``{"epoch", "metric"}`` of that epoch.
    ``test_curve(model) -> float``, if given, is recorded per epoch as ``test_robust_acc`` *after* the
    selection for that epoch has been made, so the test set never influences which epoch is kept.
    """

    def record(epoch: int, row: dict[str, float]) -> None:
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        if test_curve is not None:
            row["test_robust_acc"] = float(test_curve(model))

    history = training.fit(
        model,
        train,
        val=val,
        val_attack=val_attack,
        select="val_robust_acc",
        checkpoint=checkpoint,
        on_epoch_end=record,
        **fit_kwargs,
    )
    return history, training.load_best(model, checkpoint)


def build(arch: str, width: int) -> nn.Module:
    """A CIFAR-10 classifier of the registry (``basicnet``, ``resnet20``, ``noisenet20``, ``resnet18``, ``vgg11``)."""
    return models.create("classifier", name=arch, dataset="cifar10", width=width)


@dataclass
class Trainer:
    """Train-or-load the chapter's networks, ``trainer(arch, width, scheme, ...) -> (model, history, best)``.

    - ``run``: the chapter's run (:class:`helpers.experiment.Experiment`): its train-or-load cache
      ``run.trained``, its device ``run.dev`` and its parameters ``run.params`` (``batch_size``,
      ``weight_decay``, ``n_train``, ``val_fraction``, ``seed``, ``natural_fraction``, ``eps``,
      ``n_test_curve``, ``curve_steps``).
    - ``threat``: the training attacks (:class:`Threat`), at the radius ``eps`` unless a call asks for another.
    - ``train_data``: the training split (the validation split held out); ``val``: that validation split,
      which selects the epoch under early stopping; ``curve``: test images of the per-epoch test curve (a
      figure only), both attacked with ``curve_attack`` (l-inf PGD).
    """

    run: Any
    threat: Threat
    train_data: TensorData
    val: Loader
    curve: Loader
    curve_attack: A.AttackFn

    def config(self, arch: str, width: int, scheme: str, *, n_epochs: int, lr0: float, drops: list[float],
               eps_train: float | None = None, train_set: TensorData | None = None, early_stop: bool = False,
               curve: bool = False, learning_curve: bool = False) -> dict[str, Any]:  # fmt: skip
        """Everything that changes the trained network, as a JSON-able dict (its hash names the checkpoint)."""
        p = self.run.params
        tset = self.train_data if train_set is None else train_set
        eps_train = p["eps"] if eps_train is None else eps_train
        eps_train = 0.0 if scheme == "natural" else eps_train  # one natural model: Table 1's and Fig. 1's radius 0
        return {
            "arch": arch, "width": width, "scheme": scheme, "epochs": n_epochs, "lr": lr0, "milestones": drops,
            "threat": self.threat.with_eps(eps_train).config(), "batch_size": p["batch_size"],
            "wd": p["weight_decay"], "n_train": len(tset), "n_train_all": p["n_train"],
            "val_fraction": p["val_fraction"], "seed": p["seed"],
            "natural_fraction": p["natural_fraction"] if scheme == "recipe" else None, "early_stop": early_stop,
            "curve": [p["n_test_curve"], p["curve_steps"]] if curve else None, "learning_curve": learning_curve,
            "val": [p["curve_steps"]] if early_stop else None,
        }  # fmt: skip

    def __call__(self, arch: str, width: int, scheme: str, *, train_set: TensorData | None = None,
                 **options: Any) -> Trained:  # fmt: skip
        """Train ``arch`` at ``width`` with the training ``scheme`` (:data:`~.threat.TRAININGS`), or load it.

        ``options``: ``n_epochs``, ``lr0`` and ``drops`` (the schedule), ``eps_train`` (the l-inf training
        radius), ``early_stop`` (robust validation every epoch; the model returned is the best epoch's, and
        ``best`` names the checkpoint, which also holds the last epoch), ``curve`` (record the test-set robust
        accuracy per epoch, for a figure only), ``learning_curve`` (record clean validation accuracy and the
        noise scales per epoch). A configuration already trained in this run is returned as it was.
        """
        cfg = self.config(arch, width, scheme, train_set=train_set, **options)
        tset = self.train_data if train_set is None else train_set
        return self.run.trained(f"{arch}-{scheme}", cfg, lambda ckpt: self.fit(cfg, tset, ckpt))

    def fit(self, cfg: dict[str, Any], tset: TensorData, checkpoint: Path) -> Trained:
        """Train the configuration ``cfg`` (:meth:`config`) on ``tset``, resuming from ``checkpoint``."""
        p, dev = self.run.params, self.run.dev
        seed, scheme, threat = p["seed"], cfg["scheme"], self.threat.with_eps(cfg["threat"]["eps_linf"])
        torch.manual_seed(seed)  # the same initialisation for every network of one architecture and width
        model = build(cfg["arch"], cfg["width"]).to(dev)
        scales, rest = noise_parameters(model)
        groups = [{"params": rest, "weight_decay": p["weight_decay"]}]
        if scales:  # PNI's noise scales are not decayed (He et al. 2019)
            groups.append({"params": scales, "weight_decay": 0.0})
        opt = torch.optim.SGD(groups, lr=cfg["lr"], momentum=0.9)
        sched = step_schedule(opt, cfg["epochs"], cfg["milestones"])
        adversary = make_adversary(scheme, threat, natural_fraction=p["natural_fraction"], seed=seed)
        loader = Loader(tset, p["batch_size"], shuffle=True, seed=seed, device=dev)
        tag = f"{cfg['arch']}/{scheme}" + (f" ε={threat.eps_linf:g}" if scheme != "natural" else "")

        def log(epoch: int, row: dict) -> None:
            if adversary is not None:  # how many batches each attack crafted so far (MAT-Rand, the recipe)
                row.update({f"batches_{k}": float(v) for k, v in adversary.counts.items()})
            if scales:
                row["noise_scale"] = float(np.mean(noise_scales(model)))

        common = dict(optimizer=opt, scheduler=sched, epochs=cfg["epochs"], adversary=adversary, seed=seed, desc=tag)
        best = None
        if cfg["early_stop"]:
            test_curve = None
            if cfg["curve"]:
                test_curve = lambda m: evaluate.accuracy(m, self.curve, self.curve_attack, desc="test curve")  # noqa: E731
            history, best = fit_selected(
                model, loader, self.val, val_attack=self.curve_attack, checkpoint=checkpoint, test_curve=test_curve,
                on_epoch_end=log, **common,
            )  # fmt: skip
            best["checkpoint"] = checkpoint  # it also holds the last epoch's weights
        else:
            val = self.val if cfg["learning_curve"] else None
            history = training.fit(model, loader, val=val, checkpoint=checkpoint, on_epoch_end=log, **common)
        return model.eval(), history, best

    def last_epoch(self, arch: str, width: int, best: dict[str, Any]) -> nn.Module:
        """The last epoch's weights of an early-stopped run (kept in its checkpoint ``best["checkpoint"]``), in
        eval mode: to score the selected and the last checkpoint on the same test images."""
        model = build(arch, width).to(self.run.dev)
        model.load_state_dict(training.load_checkpoint(best["checkpoint"], map_location=self.run.dev)["model"])
        return model.eval()
