"""Photometric-redshift metrics (Campagne 2020; Pasquet et al. 2019).

The network outputs a PDF over 180 bins on [0, 1]; ``zphot`` is the PDF-weighted mean of the bin centres,
``dz = (zphot - zspec) / (1 + zspec)``, and a sample is summarised by the bias (mean dz),
sigma_MAD = 1.4826 * median|dz - median(dz)| and the outlier fraction eta, the share of |dz| > 0.05.

- Tensor metrics: :func:`zphot_from_logits`, :func:`delta_z`, :func:`photoz_metrics`.
- :class:`Scorer`: a network's ``zphot``, metrics and per-galaxy ``dz`` on a set of galaxies (clean or attacked).
- NumPy statistics of per-galaxy ``dz`` arrays for paired bootstraps over the test galaxies: :func:`smad` and
  ratios of it between two scorings of the same galaxies (:func:`smad_ratio`, :func:`smad_ratio_min`,
  :func:`smad_ratio_max`, :func:`smad_worst_over`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from helpers.core import data, evaluate

OUTLIER_DZ = 0.05
MAD_TO_SIGMA = 1.4826  # makes the MAD an unbiased sigma estimate for a Gaussian


def bin_centres(n_bins: int = 180, z_max: float = 1.0) -> torch.Tensor:
    """Centres of ``n_bins`` equal bins on [0, z_max]."""
    return (torch.arange(n_bins, dtype=torch.float64) + 0.5) * (z_max / n_bins)


def zphot_from_logits(logits: torch.Tensor, z_max: float = 1.0) -> torch.Tensor:
    """PDF-weighted mean redshift (B,) from logits (B, n_bins)."""
    pdf = torch.softmax(logits.double(), dim=1)
    return pdf @ bin_centres(logits.shape[1], z_max).to(pdf.device)


def delta_z(zphot: torch.Tensor, zspec: torch.Tensor) -> torch.Tensor:
    """(zphot - zspec) / (1 + zspec)."""
    zspec = zspec.double().to(zphot.device)
    return (zphot.double() - zspec) / (1 + zspec)


def _median(v: torch.Tensor) -> torch.Tensor:
    """The usual median (mean of the two middle values for even counts; ``Tensor.median`` takes the lower)."""
    return torch.quantile(v, 0.5)


def photoz_metrics(zphot: torch.Tensor, zspec: torch.Tensor) -> dict[str, float]:
    """bias (mean dz), sigma_mad (1.4826 median|dz - median dz|) and eta (fraction with |dz| > 0.05)."""
    dz = delta_z(zphot, zspec)
    med = _median(dz)
    return {
        "bias": float(dz.mean()),
        "sigma_mad": float(MAD_TO_SIGMA * _median((dz - med).abs())),
        "eta": float((dz.abs() > OUTLIER_DZ).double().mean()),
    }


@dataclass
class Scorer:
    """A network's redshifts and metrics on galaxies whose spectroscopic redshifts are ``zspec`` (N,).

    ``galaxies`` is a :class:`~helpers.core.data.TensorData` (x = images, extra = (ebv,)), clean or attacked, in
    the order of ``zspec``; evaluation runs on ``device`` in batches of 500, with the model in eval mode.
    """

    zspec: torch.Tensor
    device: torch.device | str = "cpu"

    def zphot(self, model: nn.Module, galaxies: data.TensorData) -> torch.Tensor:
        """The PDF-mean redshift of each galaxy, (N,) float64 on the CPU."""
        res = evaluate.evaluate(model, data.Loader(galaxies, 500, device=self.device), keep_outputs=True)
        return zphot_from_logits(res["outputs"])

    def scores(self, model: nn.Module, galaxies: data.TensorData) -> dict[str, float]:
        """bias, sigma_mad and eta (:func:`photoz_metrics`) of ``model`` on ``galaxies``."""
        return photoz_metrics(self.zphot(model, galaxies), self.zspec)

    def delta_z(self, model: nn.Module, galaxies: data.TensorData) -> np.ndarray:
        """Per-galaxy dz (N,) as a NumPy array: the unit a paired bootstrap over the galaxies resamples."""
        return delta_z(self.zphot(model, galaxies), self.zspec).cpu().numpy()


def smad(dz: np.ndarray) -> float:
    """sigma_MAD of per-galaxy ``dz`` (N,), as :func:`photoz_metrics` computes it (NumPy, for bootstraps)."""
    return MAD_TO_SIGMA * float(np.median(np.abs(dz - np.median(dz))))


def smad_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """sigma_MAD(a) / sigma_MAD(b) of two scorings of the same galaxies (say attacked over clean)."""
    return smad(a) / smad(b)


def smad_ratio_min(*pairs: np.ndarray) -> float:
    """The smallest sigma_MAD(attacked) / sigma_MAD(clean) over models, for ``pairs`` = (clean_0, attacked_0,
    clean_1, attacked_1, ...): the damage to the least affected model (e.g. transfer to every twin)."""
    return min(smad(pairs[k + 1]) / smad(pairs[k]) for k in range(0, len(pairs), 2))


def smad_ratio_max(*pairs: np.ndarray) -> float:
    """The largest sigma_MAD(attacked) / sigma_MAD(clean) over models, same layout as :func:`smad_ratio_min`:
    the damage to the most affected model (e.g. "every f_a repairs FGSM")."""
    return max(smad(pairs[k + 1]) / smad(pairs[k]) for k in range(0, len(pairs), 2))


def smad_worst_over(reference: np.ndarray, *others: np.ndarray) -> float:
    """The largest sigma_MAD of ``others`` over that of ``reference``: how the worst of several models compares
    with one reference scoring (e.g. every f_a model under its own FGSM against Iref under its own)."""
    return max(smad(x) for x in others) / smad(reference)
