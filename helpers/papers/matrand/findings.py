"""The numbers behind each of the chapter's claims, in words: the ``ours`` text of ``run.claim``.

One function per claim of ``notebooks/claims/03_matrand_wrn.yaml`` (BIPARO 2021's findings), named after its key.
Each reads the chapter's tables (:meth:`~helpers.papers.matrand.grading.Grader.table`: accuracies as fractions,
rows labelled by ``Grader.labels``) and states our numbers next to the document's way of measuring them: the
suite's robust accuracy on its images, and the document's PGD on all test images. The effects themselves, with
their intervals, are computed in the chapter from the per-image scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from torch import nn

from helpers.core.evaluate import Scores
from helpers.papers.matrand.grading import Grader, with_spread
from helpers.papers.matrand.report import ADVERSARIAL, overfit_curve, recipe_gains, table1_margins
from helpers.papers.matrand.threat import LABELS

SUITE_ROWS = {"l-inf suite": "suite_linf", "l2 suite": "suite_l2"}


def pct(v: float) -> str:
    """An accuracy (a fraction) in % with one decimal."""
    return f"{100 * v:.1f}%"


def _short(column: str) -> str:
    return column.split(" training")[0]


def pgd_training_robust_all_attacks(t1: pd.DataFrame, g: Grader) -> str:
    """Table 1: each PGD training's gain over natural training, under the suite and the document's attacks."""
    margin, margin_doc = table1_margins(t1, g)
    return (
        "; ".join(f"{_short(c)} trained, {r}: {100 * v:+.1f} pts" for (c, r), v in margin.items())
        + "; the document's attacks (all test images): "
        + "; ".join(f"{_short(c)}, {r}: {100 * v:+.1f}" for (c, r), v in margin_doc.items())
    )


def l2_training_best_under_l2(t1: pd.DataFrame, g: Grader) -> str:
    """Table 1: the three adversarial trainings under the l2 suite and the document's l2 PGD."""
    row = g.labels()
    under = lambda r: ", ".join(f"{_short(c)}: {pct(v)}" for c, v in t1.loc[row[r], list(ADVERSARIAL)].items())  # noqa: E731
    return f"l2 suite: {under('suite_l2')}; the document's l2 PGD: {under('pgd_l2')}"


def matching_eps_best(sweep: pd.DataFrame, g: Grader) -> str:
    """Fig. 1: the robust accuracy per training radius (``sweep``: one row per radius)."""
    row = g.labels()
    per_eps = lambda r: ", ".join(f"ε={e:g}: {pct(v)}" for e, v in sweep[row[r]].items())  # noqa: E731
    return f"suite: {per_eps('suite_linf')}; the document's PGD: {per_eps('pgd_linf')}"


def under_training_hurts_more(sweep: pd.DataFrame, g: Grader, *, below: float, above: float) -> str:
    """Fig. 1: training under the attack's radius (``below``) against over it (``above``)."""
    row = g.labels()
    rob, rob_doc = sweep[row["suite_linf"]], sweep[row["pgd_linf"]]
    return (
        f"suite: ε={below:g}: {pct(rob[below])}, ε={above:g}: {pct(rob[above])}; the document's PGD: "
        f"{pct(rob_doc[below])} and {pct(rob_doc[above])}"
    )


def matrand(t2: pd.DataFrame, g: Grader, norm: str) -> str:
    """Table 2: MAT-Rand against l-inf PGD training at the ``norm`` radius ("linf" or "l2")."""
    row, name = g.labels(), LABELS[f"pgd_{norm}"].split()[0]
    vs = lambda r: f"{pct(t2.loc[row[r], 'MAT-Rand'])} vs {pct(t2.loc[row[r], 'l-inf PGD training'])}"  # noqa: E731
    return f"{name} suite: {vs(f'suite_{norm}')}; the document's {name} PGD: {vs(f'pgd_{norm}')}"


def robust_overfitting(history: Sequence[Mapping[str, Any]], best: Mapping[str, Any], pair: tuple[Scores, Scores],
                       g: Grader, *, n_test_curve: int) -> str:  # fmt: skip
    """Fig. 2: the selected checkpoint against the last (``pair``: their scores under the document's PGD)."""
    c = overfit_curve(history, best)
    return (
        f"selected epoch {best['epoch']} of {c['last_epoch']} (first drop at {c['first_drop']}), the document's "
        f"PGD on {g.n_test} test images: {pct(pair[0].acc)} vs last {pct(pair[1].acc)}; the test curve "
        f"({n_test_curve} images): {pct(c['sel_test'])} vs {pct(c['last_test'])}, peak after the drop "
        f"{pct(c['after'].max())} at epoch {int(c['after'].idxmax())}"
    )


def capacity(t3: pd.DataFrame, g: Grader, sizes: pd.DataFrame, other: str) -> str:
    """Table 3: the wide ResNet-18 against ``other`` (ResNet20: capacity; VGG11: wide against deep)."""
    row, wide = g.labels(), "wide ResNet-18"
    ours = sizes["parameters (ours)"]
    return (
        "; ".join(f"{a}: {pct(t3.loc[row[r], wide])} vs {pct(t3.loc[row[r], other])}" for a, r in SUITE_ROWS.items())
        + f" ({ours[wide]:,} vs {ours[other]:,} parameters); the document's PGD: "
        + "; ".join(
            f"{LABELS[a]} {100 * float(t3.loc[row[a], wide] - t3.loc[row[a], other]):+.1f} pts"
            for a in ("pgd_linf", "pgd_l2")
        )
    )


def noise_injection_gain(gains: pd.DataFrame, g: Grader) -> str:
    """Table 4: the mean gain from noise at prediction, three ways, and per network and radius (suite)."""
    plain, doc_eot, suite_eot = (float(gains[c].mean()) for c in gains.columns)
    return (
        f"mean gain {100 * suite_eot:+.2f} pts graded by the suite (EOT-{g.eot_samples}, {g.draws} draws); under "
        f"the document's PGD on {g.n_test} images {100 * plain:+.2f} pts without EOT and "
        f"{100 * doc_eot:+.2f} pts with EOT; per network and radius (suite): "
        + ", ".join(f"{k} {r} {100 * v:+.1f}" for (k, r), v in gains["gain, suite (EOT)"].items())
    )


def eot_at_least_as_strong(effect: Any, g: Grader) -> str:
    """Table 4, the book's check: EOT against no EOT under the document's PGD (``effect``: its bootstrap)."""
    return (
        f"accuracy under the document's PGD with EOT-{g.eot_samples} minus without, mean over the two noisy networks "
        f"and the two radii: {effect.text(2)}"
    )


def _noisenet_vs(t5: pd.DataFrame, t5_sd: pd.DataFrame, g: Grader, attack: str) -> tuple[str, str]:
    txt, row = with_spread(t5, t5_sd), g.labels(randomized=True)
    return txt.loc[row[attack], "NoiseNet20"], txt.loc[row[attack], "ResNet20"]


def noisenet_robust_gain(t5: pd.DataFrame, t5_sd: pd.DataFrame, g: Grader) -> str:
    """Table 5: NoiseNet20 against ResNet20 under the suite at both radii and the document's l-inf PGD."""
    vs = lambda a: "{}% vs {}%".format(*_noisenet_vs(t5, t5_sd, g, a))  # noqa: E731
    return (
        f"l-inf suite: {vs('suite_linf')}; l2 suite: {vs('suite_l2')}; the document's l-inf PGD (no EOT): "
        f"{vs('pgd_linf')}"
    )


def noisenet_natural_cost(t5: pd.DataFrame, t5_sd: pd.DataFrame, g: Grader) -> str:
    """Table 5: the natural accuracies of NoiseNet20 (over the noise draws) and ResNet20."""
    noisy, plain = _noisenet_vs(t5, t5_sd, g, "natural")
    return (
        f"natural accuracy on {g.n_test} test images: NoiseNet20 {noisy}% over {g.draws} noise draws, ResNet20 {plain}%"
    )


def recipe_improves(pair: tuple[nn.Module, nn.Module], t6: pd.DataFrame, g: Grader) -> str:
    """Table 6: the recipe (``pair[1]``, with noise) minus the baseline (``pair[0]``), on the suite's images."""
    gain = recipe_gains(t6, g)
    natural = 100 * float(g.grade(pair[1], "linf").clean.acc - g.grade(pair[0], "linf").clean.acc)
    return (
        f"on the suite's {len(g.suite_data)} images, recipe (noise, EOT) minus baseline: natural {natural:+.1f}, "
        f"l-inf suite {100 * gain['suite_linf']:+.1f}, l2 suite {100 * gain['suite_l2']:+.1f} pts "
        f"(natural on all {g.n_test} images: {100 * gain['natural']:+.1f} pts)"
    )
