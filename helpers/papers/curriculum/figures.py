"""The chapter's figures: the document's Fig. 1, 3, 4 and 5 and the book's trade-off plot.

Each function takes measured tables (accuracies as fractions) and returns a matplotlib figure, drawn in % for
the reader; the run saves and shows it (``run.show(fig, name)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers.papers.curriculum.tables import NES


def battery_heatmap(grid: pd.DataFrame, natural: float, steps: int) -> Figure:
    """Fig. 1: accuracy (%) under the battery, radius (rows) x PGD step (columns), the scale topped at natural."""
    acc = 100 * grid.to_numpy()
    fig, ax = plt.subplots(figsize=(6, 4))
    im = ax.imshow(acc, cmap="viridis", vmin=0, vmax=100 * max(natural, 1e-3))
    ax.set_xticks(range(len(grid.columns)), [f"{d:g}" for d in grid.columns])
    ax.set_yticks(range(len(grid.index)), [f"{e:g}" for e in grid.index])
    for (i, j), v in np.ndenumerate(acc):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w" if v < 50 * natural else "k")
    ax.set(
        xlabel="PGD step δ",
        ylabel="radius ε",
        title=f"Net under the document's battery, PGD-{steps} (natural {natural:.1%})",
    )
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    return fig


def trade_off(table: pd.DataFrame, eps: float) -> Figure:
    """Natural against attacked accuracy (%) per model: the battery's mean (circle) and the suite (square)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (k, r) in enumerate(table.iterrows()):
        ax.plot(100 * r[["natural", "natural"]], 100 * r[["battery", "suite"]], color=f"C{i}", lw=0.8)
        ax.scatter(100 * r["natural"], 100 * r["battery"], s=60, color=f"C{i}", marker="o", facecolors="none")
        ax.scatter(100 * r["natural"], 100 * r["suite"], s=60, color=f"C{i}", marker="s", label=k)
    ax.set(
        xlabel="natural accuracy (%)",
        ylabel="attacked accuracy (%)",
        title=f"Net: the trade-off (○ battery mean, ■ suite at ε={eps:g})",
    )
    ax.legend(fontsize=8)
    return fig


def capacity(grids: Mapping[str, pd.DataFrame], radii: Sequence[float], steps: Sequence[float]) -> Figure:
    """Fig. 3: accuracy (%) against the PGD step, one panel per radius, one line per model's battery grid."""
    fig, axes = plt.subplots(1, len(radii), figsize=(4 * len(radii), 3.6), sharey=True)
    for ax, eps in zip(np.atleast_1d(axes), radii, strict=True):
        for i, (k, grid) in enumerate(grids.items()):
            ax.plot(steps, 100 * grid.loc[eps].to_numpy(), marker="o", color=f"C{i}", label=k)
        ax.set(xscale="log", xlabel="PGD step δ", title=f"ε = {eps:g}")
    np.atleast_1d(axes)[0].set_ylabel("accuracy (%)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def radius_curves(acc: pd.DataFrame, spread: pd.DataFrame, steps: int) -> Figure:
    """Fig. 4: accuracy (%) against the PGD radius, error bars the spread between noise draws; EOT dashed."""
    fig, ax = plt.subplots()
    for i, c in enumerate(acc.columns):
        ax.errorbar(
            acc.index,
            100 * acc[c],
            yerr=100 * spread[c],
            marker="o",
            ls="--" if "EOT" in c else "-",
            color=f"C{min(i, 2)}",
            label=c,
            capsize=2,
        )
    ax.set(xlabel="PGD radius ε", ylabel="accuracy (%)", title=f"PGD-{steps} (the document's attack), growing radius")
    ax.legend()
    return fig


def nes_curve(result: NES) -> Figure:
    """Fig. 5: accuracy (%) left by NES against the query budget, with white-box PGD and natural accuracy."""
    fig, ax = plt.subplots()
    ax.plot(list(result.acc), [100 * v for v in result.acc.values()], marker="o", label="NES (black box)")
    ax.axhline(100 * result.pgd_level, color="C3", ls="--", label=f"white-box PGD, {result.pgd_iters} iterations")
    ax.axhline(100 * result.natural, color="k", ls=":", label="natural")
    ax.set(xscale="log", xlabel="query budget L per image", ylabel="accuracy (%)", title="NES on Net")
    ax.legend()
    return fig
