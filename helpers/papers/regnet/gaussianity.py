"""Gaussianity of latent clusters (Volpato 2019, Secs. 2.3-2.4): how far each class's latent codes are from
their target N(mu_t e_c, sigma_t^2 I).

The thesis found that kurtosis and skewness grow with mu_t even when the histograms look Gaussian (a few
far-off points weigh heavily in third and fourth moments), and recommends :func:`histogram_rmse` instead;
:func:`gaussianity` reports all of them. Every function takes latent codes ``z`` (N, d) and labels ``y`` (N,)
int64 in [0, d); results are float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from helpers.core.params import check_positive
from helpers.papers.regnet.losses import kurtosis


def targets(mu_t: float, d: int) -> torch.Tensor:
    """The target means (d, d): row c is ``mu_t e_c``."""
    return mu_t * torch.eye(d, dtype=torch.float64)


def skewness(z: torch.Tensor, y: torch.Tensor, num_classes: int | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Sample skewness ``E[(z - m)^3] / E[(z - m)^2]^(3/2)`` per class and dimension, (C, d) float64; 0 for
    a normal distribution; NaN rows for classes with fewer than 2 samples."""
    c = num_classes if num_classes is not None else z.shape[1]
    z = z.double()
    out = torch.full((c, z.shape[1]), float("nan"), dtype=torch.float64)
    for k in range(c):
        s = z[y == k]
        if len(s) >= 2:
            sc = s - s.mean(0)
            out[k] = sc.pow(3).mean(0) / (sc.pow(2).mean(0).pow(1.5) + eps)
    return out


def histogram_rmse(
    z: torch.Tensor,
    y: torch.Tensor,
    mu_t: float,
    sigma_t: float = 1.0,
    *,
    span: float = 4.0,
    bins_per_sigma: int = 4,
) -> torch.Tensor:
    """RMSE between each class's per-dimension histogram and its target Gaussian (thesis Sec. 2.3.2), (C, d).

    For class c and dimension i the target is N(mu_t [i == c], sigma_t^2). The histogram has
    ``bins_per_sigma`` bins per sigma_t over the target mean +- ``span`` sigma_t, normalised as a density by
    the class's sample count (so samples outside the window lower the histogram, as they should), and compared
    with the target density at the bin centres. The RMSE is divided by the target's peak density
    ``1 / (sigma_t sqrt(2 pi))``: 0 is a perfect match, and a histogram empty over the window scores about 0.5.
    Classes with no samples get NaN.
    """
    check_positive("sigma_t", sigma_t)
    d = z.shape[1]
    nb = int(round(2 * span * bins_per_sigma))
    rel = np.linspace(-span, span, nb + 1)
    centres = 0.5 * (rel[1:] + rel[:-1])
    pdf = np.exp(-0.5 * centres**2) / (sigma_t * math.sqrt(2 * math.pi))
    peak = 1.0 / (sigma_t * math.sqrt(2 * math.pi))
    width = (rel[1] - rel[0]) * sigma_t
    zn, yn = z.double().numpy(), y.numpy()
    out = np.full((d, d), np.nan)
    for c in range(d):
        s = zn[yn == c]
        if not len(s):
            continue
        for i in range(d):
            m = mu_t if i == c else 0.0
            counts, _ = np.histogram(s[:, i], bins=m + rel * sigma_t)
            dens = counts / (len(s) * width)
            out[c, i] = math.sqrt(float(np.mean((dens - pdf) ** 2))) / peak
    return torch.from_numpy(out)


def gaussianity(z: torch.Tensor, y: torch.Tensor, mu_t: float, sigma_t: float = 1.0) -> dict[str, float]:
    """Averages over classes and dimensions: ``rmse`` (:func:`histogram_rmse`), ``kurtosis`` (3 if Gaussian),
    ``abs_skewness`` (0 if Gaussian), plus ``spread`` (the mean per-dimension standard deviation, sigma_t if on
    target) and ``mean_error`` (mean distance of the class means from their targets)."""
    d = z.shape[1]
    k = kurtosis(z, y, num_classes=d)
    sk = skewness(z, y, d)
    stds, errs = [], []
    for c in range(d):
        s = z[y == c].double()
        if len(s) >= 2:
            stds.append(float(s.std(0).mean()))
            errs.append(float((s.mean(0) - targets(mu_t, d)[c]).norm()))
    return {
        "rmse": float(np.nanmean(histogram_rmse(z, y, mu_t, sigma_t).numpy())),
        "kurtosis": float(np.nanmean(k.numpy())),
        "abs_skewness": float(np.nanmean(sk.abs().numpy())),
        "spread": float(np.mean(stds)) if stds else float("nan"),
        "mean_error": float(np.mean(errs)) if errs else float("nan"),
    }
