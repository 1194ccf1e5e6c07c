"""One training/evaluation loop for every chapter, with a pluggable adversary and resumable checkpoints.

- :class:`Adversary` decides, batch by batch, which fraction of the batch is replaced by adversarial
  examples and which attack makes them. Subclasses cover the documents' schemes: a fixed fraction
  (photo-z Alg. 1; Madry-style training at fraction 1), curricula whose attack changes with training
  progress (curriculum adversarial training), and a random or worst-case choice among attacks per batch
  (MAT-Rand / MAT-Max, Araujo et al. 2020).
- :func:`fit` trains with any optimizer and scheduler, keeps a per-epoch history, evaluates clean and
  robust accuracy on a validation loader, tracks the best epoch, and writes an atomic checkpoint after
  every epoch. Rerunning with the same checkpoint path resumes, or returns at once when training is done;
  :func:`checkpoint_path` keys that path by a hash of the run's configuration.
- Scoring lives in :mod:`helpers.core.evaluate` (the validation metrics here use it).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.attacks import AttackFn, eval_mode
from helpers.core.data import Loader, cache_dir
from helpers.core.device import autocast, synchronize
from helpers.core.evaluate import accuracy, bind, evaluate
from helpers.core.io import atomic_path
from helpers.core.params import check_fraction, check_int
from helpers.core.progress import bar

History = list[dict[str, float]]


class Adversary:
    """Replace a ``fraction`` of each training batch by ``attack(model, x, y)`` outputs.

    Which samples are replaced is drawn from the loop's generator (reproducible). The attack runs with the
    model in eval mode by default (BatchNorm running statistics, no dropout), the common choice for
    adversarial training; set ``attack_in_eval=False`` to attack the model in train mode.
    ``fraction=1`` is Madry et al.'s adversarial training; ``0 < fraction < 1`` is photo-z Alg. 1 (and the
    document 2 "attacked ratio").
    """

    def __init__(self, attack: AttackFn | None, fraction: float = 1.0, *, attack_in_eval: bool = True) -> None:
        self.attack = attack
        self.fraction = check_fraction("fraction", fraction)
        self.attack_in_eval = attack_in_eval
        self.counts: dict[str, int] = {}

    def attack_for(self, progress: float, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AttackFn | None:
        """The attack for this batch; ``progress`` = elapsed epochs / total epochs, in [0, 1)."""
        return self.attack

    def _count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        progress: float,
        generator: torch.Generator,
        extra: Sequence[torch.Tensor] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the batch to train on and a boolean mask (B,) of the samples that were attacked.

        ``extra``: the batch's further model inputs (never perturbed), bound to the model for the attack.
        """
        n_adv = int(round(self.fraction * len(x)))
        mask = torch.zeros(len(x), dtype=torch.bool)
        if n_adv == 0:
            return x, mask.to(x.device)
        idx = torch.randperm(len(x), generator=generator)[:n_adv]
        mask[idx] = True
        mask = mask.to(x.device)
        model = bind(model, [e[mask] for e in extra])
        attack = self.attack_for(progress, model, x[mask], y[mask])
        if attack is None:
            return x, torch.zeros_like(mask)
        if self.attack_in_eval:
            with eval_mode(model):
                x_adv = attack(model, x[mask], y[mask])
        else:
            x_adv = attack(model, x[mask], y[mask])
        out = x.clone()
        out[mask] = x_adv.to(out.dtype)
        self._count("adversarial", n_adv)
        self._count("natural", len(x) - n_adv)
        return out, mask


class ScheduledAdversary(Adversary):
    """An attack that changes with training progress: ``make_attack(progress) -> AttackFn``.

    Curriculum adversarial training uses it with a radius and an iteration count that grow with progress.
    """

    def __init__(
        self,
        make_attack: Callable[[float], AttackFn | None],
        fraction: float = 1.0,
        *,
        attack_in_eval: bool = True,
    ) -> None:
        super().__init__(None, fraction, attack_in_eval=attack_in_eval)
        self.make_attack = make_attack

    def attack_for(self, progress: float, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AttackFn | None:
        return self.make_attack(progress)


class MixedAdversary(Adversary):
    """Choose among named attacks for each batch (Araujo et al. 2020, MAT).

    ``mode="random"`` (MAT-Rand) draws one attack per batch with probabilities ``weights``;
    ``mode="max"`` (MAT-Max) runs them all and keeps, per sample, the one with the highest loss.
    ``counts`` records how many batches each attack was used for (MAT-Max: how many samples).
    An attack given as ``None`` stands for the natural batch: drawn in random mode, the batch is trained on
    unattacked (and not counted as adversarial); in max mode the clean input is one of the candidates.
    """

    def __init__(
        self,
        attacks: Mapping[str, AttackFn | None],
        weights: Sequence[float] | None = None,
        fraction: float = 1.0,
        *,
        mode: str = "random",
        attack_in_eval: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(None, fraction, attack_in_eval=attack_in_eval)
        if mode not in ("random", "max"):
            raise ValueError(f"mode must be one of 'random', 'max' (got {mode!r})")
        if not attacks:
            raise ValueError("attacks must name at least one attack (got none)")
        self.attacks = dict(attacks)
        w = torch.tensor(list(weights) if weights is not None else [1.0] * len(self.attacks), dtype=torch.float)
        if len(w) != len(self.attacks) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.attacks)} non-negative numbers, not all 0 (got {weights})")
        self.weights = w / w.sum()
        self.mode = mode
        self._g = torch.Generator().manual_seed(seed)

    def attack_for(self, progress: float, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> AttackFn | None:
        names = list(self.attacks)
        if self.mode == "random":
            name = names[int(torch.multinomial(self.weights, 1, generator=self._g))]
            self._count(name)
            return self.attacks[name]

        def worst(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            candidates = [
                x.detach().clone() if self.attacks[n] is None else self.attacks[n](model, x, y) for n in names
            ]
            with torch.no_grad():
                losses = torch.stack([F.cross_entropy(model(c), y, reduction="none") for c in candidates])
            best = losses.argmax(0)
            for i, n in enumerate(names):
                self._count(n, int((best == i).sum()))
            stacked = torch.stack(candidates)
            return stacked[best, torch.arange(len(x), device=x.device)]

        return worst


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of a JSON-able configuration (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def checkpoint_path(name: str, config: Mapping[str, Any]) -> Path:
    """``<cache>/checkpoints/<name>-<hash>.pt``: same configuration, same file, so reruns skip training."""
    return cache_dir() / "checkpoints" / f"{name}-{config_hash(config)}.pt"


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """``torch.save(state, path)`` atomically: a crash leaves the previous checkpoint, never half a file."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only; no pickled code)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def fit(
    model: nn.Module,
    train: Loader,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    scheduler: Any | None = None,
    adversary: Adversary | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    regularizer: Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor] | None = None,
    val: Loader | None = None,
    val_attack: AttackFn | None = None,
    select: str | None = None,
    checkpoint: str | Path | None = None,
    amp: bool = False,
    seed: int = 0,
    desc: str = "train",
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    collapse: float | None = None,
) -> History:
    """Train ``model`` for ``epochs`` and return the per-epoch history.

    - ``loss_fn(outputs, y)`` defaults to mean cross-entropy; chapters pass their own (latent losses, PDFs).
    - ``regularizer(model, x, y, progress)`` returns a scalar added to the loss, for terms that need the
      inputs themselves (input-gradient penalties such as CURE); ``progress`` = elapsed epochs / total epochs
      in [0, 1), for schedules. Its mean per sample is recorded as ``train_reg``.
    - ``adversary`` perturbs each training batch (see :class:`Adversary`); its attack runs in eval mode.
    - ``scheduler.step()`` runs once per epoch; ``ReduceLROnPlateau`` is stepped with the validation loss
      (training loss without ``val``).
    - With ``val``, each epoch records ``val_acc`` and ``val_loss``, and with ``val_attack`` also
      ``val_robust_acc``. ``select`` names a history key to maximise: the best epoch's weights are kept in the
      checkpoint under ``"best"`` (load them with :func:`load_best`). Selection uses ``val``, never the test set.
    - ``on_epoch_end(epoch, row)`` runs after selection and before the checkpoint is written: entries it adds
      to ``row`` (say a test-set curve for a figure) are kept in the history and the checkpoint, and can never
      influence which epoch is selected.
    - ``checkpoint``: written atomically after every epoch; an existing one is resumed (same batches, same
      RNG), and a finished one makes ``fit`` return its history without training.
    - ``collapse``: the catastrophic-overfitting guard of fast adversarial training (Wong, Rice & Kolter
      2020: FGSM training can lose all robustness to PGD within an epoch while its FGSM accuracy climbs).
      Needs ``val`` and ``val_attack`` (a PGD attack); ``select`` defaults to ``"val_robust_acc"``. When an
      epoch's ``val_robust_acc`` falls more than ``collapse`` (absolute, in [0, 1]) below the best epoch's,
      training stops there: the best epoch's weights are restored, the row records ``collapsed = 1``, and
      the checkpoint is marked finished.

    History rows hold: epoch, lr, train_loss, train_acc, adv_fraction, seconds, images_per_s, and the
    validation metrics above.
    """
    epochs = check_int("epochs", epochs, low=0)
    if collapse is not None:
        collapse = check_fraction("collapse", collapse)
        if val is None or val_attack is None:
            raise ValueError("collapse needs val and val_attack (the robust validation accuracy it watches)")
        select = select or "val_robust_acc"
    loss_fn = loss_fn or (lambda out, y: F.cross_entropy(out, y))
    device = next(model.parameters()).device
    history: History = []
    best: dict[str, Any] | None = None
    start_epoch = 0
    rng = torch.Generator().manual_seed(seed)
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, best, start_epoch = list(state["history"]), state.get("best"), int(state["epoch"])
        rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
    for epoch in range(start_epoch, epochs):
        model.train()
        train.set_epoch(epoch)
        sums = {"loss": 0.0, "correct": 0.0, "n": 0, "adv": 0, "reg": 0.0}
        synchronize(device)
        t0 = time.perf_counter()
        for b, (x, y, *extra) in enumerate(
            bar(train, desc=f"{desc} {epoch + 1}/{epochs}", leave=False, total=len(train))
        ):
            progress = (epoch + b / max(len(train), 1)) / max(epochs, 1)
            if adversary is not None:
                x, mask = adversary(model, x, y, progress=progress, generator=rng, extra=extra)
                sums["adv"] += int(mask.sum())
            with autocast(device, amp):
                out = model(x, *extra)
                loss = loss_fn(out, y)
                if regularizer is not None:
                    reg = regularizer(bind(model, extra), x, y, progress)
                    loss = loss + reg
                    sums["reg"] += float(reg.detach()) * len(y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["loss"] += float(loss.detach()) * len(y)
            if out.dim() == 2 and out.shape[1] > 1:
                sums["correct"] += float((out.argmax(1) == y).sum())
            sums["n"] += len(y)
        synchronize(device)
        seconds = time.perf_counter() - t0
        n = max(sums["n"], 1)
        row: dict[str, float] = {
            "epoch": epoch + 1,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "train_loss": sums["loss"] / n,
            "train_acc": sums["correct"] / n,
            "adv_fraction": sums["adv"] / n,
            **({"train_reg": sums["reg"] / n} if regularizer is not None else {}),
            "seconds": seconds,
            "images_per_s": sums["n"] / seconds if seconds > 0 else float("nan"),
        }
        if val is not None:
            ev = evaluate(model, val, amp=amp, desc="validate")
            row["val_acc"], row["val_loss"] = ev["acc"], ev["loss"]
            if val_attack is not None:
                row["val_robust_acc"] = accuracy(model, val, val_attack, amp=amp, desc="validate (attacked)")
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(row.get("val_loss", row["train_loss"]))
            else:
                scheduler.step()
        history.append(row)
        if select is not None:
            if select not in row:
                raise ValueError(f"select must name a history key, one of {sorted(row)} (got {select!r})")
            if best is None or row[select] > best["metric"]:
                best = {
                    "epoch": epoch + 1,
                    "metric": row[select],
                    "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                }
        collapsed = collapse is not None and best is not None and row["val_robust_acc"] < best["metric"] - collapse
        if collapsed:
            row["collapsed"] = 1.0
            model.load_state_dict(best["model"])  # type: ignore[index]
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                model=model.state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict() if scheduler is not None else None,
                epoch=epochs if collapsed else epoch + 1,  # a collapsed run is finished: a rerun loads it
                history=history,
                best=best,
                rng=rng.get_state(),
                torch_rng=torch.get_rng_state(),
            )
        if collapsed:
            break
    model.eval()
    return history


def load_best(model: nn.Module, checkpoint: str | Path) -> dict[str, Any]:
    """Load the best epoch's weights (see ``fit(select=...)``) into ``model``; return ``{"epoch", "metric"}``."""
    state = load_checkpoint(checkpoint, map_location=next(model.parameters()).device)
    if state.get("best") is None:
        raise ValueError(f"checkpoint {checkpoint} has no best epoch: train with fit(select=...)")
    model.load_state_dict(state["best"]["model"])
    return {"epoch": state["best"]["epoch"], "metric": state["best"]["metric"]}
