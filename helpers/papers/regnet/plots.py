"""The figures of the RegNet chapter (Volpato 2019): latent spaces in 3-D, residual histograms against the target
density, moment and accuracy curves, FGSM images and robustness curves.

Every function takes computed results (latent codes ``z`` (N, d) with labels ``y`` (N,), or long-format
DataFrames of curves with columns model, ε, accuracy) and returns a matplotlib ``Figure`` for ``run.show``;
only :func:`fgsm_images` attacks (FGSM is deterministic, so drawing it changes no random stream).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.core import attacks
from helpers.papers.regnet.gaussianity import targets


def scatter3d(ax: Any, z: torch.Tensor, y: torch.Tensor, classes: Sequence[str], *, max_points: int = 400) -> None:
    """A 3-D scatter of a three-dimensional latent space (``ax`` made with ``projection="3d"``), one colour per
    class, at most ``max_points`` per class (the first ones: loaders are in a fixed order)."""
    if z.shape[1] != 3:
        raise ValueError(f"z must be three-dimensional for a 3-D scatter (got d={z.shape[1]})")
    for c, name in enumerate(classes):
        s = z[y == c][:max_points].numpy()
        ax.scatter(s[:, 0], s[:, 1], s[:, 2], s=4, alpha=0.5, label=name, depthshade=False)
    ax.set(xlabel="$z_0$", ylabel="$z_1$", zlabel="$z_2$")


def residual_histograms(
    axes: Sequence[Any], z: torch.Tensor, y: torch.Tensor, mu_t: float, sigma_t: float = 1.0, *, span: float = 5.0
) -> None:
    """One panel per latent dimension i (``axes`` has d axes): the histograms of ``z_i - target_i`` for every
    class (step outlines, one colour per class), against the target density N(0, sigma_t^2) in black.

    Plotting residuals puts every class on one axis whatever mu_t, so the shapes (heavy tails, two spikes, a
    wrong spread) are comparable across target means. Values beyond +- ``span`` sigma_t are piled on the edges,
    so an outlier still shows.
    """
    d = z.shape[1]
    edges = np.linspace(-span, span, 41) * sigma_t
    grid = np.linspace(-span, span, 200) * sigma_t
    pdf = np.exp(-0.5 * (grid / sigma_t) ** 2) / (sigma_t * math.sqrt(2 * math.pi))
    res = (z.double() - targets(mu_t, d)[y]).numpy()
    lim = span * sigma_t * (1 - 1e-9)
    for i, ax in enumerate(axes):
        for c in range(d):
            r = np.clip(res[y.numpy() == c, i], -lim, lim)
            if len(r):
                ax.hist(r, bins=edges, density=True, histtype="step", lw=1.4, color=f"C{c}")
        ax.plot(grid, pdf, color="k", lw=1)
        ax.set(xlabel=f"$z_{i}$ − target", yticks=[])


def latent_study_figure(panels: Sequence[Mapping[str, Any]], title: str) -> Any:
    """One row per trained configuration (thesis Figs. 2.2-2.15): the 3-D latent space of the test images and,
    per dimension, the residual histograms against the target density, headed by the histogram RMSE.

    ``panels``: dicts with ``label``, ``z`` (N, 3), ``y`` (N,), ``classes``, ``mu_t``, ``sigma_t``, ``rmse``.
    """
    fig = plt.figure(figsize=(13, 3.0 * len(panels)))
    for r, p in enumerate(panels):
        ax = fig.add_subplot(len(panels), 4, 4 * r + 1, projection="3d")
        scatter3d(ax, p["z"], p["y"], p["classes"], max_points=200)
        ax.set_title(p["label"], fontsize=9)
        axes = [fig.add_subplot(len(panels), 4, 4 * r + 2 + i) for i in range(3)]
        residual_histograms(axes, p["z"], p["y"], p["mu_t"], p["sigma_t"])
        axes[0].set_title(f"histogram RMSE {p['rmse']:.3f}", fontsize=9, loc="left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def moments_figure(moments: pd.DataFrame, z_ce: torch.Tensor, y_ce: torch.Tensor, classes: Sequence[str]) -> Any:
    """Mean kurtosis and |skewness| against the target mean (``moments`` indexed by μT; thesis Figs. 2.16-2.17)
    beside the 3-D latent space of a cross-entropy encoder (Fig. 2.18)."""
    fig = plt.figure(figsize=(13, 3.6))
    ax1, ax2 = fig.add_subplot(1, 3, 1), fig.add_subplot(1, 3, 2)
    ax1.plot(moments.index, moments["kurtosis"], marker="o")
    ax1.axhline(3, color="k", lw=1, ls="--")
    ax1.set(xlabel="target mean $\\mu_T$", ylabel="mean kurtosis", title="kurtosis (Gaussian: 3)")
    ax2.plot(moments.index, moments["abs_skewness"], marker="o", color="C1")
    ax2.axhline(0, color="k", lw=1, ls="--")
    ax2.set(xlabel="target mean $\\mu_T$", ylabel="mean |skewness|", title="skewness (Gaussian: 0)")
    ax3 = fig.add_subplot(1, 3, 3, projection="3d")
    scatter3d(ax3, z_ce, y_ce, classes, max_points=200)
    ax3.set_title("cross-entropy latent space", fontsize=10)
    fig.tight_layout()
    return fig


def accuracy_figure(
    acc_mu: pd.DataFrame, acc_ce: float, acc_fk: pd.DataFrame, variants: Sequence[str], *, fk: float, mu_t: float
) -> Any:
    """Ten-class accuracy against the target mean for the four RegNet losses ``variants`` (``acc_mu``: loss,
    μT, accuracy; the first two without, the last two with kurtosis; Figs. 2.19-2.20), with cross-entropy's
    ``acc_ce`` dashed, and against F_k at ``mu_t`` (``acc_fk``: F_k, accuracy; Fig. 2.21; 0 drawn at 1e-3)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, names in ((axes[0], list(variants)[:2]), (axes[1], list(variants)[2:])):
        for name in names:
            g = acc_mu[acc_mu.loss == name]
            ax.plot(g["μT"], g.accuracy, marker="o", label=name)
        ax.axhline(acc_ce, color="k", ls="--", lw=1, label="cross-entropy")
        ax.set(xscale="log", xlabel="target mean $\\mu_T$", ylabel="test accuracy", ylim=(0, 1.02))
        ax.legend(fontsize=8)
    axes[0].set_title("without kurtosis (Fig. 2.19)")
    axes[1].set_title(f"with kurtosis, F_k={fk:g} (Fig. 2.20)")
    axes[2].plot([max(f, 1e-3) for f in acc_fk.F_k], acc_fk.accuracy, marker="o")
    axes[2].set(xscale="log", xlabel="$F_k$ (0 drawn at $10^{-3}$)", ylabel="test accuracy", ylim=(0, 1.02))
    axes[2].set_title(f"covariance + kurtosis, μT={mu_t:g} (Fig. 2.21)")
    fig.tight_layout()
    return fig


def fgsm_images(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps_list: Sequence[float], *, mu_t: float) -> Any:
    """The first two of the images ``x`` (B, 1, H, W) in [0, 1] under FGSM at each radius of ``eps_list``
    (thesis Fig. 3.1), titled with the model's prediction (red when wrong)."""
    fig, axes = plt.subplots(2, len(eps_list), figsize=(1.6 * len(eps_list), 3.6))
    for j, e in enumerate(eps_list):
        adv = attacks.fgsm(model, x, y, e) if e > 0 else x
        with torch.no_grad():
            pred = model(adv).argmax(1)
        for i in (0, 1):
            axes[i, j].imshow(adv[i, 0].cpu(), cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_title(f"ε={e:g} → {int(pred[i])}", fontsize=8, color="C3" if pred[i] != y[i] else "k")
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    fig.suptitle(f"FGSM images against RegNet (μT={mu_t:g}); title: radius → prediction")
    return fig


def latents_under_fgsm_figure(panels: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor]]],
                              triplets: Sequence[Sequence[int]], eps_list: Sequence[float]) -> Any:  # fmt: skip
    """A grid of 3-D latent spaces (thesis Figs. 3.2-3.5): one row per digit triplet, one column per FGSM
    radius; ``panels[r][j]`` holds the codes and labels of triplet r at radius j."""
    fig = plt.figure(figsize=(3.2 * len(eps_list), 3.2 * len(triplets)))
    for r, t in enumerate(triplets):
        for j, e in enumerate(eps_list):
            z, y = panels[r][j]
            ax = fig.add_subplot(len(triplets), len(eps_list), r * len(eps_list) + j + 1, projection="3d")
            scatter3d(ax, z, y, [str(c) for c in t], max_points=150)
            ax.set_title(f"digits {t}, ε={e:g}", fontsize=9)
    fig.tight_layout()
    return fig


def _curves(ax: Any, curves: pd.DataFrame, title: str) -> None:
    """One line per model of a long-format table (model, ε, accuracy), cross-entropy in black."""
    for name, g in curves.groupby("model", sort=False):
        ax.plot(g["ε"], g.accuracy, marker="o", label=name, color="k" if name == "cross-entropy" else None)
    ax.set(xlabel="FGSM radius ε", ylabel="test accuracy", ylim=(-0.02, 1.02), title=title)
    ax.legend(fontsize=8)


def robustness_figure(fgsm: pd.DataFrame, masking: pd.DataFrame) -> Any:
    """FGSM accuracy curves on MNIST (thesis Fig. 3.7) beside the gradient-masking check (``masking``: model,
    attack, ε, accuracy), PGD solid and FGSM dotted, squares for the margin loss."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    _curves(axes[0], fgsm, "FGSM, MNIST (Fig. 3.7)")
    for (name, attack), g in masking.groupby(["model", "attack"], sort=False):
        style = "-" if attack.startswith("PGD") else ":"
        color = "k" if name == "cross-entropy" else "C0"
        marker = "s" if "margin" in attack else "o"
        axes[1].plot(g["ε"], g.accuracy, style, marker=marker, color=color, label=f"{name}: {attack}")
    axes[1].set(xlabel="radius ε", ylabel="test accuracy", ylim=(-0.02, 1.02), title="beyond the thesis: PGD check")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


STUDIES = (("depth", "ResNet depth (Fig. 3.11)"), ("shake-shake", "shake-shake encoder (Figs. 3.12-3.13)"),
           ("seeds", "training seeds (Fig. 3.15)"), ("augmentation", "augmentation (Fig. 3.16)"))  # fmt: skip


def studies_figure(studies: pd.DataFrame, seed: int) -> Any:
    """FGSM curves of the one-thing-at-a-time studies (``studies``: study, model, ε, accuracy; thesis Figs.
    3.11-3.16), one panel per study; the seed study draws every seed in one colour and labels only ``seed``."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), sharey=True)
    for ax, (study, title) in zip(axes, STUDIES, strict=True):
        for name, g in studies[studies.study == study].groupby("model", sort=False):
            ce_like = name.startswith("cross-entropy")
            color = "k" if ce_like else ("C0" if study == "seeds" else None)  # one colour per model family
            ax.plot(g["ε"], g.accuracy, marker="o", ms=3, color=color, alpha=0.8)
            ax.lines[-1].set_label(name if study != "seeds" or name.endswith(str(seed)) else None)
        ax.set(xlabel="FGSM radius ε", title=title, ylim=(-0.02, 1.02))
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test accuracy")
    fig.tight_layout()
    return fig


def curves_figure(curves: pd.DataFrame, title: str) -> Any:
    """FGSM accuracy curves (``curves``: model, ε, accuracy), cross-entropy in black (thesis Fig. 3.9)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    _curves(ax, curves, title)
    return fig


def loss_figure(step_losses: Sequence[float], num_classes: int) -> Any:
    """The training loss of every step on a log scale (thesis Sec. 3.5: does it stay finite?)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(step_losses)
    ax.set(yscale="log", xlabel="training step", ylabel="loss", title=f"{num_classes} classes: loss per step")
    return fig
