"""The numbers the chapter's prose cites, section by section, ready to glue into the page.

Each function returns ``{name: value}`` or ``{name: (value, fmt)}``: the value is what the run's record keeps
(``numbers`` in the results JSON), ``fmt`` (e.g. ``"{:.1%}"``) how the page shows it; :func:`glue` hands them to
the run (``run.glue(name, value, fmt)``). Accuracies in the tables are fractions; differences shown in points
are multiplied by 100 here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from helpers.core import evaluate
from helpers.core.models import count_parameters
from helpers.papers.curriculum.study import Study, fmt_list, se_difference
from helpers.papers.curriculum.tables import NES, Table2

Numbers = dict[str, Any]
PCT, PTS = "{:.1%}", "{:+.1f}"


def glue(run: Any, numbers: Mapping[str, Any]) -> None:
    """``run.glue`` every number: ``(value, fmt)`` pairs with their format, plain values as they are."""
    for name, value in numbers.items():
        run.glue(name, *value) if isinstance(value, tuple) else run.glue(name, value)


def setup(study: Study) -> Numbers:
    """Sizes, the a priori resolution of the accuracies (standard errors near 50%, in points) and the attacks."""
    p = study.p
    return {
        "n_train": f"{p['n_train']:,}",
        "n_test": f"{p['n_test']:,}",
        "n_battery": f"{p['n_battery']:,}",
        "se_pts": f"{100 * 0.5 / np.sqrt(p['n_battery']):.1f}",
        "se_diff_pts": f"{100 * se_difference(p['n_battery']):.1f}",
        "se_diff_suite_pts": f"{100 * se_difference(p['n_suite']):.1f}",
        "battery_steps": f"{p['battery_steps']}",
        "battery_eps": fmt_list(p["battery_eps"]),
        "battery_delta": fmt_list(p["battery_delta"]),
        "eot_samples": f"{p['eot_samples']}",
        "batch_size": f"{p['batch_size']}",
        "epochs": f"{p['epochs']}",
        "attacked_ratio": f"{p['attacked_ratio']:g}",
        "n_suite": f"{p['n_suite']:,}",
        "suite_name": study.suite_name,
        "min_draws": f"{evaluate.MIN_DRAWS}",
        "train_eps": f"{p['train_eps']:g}",
    }


def battery(model: nn.Module, grid: pd.DataFrame, natural: float) -> Numbers:
    """Fig. 1: the default Net's size, natural accuracy, and battery mean and weakest cell."""
    return {
        "net_params": f"{count_parameters(model):,}",
        "net_nat": (natural, PCT),
        "net_nat_battery": (float(grid.to_numpy().mean()), PCT),
        "net_nat_weakest": (float(grid.to_numpy().max()), PCT),
    }


def trade_off(p: Mapping[str, Any], table: pd.DataFrame, fixed: str, strong: str) -> Numbers:
    """Sec. 1: what fixed-eps adversarial training gains and costs against natural training (points), and the
    natural accuracy, suite and battery mean of the curriculum, fixed strong and fixed training."""
    fix, nat = table.loc[fixed], table.loc["natural"]
    out: Numbers = {
        "train_delta": f"{p['train_delta']:g}",
        "strong_eps": f"{p['strong_eps']:g}",
        "iter_scale": f"{p['iter_scale']:g}",
        "at_gain": (100 * float(fix["suite"] - nat["suite"]), PTS),
        "at_gain_battery": (100 * float(fix["battery"] - nat["battery"]), PTS),
        "at_cost": (100 * float(nat["natural"] - fix["natural"]), "{:.1f}"),
    }
    for short, row in (("cur", "curriculum"), ("strong", strong), ("fix", fixed)):
        r = table.loc[row]
        out |= {
            f"{short}_nat": (float(r["natural"]), PCT),
            f"{short}_rob": (float(r["suite"]), PCT),
            f"{short}_bat": (float(r["battery"]), PCT),
        }
    return out | {"sec1_gap": (100 * float(table["gap"].mean()), "{:.1f}")}


def optimiser(table: pd.DataFrame) -> Numbers:
    """What GELU (over ReLU, with AdamW) and AdamW (over SGD, with ReLU) change in natural accuracy, in points."""
    nat = table["natural"]
    return {
        "gelu_gain": (100 * float(nat["AdamW + GELU"] - nat["AdamW + ReLU"]), PTS),
        "adamw_gain": (100 * float(nat["AdamW + ReLU"] - nat["SGD + ReLU"]), PTS),
    }


def capacity(p: Mapping[str, Any], table: pd.DataFrame) -> Numbers:
    """Fig. 3: Net against BigNet (suite, battery score) and the rank correlation of size and battery score."""
    return {
        "big_factor": f"{p['width_big'] / p['width_net']:g}",
        "wrn_depth": f"{p['wrn_depth']}",
        "wrn_width": f"{p['wrn_width']}",
        "wide_epochs": f"{p['wide_epochs']}",
        "suite_net": (float(table.loc["Net", "suite"]), PCT),
        "suite_big": (float(table.loc["BigNet", "suite"]), PCT),
        "score_net": (float(table.loc["Net", "score"]), "{:.0f}"),
        "score_big": (float(table.loc["BigNet", "score"]), "{:.0f}"),
        "rank_corr": (float(table["parameters"].rank().corr(table["score"].rank())), "{:+.2f}"),
        "big_params": f"{int(table.loc['BigNet', 'parameters']):,}",
    }


def augmentation(p: Mapping[str, Any], table: pd.DataFrame) -> Numbers:
    """Table 1: the suite's robust accuracy and the battery score of each augmentation."""
    rows = {"none": "Nothing", "flip": "Horizontal flip only", "full": "Full pipeline"}
    suite = {f"suite_{k}": (float(table.loc[r, "suite"]), PCT) for k, r in rows.items()}
    score = {f"score_{k}": (float(table.loc[r, "score"]), "{:.0f}") for k, r in rows.items()}
    return suite | score | {"n_cells": f"{len(p['battery_eps']) * len(p['battery_delta'])}"}


def randomness(p: Mapping[str, Any], t2: Table2, dropout: pd.DataFrame) -> Numbers:
    """Dropout and Table 2: the defences' settings, the gains of PNI and RSE over BigNet under the document's
    attack, with EOT and under the suite (points), what EOT takes off, and how much of the gain survives."""
    eps, delta, steps = p["train_eps"], p["train_delta"], p["eval_steps"]
    out: Numbers = {
        "dropout": f"{p['dropout']:g}",
        "pni_alpha": f"{p['pni_alpha']:g}",
        "sigma_init": f"{p['sigma_init']:g}",
        "sigma_inner": f"{p['sigma_inner']:g}",
        "rse_passes": f"{p['rse_passes']}",
        "defense_epochs": f"{p['defense_epochs']}",
        "eval_steps": f"{steps}",
        "doc_reach": f"{steps} × {delta:g} = {steps * delta:.3g}",
        "doc_reach_note": f"with {steps} steps of {delta:g} it cannot even reach the radius it tests"
        if steps * delta < eps
        else "it can reach the radius, but its fixed step stalls where the suite's adaptive steps go on",
    }
    base_att, base_suite = t2.doc["BigNet"].acc, t2.graded["BigNet"].robust_accuracy
    gains = {k: t2.doc[k].acc - base_att for k in ("BigNet-PNI", "BigNet-RSE")}
    gains_suite = {k: t2.graded[k].robust_accuracy - base_suite for k in gains}
    for k, short in (("BigNet-PNI", "pni"), ("BigNet-RSE", "rse")):
        out[f"{short}_gain"] = (100 * gains[k], PTS)
        out[f"{short}_gain_eot"] = (100 * (t2.eot[k].acc - base_att), PTS)
        out[f"{short}_gain_suite"] = (100 * gains_suite[k], PTS)
        out[f"{short}_eot_drop"] = (100 * (t2.doc[k].acc - t2.eot[k].acc), "{:.1f}")
    out["t2_gap"] = ", ".join(f"{k} {100 * v:.1f}" for k, v in t2.gap.items())
    d0, d1 = dropout.iloc[0], dropout.iloc[1]
    out["drop_delta_score"] = (float(d1["score"] - d0["score"]), "{:+.0f}")
    out["drop_delta_suite"] = (100 * float(d1["suite"] - d0["suite"]), PTS)
    out["drop_delta_nat"] = (100 * float(d1["natural"] - d0["natural"]), PTS)
    mean_gain, mean_gain_suite = float(np.mean(list(gains.values()))), float(np.mean(list(gains_suite.values())))
    survive = mean_gain_suite / mean_gain if mean_gain > 0 else float("nan")
    return out | {"survive": "none" if not mean_gain > 0 else f"{max(survive, 0):.0%}"}


def overstatement(study: Study, gaps: Mapping[str, float]) -> Numbers:
    """The range of the document's attacks' gaps over the suite (points), the suite's cost, the sanity checks."""
    p = study.p
    failed = [f"{m}: {c}" for m, cs in study.sanity.items() for c, v in cs.items() if not v["passed"]]
    return {
        "gap_range": f"{100 * min(gaps.values()):+.1f} to {100 * max(gaps.values()):+.1f}",
        "n_graded": f"{study.n_graded}",
        "suite_grade_s": (study.seconds["grade"], "{:.0f}"),
        "suite_sanity_s": (study.seconds["sanity"], "{:.0f}"),
        "sanity_steps": ", ".join(map(str, p["sanity_steps"])),
        "square_queries": f"{p['square_queries']}",
        "sanity_failed": ", ".join(failed) or "none",
    }


def radius(p: Mapping[str, Any], curves: pd.DataFrame, natural: Mapping[str, str]) -> Numbers:
    """Fig. 4: the natural accuracies (as shown) and what EOT takes off WRN-RSE, averaged over the radii."""
    acc = curves.map(lambda v: v.acc)
    return {
        "n_fig4": f"{p['n_fig4']}",
        "nat4": ", ".join(f"{k} {v}%" for k, v in natural.items()),
        "rse_fig4_gap": (100 * float((acc["WRN-RSE"] - acc["WRN-RSE, EOT-PGD"]).mean()), "{:.1f}"),
    }


def nes(p: Mapping[str, Any], result: NES) -> Numbers:
    """Fig. 5: the NES settings and the accuracies left at the smallest and largest budgets and by PGD."""
    lo, hi = min(p["nes_budgets"]), max(p["nes_budgets"])
    return {
        "nes_samples": f"{p['nes_samples']}",
        "nes_sigma": f"{p['nes_sigma']:g}",
        "nes_eps": f"{p['nes_eps']:g}",
        "nes_delta": f"{p['nes_delta']:g}",
        "n_nes": f"{p['n_nes']}",
        "nes_lo": (result.acc[lo], PCT),
        "nes_hi": (result.acc[hi], PCT),
        "nes_L_lo": f"{lo:,}",
        "nes_L_hi": f"{hi:,}",
        "pgd_level": (result.pgd_level, PCT),
    }


def failed(p: Mapping[str, Any], rank: tuple[float, float, int], table: pd.DataFrame) -> Numbers:
    """Sec. 5: the effective ranks, the projection's rank, and what test-time noise changes (points, table in %):
    natural accuracy, and accuracy under the document's attack with EOT against Net under it without noise."""
    noisy, net = table.loc[f"test-time noise σ={p['test_noise']:g}"], table.loc["Net"]
    return {
        "erank_raw": (rank[0], "{:.0f}"),
        "erank_centred": (rank[1], "{:.0f}"),
        "n_rank": f"{p['n_rank']:,}",
        "lowrank_r": f"{rank[2]}",
        "test_noise": f"{p['test_noise']:g}",
        "tn_nat": (float(noisy.iloc[0] - net.iloc[0]), "{:+.1f}"),
        "tn_rob": (float(noisy.iloc[2] - net.iloc[1]), "{:+.1f}"),
    }
