"""The book's one figure style, and a helper that saves a figure and shows it.

Call :func:`use_style` once per chapter (right after the imports); every figure then shares fonts, palette
and size. :func:`show` writes the PNG under ``results/figures/<chapter>/`` (atomically) and displays it.
"""

from __future__ import annotations

import matplotlib

from helpers.core.io import atomic_path, results_dir

PALETTE = "colorblind"


def use_style() -> None:
    """seaborn's whitegrid theme, colour-blind palette, and figure defaults sized for the book's column."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "image.cmap": "viridis",
        }
    )


def show(fig: matplotlib.figure.Figure, name: str, chapter: str) -> None:
    """Save ``fig`` as ``results/figures/<chapter>/<name>.png`` (atomically) and display it.

    Returns None so that a notebook cell ending in ``plots.show(...)`` prints nothing but the figure.
    """
    import matplotlib.pyplot as plt

    path = results_dir() / "figures" / chapter / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.show()
