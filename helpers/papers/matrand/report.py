"""The numbers the chapter's prose cites, computed from its tables; the document's own numbers; the statistics.

Each ``*_numbers`` function returns ``{glue name: (value, format)}`` for one section of the chapter (format
``None`` glues the value as it is, a string such as ``"{:.1%}"`` formats it for the prose while the run record
keeps the raw value); :func:`glue` hands them to the run. Tables are those of
:meth:`~helpers.papers.matrand.grading.Grader.table`: one column per network, one row per attack (labels from
``Grader.labels``), accuracies as fractions. :data:`DOCUMENT` holds BIPARO (2021)'s Tables 1-6 in %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from helpers.core import models
from helpers.core.evaluate import Scores
from helpers.papers.matrand.fitting import build
from helpers.papers.matrand.grading import Grader, with_spread
from helpers.papers.matrand.threat import ATTACK_NAMES, LABELS, NORMS

Numbers = dict[str, tuple[Any, str | None]]

# The document's accuracies in % (natural, l-inf PGD, l2 PGD, l-inf FGSM) per column; a column of ours that is
# not here (natural training, the EOT columns...) has no counterpart in the document.
DOCUMENT: dict[str, dict[str, list[float]]] = {
    "table1": {
        "l-inf PGD training": [40.7, 27.46, 28.86, 27.96],
        "l2 PGD training": [47.7, 27.22, 32.7, 28.41],
        "l-inf FGSM training": [43.2, 24.15, 25.4, 29.34],
    },
    "table2": {"l-inf PGD training": [79.63, 49.44, 41.48, 64.06], "MAT-Rand": [76.94, 46.52, 52.08, 61.44]},
    "table3": {
        "ResNet20": [70.01, 39.76, 48.10, 53.82],
        "wide ResNet-18": [79.94, 43.52, 54.08, 61.44],
        "VGG11": [75.16, 43.48, 52.54, 57.24],
    },
    "table4": {
        "BasicNet": [24.02, 19.71, 18.56, 19.76],
        "BasicNet with noise": [25.53, 20.78, 18.58, 20.32],
        "wide ResNet": [79.94, 43.52, 54.08, 61.44],
        "wide ResNet with noise": [78.13, 44.04, 54.11, 61.15],
    },
    "table5": {"NoiseNet20": [64.62, 41.15, 49.01, 49.51], "ResNet20": [70.01, 39.76, 48.10, 53.82]},
    "table6": {
        "wide ResNet-18 (l-inf PGD)": [79.63, 49.44, 52.48, 64.08],
        "wider ResNet-18, recipe": [80.37, 52.34, 56.02, 65.35],
    },
}
# The document's widths of Table 3's networks (architecture, first-stage channels), to count their parameters.
DOCUMENT_WIDTHS = {"ResNet20": ("resnet20", 16), "wide ResNet-18": ("resnet18", 64), "VGG11": ("vgg11", 64)}
ADVERSARIAL = ("l-inf PGD training", "l2 PGD training", "l-inf FGSM training")  # Table 1's trained columns


def glue(run: Any, numbers: Numbers) -> Numbers:
    """``run.glue(name, value, fmt)`` for each entry (:meth:`helpers.results.Run.glue`); returns ``numbers``."""
    for name, (value, fmt) in numbers.items():
        run.glue(name, value, fmt)
    return numbers


def _text(**values: str) -> Numbers:
    return {k: (v, None) for k, v in values.items()}


# ---------------------------------------------------------------- statistics of the claims, in points
def pair_min(*s: Any) -> float:
    """The smallest gain over ``(baseline, other)`` pairs of per-image scores ``b0, a0, b1, a1, ...``: min(a - b)."""
    return 100 * min(a.mean() - b.mean() for b, a in zip(s[::2], s[1::2], strict=True))


def pair_mean(*s: Any) -> float:
    """The mean gain over ``(baseline, other)`` pairs of per-image scores ``b0, a0, b1, a1, ...``."""
    return 100 * np.mean([a.mean() - b.mean() for b, a in zip(s[::2], s[1::2], strict=True)])


def best_of_rest(a: Any, *rest: Any) -> float:
    """One model's accuracy minus the best of the others (per-image scores)."""
    return 100 * (a.mean() - max(r.mean() for r in rest))


# ---------------------------------------------------------------- the set-up
def setup_numbers(p: Mapping[str, Any], *, n_train: int, n_val: int, draws: int) -> Numbers:
    """The run's sizes, radii, schedules and budgets as the prose cites them (``p``: the run's parameters;
    ``n_train`` the training subset with its validation split, ``n_val`` that split); with the standard error
    of an accuracy near 50% on the test subset and on the suite's images, and of a difference of two."""
    se, se_s = 0.5 / np.sqrt(p["n_test"]), 0.5 / np.sqrt(p["n_suite"])
    return _text(
        n_train=f"{n_train:,}", n_val=f"{n_val:,}", n_test=f"{p['n_test']:,}", eps=f"{p['eps']:g}",
        eps_l2=f"{p['eps_l2']:g}", alpha=f"{p['alpha']:g}", train_steps=f"{p['train_steps']}",
        eval_steps=f"{p['eval_steps']}", eot_samples=f"{p['eot_samples']}", weight_decay=f"{p['weight_decay']:g}",
        batch_size=f"{p['batch_size']}", se_pts=f"{100 * se:.1f}", se_diff_pts=f"{100 * np.sqrt(2) * se:.1f}",
        se_suite_pts=f"{100 * se_s:.1f}", se_suite_diff_pts=f"{100 * np.sqrt(2) * se_s:.1f}",
        suite_budget=p["suite_budget"], n_suite=f"{p['n_suite']:,}", n_draws=f"{draws}",
        basic_width=f"{p['basic_width']}", basic_epochs=f"{p['basic_epochs']}", wrn_width=f"{p['wrn_width']}",
        lr=f"{p['lr']:g}", epochs=f"{p['epochs']}", overfit_model=p["overfit_model"],
        overfit_n_train=f"{p['overfit_n_train']:,}", overfit_epochs=f"{p['overfit_epochs']}",
        curve_steps=f"{p['curve_steps']}", n_test_curve=f"{p['n_test_curve']:,}", noise_sigma=f"{p['noise_sigma']:g}",
        wider_width=f"{p['wider_width']}", sanity_steps=", ".join(str(k) for k in sorted(set(p["sanity_steps"]))),
        square_queries=f"{p['square_queries']}",
    )  # fmt: skip


# ---------------------------------------------------------------- Table 1 and Figure 1
def table1_margins(t1: pd.DataFrame, g: Grader) -> tuple[dict, dict]:
    """PGD training's gains over natural training, ``{(column, attack): gain}``: under the suite at both radii,
    and under the document's three attacks."""
    row = g.labels()
    suite_rows = {"l-inf suite": row["suite_linf"], "l2 suite": row["suite_l2"]}
    cols = ("l-inf PGD training", "l2 PGD training")
    margin = {(c, short): float(t1.loc[r, c] - t1.loc[r, "natural training"])
              for c in cols for short, r in suite_rows.items()}  # fmt: skip
    margin_doc = {(c, LABELS[a]): float(t1.loc[row[a], c] - t1.loc[row[a], "natural training"])
                  for c in cols for a in ATTACK_NAMES[1:]}  # fmt: skip
    return margin, margin_doc


def table1_numbers(t1: pd.DataFrame, g: Grader, *, n_params: int) -> Numbers:
    """Table 1: the gains of PGD training, l2 training under l2 attacks, the gap between the document's PGD and
    the suite (``n_params``: BasicNet's parameters)."""
    row = g.labels()
    margin, margin_doc = table1_margins(t1, g)
    l2_row, l2_row_doc = t1.loc[row["suite_l2"], list(ADVERSARIAL)], t1.loc[row["pgd_l2"], list(ADVERSARIAL)]
    gaps = 100 * t1.loc[[row["gap_linf"], row["gap_l2"]]].stack()
    return {
        "basic_params": (f"{n_params:,}", None),
        "t1_min_margin": (100 * min(margin.values()), "{:.1f}"),
        "t1_min_margin_doc": (100 * min(margin_doc.values()), "{:.1f}"),
        "t1_nat_pgd": (float(t1.loc[row["suite_linf"], "natural training"]), "{:.1%}"),
        "t1_linf_pgd": (float(t1.loc[row["suite_linf"], "l-inf PGD training"]), "{:.1%}"),
        "t1_linf_pgd_doc": (float(t1.loc[row["pgd_linf"], "l-inf PGD training"]), "{:.1%}"),
        "t1_linf_gap": (100 * float(t1.loc[row["gap_linf"], "l-inf PGD training"]), "{:+.1f}"),
        "t1_l2_under_l2": (float(l2_row["l2 PGD training"]), "{:.1%}"),
        "t1_best_other_l2": (float(l2_row.drop("l2 PGD training").max()), "{:.1%}"),
        "t1_l2_under_l2_doc": (float(l2_row_doc["l2 PGD training"]), "{:.1%}"),
        "t1_best_other_l2_doc": (float(l2_row_doc.drop("l2 PGD training").max()), "{:.1%}"),
        "t1_gap_range": (f"from {gaps.min():+.1f} to {gaps.max():+.1f}", None),
    }


def radii_around(eps: float, sweep: Sequence[float]) -> tuple[float, float]:
    """``(below, above)``: the largest training radius of ``sweep`` under ``eps``, and the radius above ``eps``
    nearest to being as far above it as ``below`` is under it (under- against over-training, Fig. 1)."""
    below = max(e for e in sweep if e < eps)
    above = min((e for e in sweep if e > eps), key=lambda e: abs((e - eps) - (eps - below)))
    return below, above


def sweep_numbers(sweep: pd.DataFrame, g: Grader, *, eps: float, below: float, above: float) -> Numbers:
    """Fig. 1 (``sweep``: one row per training radius): the best radius, and training under against over."""
    row = g.labels()
    rob, rob_doc = sweep[row["suite_linf"]], sweep[row["pgd_linf"]]
    return {
        "sweep_best_eps": (f"{float(rob.idxmax()):g}", None),
        "sweep_at_eps": (float(rob[eps]), "{:.1%}"),
        "sweep_best": (float(rob.max()), "{:.1%}"),
        "sweep_below": (f"{below:g}", None),
        "sweep_above": (f"{above:g}", None),
        "sweep_acc_below": (float(rob[below]), "{:.1%}"),
        "sweep_acc_above": (float(rob[above]), "{:.1%}"),
        "sweep_best_eps_doc": (f"{float(rob_doc.idxmax()):g}", None),
        "sweep_acc_below_doc": (float(rob_doc[below]), "{:.1%}"),
        "sweep_acc_above_doc": (float(rob_doc[above]), "{:.1%}"),
    }


# ---------------------------------------------------------------- Table 2 and Figure 2
def table2_numbers(t2: pd.DataFrame, g: Grader, mix_counts: Mapping[str, int], *, n_params: int) -> Numbers:
    """Table 2: MAT-Rand against l-inf PGD training at both radii (``mix_counts``: MAT-Rand's batches per
    attack; ``n_params``: the wide ResNet-18's parameters)."""
    row = g.labels()
    gain = {k: {n: float(t2.loc[row[f"{k}_{n}"], "MAT-Rand"] - t2.loc[row[f"{k}_{n}"], "l-inf PGD training"])
                for n in NORMS} for k in ("suite", "pgd")}  # fmt: skip
    return {
        "wrn_params": (f"{n_params:,}", None),
        "mat_gain_l2": (100 * gain["suite"]["l2"], "{:+.1f}"),
        "mat_gap_linf": (100 * gain["suite"]["linf"], "{:+.1f}"),
        "mat_gain_l2_doc": (100 * gain["pgd"]["l2"], "{:+.1f}"),
        "mat_gap_linf_doc": (100 * gain["pgd"]["linf"], "{:+.1f}"),
        "t2_linf_gap": (100 * float(t2.loc[row["gap_linf"], "l-inf PGD training"]), "{:+.1f}"),
        "mat_share_linf": (mix_counts["pgd_linf"] / max(1, sum(mix_counts.values())), "{:.0%}"),
    }


def rate_drops(history: Sequence[Mapping[str, Any]]) -> list[int]:
    """The epochs whose learning rate is lower than the previous epoch's (the schedule's drops)."""
    return [r["epoch"] for r, prev in zip(history[1:], history[:-1], strict=True) if r["lr"] < prev["lr"]]


def overfit_curve(history: Sequence[Mapping[str, Any]], best: Mapping[str, Any]) -> dict[str, Any]:
    """Fig. 2's run read off its history: ``last_epoch``, ``first_drop`` (the first rate drop, or the last
    epoch), ``after`` (the test curve from the first drop on), ``sel_test`` and ``last_test`` (the test curve
    at the epoch selected on validation and at the last one)."""
    of = pd.DataFrame(history).set_index("epoch")
    drops, last = rate_drops(history), int(of.index.max())
    first = drops[0] if drops else last
    return {
        "of": of, "last_epoch": last, "first_drop": first, "after": of.loc[of.index >= first, "test_robust_acc"],
        "sel_test": float(of.loc[best["epoch"], "test_robust_acc"]),
        "last_test": float(of.loc[last, "test_robust_acc"]),
    }  # fmt: skip


def overfit_numbers(history: Sequence[Mapping[str, Any]], best: Mapping[str, Any]) -> Numbers:
    """Fig. 2: the selected epoch against the last, and where the test curve peaks after the first drop."""
    c = overfit_curve(history, best)
    return {
        "of_sel_epoch": (f"{best['epoch']}", None),
        "of_first_drop": (f"{c['first_drop']}", None),
        "of_sel_test": (c["sel_test"], "{:.1%}"),
        "of_last_test": (c["last_test"], "{:.1%}"),
        "of_peak_test": (float(c["after"].max()), "{:.1%}"),
        "of_peak_epoch": (f"{int(c['after'].idxmax())}", None),
        "of_train_last": (float(c["of"].loc[c["last_epoch"], "train_acc"]), "{:.1%}"),
    }


# ---------------------------------------------------------------- Table 3: capacity
def parameter_counts(nets: Mapping[str, nn.Module]) -> pd.DataFrame:
    """Parameters of Table 3's networks (``nets``: ResNet20, wide ResNet-18, VGG11) at our widths and at the
    document's (:data:`DOCUMENT_WIDTHS`)."""
    return pd.DataFrame(
        {
            "parameters (ours)": [models.count_parameters(m) for m in nets.values()],
            "parameters (document's width)": [
                models.count_parameters(build(a, w)) for a, w in (DOCUMENT_WIDTHS[k] for k in nets)
            ],
        },
        index=list(nets),
    )


def table3_numbers(t3: pd.DataFrame, g: Grader, sizes: pd.DataFrame) -> Numbers:
    """Table 3: the wide ResNet-18 against ResNet20 (``sizes``: :func:`parameter_counts`)."""
    row = g.labels()
    gain = {a: 100 * float(t3.loc[row[a], "wide ResNet-18"] - t3.loc[row[a], "ResNet20"])
            for a in ("suite_linf", "suite_l2", "pgd_linf", "pgd_l2")}  # fmt: skip
    return {
        "cap_gain_linf": (gain["suite_linf"], "{:+.1f}"),
        "cap_gain_l2": (gain["suite_l2"], "{:+.1f}"),
        "cap_gain_linf_doc": (gain["pgd_linf"], "{:+.1f}"),
        "cap_gain_l2_doc": (gain["pgd_l2"], "{:+.1f}"),
        "ratio_params": (f"{sizes.iloc[1, 0] / sizes.iloc[0, 0]:.0f}", None),
    }


# ---------------------------------------------------------------- Tables 4-6: noise, NoiseNet20, the recipe
def noise_gains(t4: pd.DataFrame, g: Grader, networks: Sequence[str]) -> pd.DataFrame:
    """Table 4's gain from noise at prediction, per network and radius (rows): under the document's PGD without
    EOT, with EOT, and graded by the suite (always EOT). ``t4`` has columns ``k``, ``"k with noise"`` and
    ``"k with noise, EOT attacks"`` for each ``k`` of ``networks``."""
    row = g.labels(randomized=True)
    doc_col = f"gain, document's PGD-{g.threat.steps} without EOT"

    def gain(attack: str, k: str, column: str) -> Any:
        return t4.loc[row[attack], column] - t4.loc[row[attack], k]

    rows = [{"network": k, "radius": LABELS[f"pgd_{n}"].split()[0],
             doc_col: gain(f"pgd_{n}", k, f"{k} with noise"),
             "gain, the same with EOT": gain(f"pgd_{n}", k, f"{k} with noise, EOT attacks"),
             "gain, suite (EOT)": gain(f"suite_{n}", k, f"{k} with noise")}
            for k in networks for n in NORMS]  # fmt: skip
    return pd.DataFrame(rows).set_index(["network", "radius"])


def table4_numbers(t4: pd.DataFrame, t4_sd: pd.DataFrame, gains: pd.DataFrame, g: Grader) -> Numbers:
    """Table 4: the mean gain from noise over the networks and radii, three ways (:func:`noise_gains`)."""
    plain, doc_eot, suite_eot = (float(gains[c].mean()) for c in gains.columns)
    clean = with_spread(t4, t4_sd).loc[g.labels(randomized=True)["natural"], "wide ResNet with noise"] + "%"
    return {
        "noise_gain": (100 * plain, "{:+.1f}"),
        "noise_gain_doc_eot": (100 * doc_eot, "{:+.1f}"),
        "noise_gain_eot": (100 * suite_eot, "{:+.1f}"),
        "t4_noisy_clean": (clean, None),
    }


def table5_numbers(t5: pd.DataFrame, t5_sd: pd.DataFrame, history: Sequence[Mapping[str, Any]],
                   natural: Scores, g: Grader) -> Numbers:  # fmt: skip
    """Table 5 and Fig. 3: NoiseNet20 against ResNet20 (``history``: NoiseNet20's, with its noise scales;
    ``natural``: its per-image natural scores over the noise draws)."""
    row, txt = g.labels(randomized=True), with_spread(t5, t5_sd)
    flips = float(((natural.correct > 0) & (natural.correct < 1)).float().mean())  # right on some draws only
    below = t5.loc[row["suite_linf"], "NoiseNet20"] < t5.loc[row["natural"], "NoiseNet20"]
    lo, hi = 100 * float(natural.per_draw.min()), 100 * float(natural.per_draw.max())
    return {
        "nn20_alpha_last": (float(pd.DataFrame(history).noise_scale.iloc[-1]), "{:.3f}"),
        "nn20_clean": (txt.loc[row["natural"], "NoiseNet20"] + "%", None),
        "nn20_clean_range": (f"{lo:.1f}% to {hi:.1f}%", None),
        "nn20_flips": (flips, "{:.0%}"),
        "r20_clean": (float(t5.loc[row["natural"], "ResNet20"]), "{:.1%}"),
        "nn20_pgd_eot": (txt.loc[row["pgd_linf"], "NoiseNet20, EOT attacks"] + "%", None),
        "nn20_pgd": (txt.loc[row["pgd_linf"], "NoiseNet20"] + "%", None),
        "nn20_suite": (txt.loc[row["suite_linf"], "NoiseNet20"] + "%", None),
        "r20_pgd": (float(t5.loc[row["pgd_linf"], "ResNet20"]), "{:.1%}"),
        "r20_suite": (float(t5.loc[row["suite_linf"], "ResNet20"]), "{:.1%}"),
        "nn20_robust_vs_clean": ("below" if below else "not below", None),
    }


def recipe_gains(t6: pd.DataFrame, g: Grader) -> dict[str, float]:
    """Table 6: the recipe (with noise) minus the baseline, natural and under the suite at both radii."""
    row = g.labels(randomized=True)
    return {a: float(t6.loc[row[a], "wider ResNet-18, recipe"] - t6.loc[row[a], "wide ResNet-18 (l-inf PGD)"])
            for a in ("natural", "suite_linf", "suite_l2")}  # fmt: skip


def table6_numbers(t6: pd.DataFrame, g: Grader, counts: Mapping[str, int], best: Mapping[str, Any], *,
                   n_params: int) -> Numbers:  # fmt: skip
    """Table 6 (``counts``: the recipe's batches per kind; ``best``: its selected epoch; ``n_params``: the wider
    ResNet-18's parameters)."""
    gain = recipe_gains(t6, g)
    return {
        "wider_params": (f"{n_params:,}", None),
        "wider_sel_epoch": (f"{best['epoch']}", None),
        "recipe_natural_share": (counts["natural"] / max(1, sum(counts.values())), "{:.1%}"),
        "recipe_gain_linf": (100 * gain["suite_linf"], "{:+.1f}"),
        "recipe_gain_l2": (100 * gain["suite_l2"], "{:+.1f}"),
        "recipe_gain_nat": (100 * gain["natural"], "{:+.1f}"),
    }


def graded_numbers(summary: pd.DataFrame, sanity: Mapping[str, Mapping[str, Any]]) -> Numbers:
    """Every graded network (:meth:`Grader.record`'s summary and sanity checks): the range of the gap between
    the document's PGD and the suite, and the failed checks."""
    gap = summary["gap (pts)"]
    failed = [f"{n}: {c}" for n, cs in sanity.items() for c, v in cs.items() if not v["passed"]]
    return {
        "n_graded": (f"{len(summary)}", None),
        "gap_min": (float(gap.min()), "{:+.1f}"),
        "gap_max": (float(gap.max()), "{:+.1f}"),
        "gap_max_model": (str(gap.idxmax()), None),
        "sanity_failed": ("none" if not failed else "; ".join(failed), None),
    }
