"""Latent codes under attack (Volpato 2019, Secs. 3.1-3.4): the codes of a test set, the attacked losses, the
robustness curves, and the book's gradient-masking check.

Encoders output ``z`` (N, d); the decision rule is ``z.argmax(1)`` (the nearest target mean for RegNet, the
largest logit for cross-entropy), so both are attacked and scored alike. Radii are l-inf, in [0, 1] pixel units.

- Attack losses on latent codes (summed over the batch, as :mod:`helpers.core.attacks` expects): cross-entropy of
  ``z`` read as logits is the attacks' default (what the thesis' FGSM attacks); :func:`margin_loss`
  (Carlini & Wagner 2017) does not saturate when the targets are far apart, which makes it the check for
  gradient masking (Athalye, Carlini & Wagner 2018).
- :func:`fgsm_scores` scores a model once per run (through the run's score-once cache) at every radius of a grid,
  keeping the per-digit correctness that the claims' paired intervals need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import attacks, evaluate
from helpers.core.attacks import AttackFn, eval_mode
from helpers.core.data import Loader
from helpers.core.params import check_choice


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


def fgsm_scores(
    run: Any, model: nn.Module, loader: Loader, eps_list: Sequence[float], *, test: str, desc: str = ""
) -> list[evaluate.Scores]:
    """Per-digit correctness under FGSM (cross-entropy on z, the thesis' attack) at each radius of
    ``eps_list`` (0: clean), scored once per run: ``run.scored`` keys it on the model's ``train_key``
    (:func:`helpers.papers.regnet.encoders.trained`), the name ``test`` of the test set and the radii.

    Returns one :class:`helpers.core.evaluate.Scores` per radius (``hits`` (1, N) float 0/1, the same N digits
    in the same order at every radius, as paired comparisons need).
    """
    key = getattr(model, "train_key", None)
    if key is None:
        raise ValueError("model must come from helpers.papers.regnet.encoders.trained (it has no train_key)")

    def score() -> list[evaluate.Scores]:
        return [
            evaluate.scores(model, loader, (lambda m, x, y, e=e: attacks.fgsm(m, x, y, e)) if e > 0 else None,
                            desc=f"{desc} fgsm eps={e:g}")
            for e in eps_list
        ]  # fmt: skip

    return run.scored(("fgsm", key, test, [float(e) for e in eps_list]), score)


def fgsm_curve(
    run: Any, model: nn.Module, loader: Loader, eps_list: Sequence[float], *, test: str, desc: str = ""
) -> list[float]:
    """FGSM accuracy in [0, 1] at each radius of ``eps_list`` (:func:`fgsm_scores`, scored once per run)."""
    return [s.acc for s in fgsm_scores(run, model, loader, eps_list, test=test, desc=desc)]


def fgsm_hits(
    run: Any, model: nn.Module, loader: Loader, eps_list: Sequence[float], *, test: str, desc: str = ""
) -> torch.Tensor:
    """(radii, N) float 0/1: the per-digit correctness under FGSM at each radius ``eps > 0`` of ``eps_list``
    (:func:`fgsm_scores`, scored once per run), for paired comparisons over the same digits."""
    scores = fgsm_scores(run, model, loader, eps_list, test=test, desc=desc)
    return torch.stack([s.hits[0] for e, s in zip(eps_list, scores, strict=True) if e > 0])


def curve_rows(eps_list: Sequence[float], accuracy: Sequence[float], **labels: Any) -> list[dict[str, Any]]:
    """Long-format rows ``{**labels, "ε": e, "accuracy": a}`` of one accuracy curve, for a DataFrame."""
    return [{**labels, "ε": e, "accuracy": a} for e, a in zip(eps_list, accuracy, strict=True)]


def accuracy_at(curves: pd.DataFrame, model: str, eps: float, **where: Any) -> float:
    """The accuracy of ``model`` at radius ``eps`` in a long-format table of curves (:func:`curve_rows`),
    among the rows matching every ``column=value`` of ``where``; the first match."""
    sel = curves[(curves.model == model) & np.isclose(curves["ε"], eps)]
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return float(sel.accuracy.iloc[0])


def class_shares(z: torch.Tensor) -> torch.Tensor:
    """(d,) fraction of the codes ``z`` (N, d) decided as each class (``argmax``): where an attack sends them."""
    return torch.bincount(z.argmax(1), minlength=z.shape[1]).float() / len(z)


def latents_under_fgsm(
    model: nn.Module, loader: Loader, eps_list: Sequence[float]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The latent codes (:func:`latents`) of ``loader`` under FGSM at each radius of ``eps_list`` (0: clean),
    thesis Figs. 3.2-3.5."""
    out = []
    for e in eps_list:
        atk = (lambda m, x, y, e=e: attacks.fgsm(m, x, y, e)) if e > 0 else None
        out.append(latents(model, loader, atk))
    return out


MASKING_ATTACKS = (("fgsm", "cross-entropy", None), ("fgsm", "margin", margin_loss),
                   ("pgd", "cross-entropy", None), ("pgd", "margin", margin_loss))  # fmt: skip


def gradient_masking_table(
    models: Mapping[str, nn.Module], loader: Loader, eps_list: Sequence[float], *, steps: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The book's gradient-masking check (beyond the thesis): FGSM and ``steps``-step PGD, each on the
    cross-entropy of z and on the :func:`margin_loss`, at every radius of ``eps_list``, for every named model.

    Returns the long table (model, attack, ε, accuracy) and the worst PGD accuracy per radius (rows: ε,
    columns: model). A robustness that FGSM sees and PGD on the margin does not is gradient masking.
    """
    rows = []
    for name, model in models.items():
        for attack, loss_name, loss_fn in MASKING_ATTACKS:
            acc = attack_curve(model, loader, eps_list, attack=attack, loss_fn=loss_fn, steps=steps, seed=seed,
                               desc=name)  # fmt: skip
            rows += curve_rows(eps_list, acc, model=name, attack=f"{attack.upper()} ({loss_name})")
    table = pd.DataFrame(rows)
    worst = table[table.attack.str.startswith("PGD")].groupby(["model", "ε"]).accuracy.min().unstack("model")
    return table, worst


def pgd_verdict(adv_fgsm: float, adv_pgd: float) -> str:
    """What the PGD check says of RegNet's FGSM advantage ``adv_fgsm`` (RegNet minus cross-entropy accuracy,
    in [-1, 1]) given its advantage under the worst PGD, ``adv_pgd``."""
    if adv_fgsm <= 0:
        return "there is no FGSM advantage to explain"
    if adv_pgd <= 0:
        return "the FGSM advantage vanishes under PGD: it came from FGSM's weakness against RegNet (gradient masking)"
    if adv_pgd < 0.5 * adv_fgsm:
        return (
            f"RegNet keeps {100 * adv_pgd:.1f} of its {100 * adv_fgsm:.1f} points of FGSM advantage under PGD: "
            "most of it came from FGSM's weakness against RegNet, a small part survives"
        )
    return f"RegNet keeps {100 * adv_pgd:.1f} of its {100 * adv_fgsm:.1f} points under PGD: not gradient masking"


def suite_verdict(adv_suite: float, adv_fgsm: float) -> str:
    """What the strong suite says of RegNet against cross-entropy: ``adv_suite`` and ``adv_fgsm`` are RegNet
    minus cross-entropy robust accuracy (in [-1, 1]) under the suite and under FGSM on the same digits."""
    if adv_suite > 0:
        return (
            f"RegNet stays ahead of cross-entropy under the suite, by {100 * adv_suite:.1f} points "
            f"({100 * adv_fgsm:+.1f} under FGSM)"
        )
    if adv_fgsm > 0:
        return (
            f"RegNet is not more robust than cross-entropy under the suite ({100 * adv_suite:+.1f} points, "
            f"{100 * adv_fgsm:+.1f} under FGSM): the FGSM advantage measures FGSM's weakness against RegNet, "
            "not RegNet's robustness"
        )
    return f"RegNet is ahead of cross-entropy neither under FGSM nor under the suite ({100 * adv_suite:+.1f} points)"
