"""One place where the book scores models: clean and attacked accuracy, per-sample correctness, transfer, the
PGD battery.

Every accuracy in the book comes from here (the strong evaluation suite, :mod:`helpers.core.suite`, builds on it):

- :func:`scores` returns a :class:`Scores`: the per-sample correctness (N,) of a model on a loader, clean or
  attacked, averaged over ``draws`` forward passes. Per-sample values let claims compare two models on the
  same images with paired statistics (:mod:`helpers.stats`). A randomized model (noise layers, PNI, RSE) is
  scored as the mean over at least 10 fresh noise draws; its adversarial examples are crafted once per batch
  (with EOT, see :mod:`helpers.core.attacks`) and every draw is scored on the same examples.
- :func:`evaluate` / :func:`accuracy` / :func:`robust_accuracy`: the single-draw forms the training loop uses.
- :func:`perturb`: attack a dataset once and score any model on the result (transfer, Szegedy et al. 2014).
- :func:`battery`: the accuracy of a model under a grid of l-inf PGD radii and step sizes (document 2's
  battery). It shows what a weak attack reports; robustness itself is graded by :func:`helpers.core.suite.grade`.

Inputs are images in [0, 1] (normalization is a model layer); the model's mode is restored on exit
(:func:`helpers.core.attacks.eval_mode`). Models with extra inputs (photo-z's ``model(images, ebv)``) get them bound
per batch (:func:`bind`), so attacks perturb the images only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import attacks as A
from helpers.core.data import Loader, TensorData
from helpers.core.device import autocast
from helpers.core.params import check_int
from helpers.core.progress import bar

MIN_DRAWS = 10  # randomized models: every accuracy is a mean over at least this many noise draws (issue 15)


class Bound(nn.Module):
    """``model`` with its extra inputs fixed for one batch: ``Bound(net, ebv)(x) == net(x, ebv)``.

    Attacks see a plain ``x -> logits`` callable and so perturb the images only; the wrapped model is a
    submodule, so :func:`~helpers.core.attacks.eval_mode` on the wrapper reaches it.
    """

    def __init__(self, model: nn.Module, *extra: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.extra = extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, *self.extra)


def bind(model: nn.Module, extra: Sequence[torch.Tensor]) -> nn.Module:
    """``model`` itself when there are no extra inputs, else :class:`Bound`."""
    return Bound(model, *extra) if len(extra) else model


@dataclass
class Scores:
    """Per-sample correctness of a model on a dataset, clean or under one attack, over one or more draws.

    ``hits``: (draws, N) float 0/1, whether draw d classified sample i correctly (one row for a deterministic
    model); ``attack``: what produced the inputs ("clean" or the attack's name).
    """

    hits: torch.Tensor
    attack: str = "clean"

    @property
    def correct(self) -> torch.Tensor:
        """(N,) float in [0, 1]: the fraction of draws on which each sample is classified correctly."""
        return self.hits.mean(0)

    @property
    def per_draw(self) -> torch.Tensor:
        """(draws,) the accuracy of each draw."""
        return self.hits.mean(1)

    @property
    def acc(self) -> float:
        """Mean accuracy over samples and draws."""
        return float(self.hits.mean()) if self.hits.numel() else float("nan")

    @property
    def draws(self) -> int:
        return self.hits.shape[0]

    @property
    def spread(self) -> float:
        """Standard deviation of the accuracy between draws (0 for one draw)."""
        return float(self.per_draw.std()) if self.draws > 1 else 0.0

    def minimum(self, *others: Scores, attack: str) -> Scores:
        """The per-sample worst case over this and ``others``: each sample keeps the hits of the attack under
        which it is least often correct (an image counts as robust only if every attack leaves it standing)."""
        stack = torch.stack([self.hits, *[o.hits for o in others]])  # (attacks, draws, N)
        worst = stack.mean(1).argmin(0)  # (N,) first attack with the lowest correct fraction
        return Scores(stack[worst, :, torch.arange(stack.shape[2])].T.contiguous(), attack)

    def summary(self) -> dict[str, Any]:
        return {"attack": self.attack, "accuracy": self.acc, "draws": self.draws, "spread": self.spread}


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, amp: bool) -> torch.Tensor:
    with autocast(x.device, amp):
        return model(x).float()


def scores(
    model: nn.Module,
    loader: Loader,
    attack: A.AttackFn | None = None,
    *,
    draws: int = 1,
    attack_model: nn.Module | None = None,
    name: str | None = None,
    amp: bool = False,
    desc: str | None = None,
) -> Scores:
    """Per-sample correctness of ``model`` on ``loader``, clean or under ``attack``, over ``draws`` passes.

    The attack runs once per batch on ``attack_model`` (default ``model``: an RSE ensemble predicts through
    ``model`` but is attacked through its single-pass member), then each of the ``draws`` forward passes of
    ``model`` scores the same inputs. Randomized models need ``draws >= MIN_DRAWS``; deterministic ones 1.
    """
    draws = check_int("draws", draws, low=1)
    target = model if attack_model is None else attack_model
    hits = []
    with A.eval_mode(model), A.eval_mode(target):
        for x, y, *extra in bar(loader, desc=desc or name or "score", leave=False, total=len(loader)):
            if attack is not None:
                x = attack(bind(target, extra), x, y)
            net = bind(model, extra)
            hits.append(torch.stack([(_predict(net, x, amp).argmax(1) == y).cpu() for _ in range(draws)]).float())
    h = torch.cat(hits, 1) if hits else torch.zeros(draws, 0)
    return Scores(h, name or ("clean" if attack is None else "attack"))


def evaluate(
    model: nn.Module,
    loader: Loader,
    *,
    attack: A.AttackFn | None = None,
    amp: bool = False,
    desc: str | None = None,
    keep_outputs: bool = False,
) -> dict[str, Any]:
    """Accuracy and mean cross-entropy of ``model`` on ``loader`` (one draw), clean or ``attack``-ed.

    The model is put in eval mode for the duration (and restored). Returns ``{"acc", "loss", "n",
    "correct"}`` where ``correct`` is a bool tensor (N,) in loader order (unshuffled loaders only), plus
    ``"outputs"`` (N, K) on the CPU with ``keep_outputs`` (e.g. the photo-z chapter's redshift PDFs).
    """
    correct, outputs, total_loss, n = [], [], 0.0, 0
    with A.eval_mode(model):
        for x, y, *extra in bar(loader, desc=desc or "evaluate", leave=False, total=len(loader)):
            net = bind(model, extra)
            if attack is not None:
                x = attack(net, x, y)
            logits = _predict(net, x, amp)
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct.append((logits.argmax(1) == y).cpu())
            if keep_outputs:
                outputs.append(logits.cpu())
            n += len(y)
    c = torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)
    res = {"acc": float(c.float().mean()) if n else float("nan"), "loss": total_loss / max(n, 1), "n": n, "correct": c}
    if keep_outputs:
        res["outputs"] = torch.cat(outputs) if outputs else torch.zeros(0)
    return res


def accuracy(model: nn.Module, loader: Loader, attack: A.AttackFn | None = None, **kwargs: Any) -> float:
    """Shorthand for ``evaluate(...)["acc"]`` (one draw: for deterministic models)."""
    return evaluate(model, loader, attack=attack, **kwargs)["acc"]


def robust_accuracy(
    model: nn.Module, loader: Loader, attacks: Mapping[str, A.AttackFn | None], **kwargs: Any
) -> dict[str, float]:
    """Accuracy under each named attack (``None`` = clean): ``{"clean": 0.98, "pgd": 0.01, ...}``."""
    return {name: accuracy(model, loader, atk, desc=name, **kwargs) for name, atk in attacks.items()}


def perturb(
    model: nn.Module, data: TensorData, attack: A.AttackFn, *, batch_size: int = 256, desc: str = "perturb"
) -> TensorData:
    """Attack every sample of ``data`` once and return the attacked copy (float images, same labels/extras).

    Craft once, score many: evaluating other models on the result measures transfer (Szegedy et al. 2014),
    and evaluating the same model again costs no further attack. ``model`` is in eval mode while attacking.
    """
    loader = Loader(data, batch_size, device=next(model.parameters()).device)
    parts = []
    with A.eval_mode(model):
        for x, y, *extra in bar(loader, desc=desc, leave=False, total=len(loader)):
            parts.append(attack(bind(model, extra), x, y).cpu())
    return TensorData(torch.cat(parts), data.y, data.classes, data.extra, data.source)


def battery(
    model: nn.Module,
    loader: Loader,
    eps_list: Iterable[float],
    delta_list: Iterable[float],
    steps: int,
    *,
    attack_model: nn.Module | None = None,
    eot_samples: int = 1,
    draws: int = 1,
    seed: int = 0,
    desc: str = "battery",
) -> pd.DataFrame:
    """Accuracy of ``model`` under l-inf PGD for each radius ``eps`` (rows) and step ``delta`` (columns).

    Document 2's battery. Each attack runs ``steps`` iterations from a random start (drawn from a generator
    seeded with ``seed``, the same for every model). ``attack_model`` (default: ``model``) is what the attacker
    differentiates, with ``eot_samples`` draws per step; accuracies are means over ``draws`` passes of
    ``model``. A cell whose ``steps * delta < eps`` cannot reach the radius: it measures the attack's budget
    as much as the model (see :func:`helpers.core.suite.grade` for the model's robustness).
    """
    check_int("steps", steps, low=1)
    rows = {}
    for eps in eps_list:
        row = {}
        for delta in delta_list:
            gen = torch.Generator().manual_seed(seed)
            atk = A.make_attack(
                "pgd", eps, alpha=delta, steps=steps, random_start=True, eot_samples=eot_samples, generator=gen
            )
            row[delta] = scores(model, loader, atk, draws=draws, attack_model=attack_model, desc=desc).acc
        rows[eps] = row
    out = pd.DataFrame(rows).T
    out.index.name, out.columns.name = "eps", "delta"
    return out
