"""Metrics beyond accuracy.

Photometric redshifts (Campagne 2020; Pasquet et al. 2019): the network outputs a PDF over 180 bins on [0, 1];
``zphot`` is the PDF-weighted mean of the bin centres, ``dz = (zphot - zspec) / (1 + zspec)``, and a sample is
summarised by the bias (mean dz), sigma_MAD = 1.4826 * median|dz - median(dz)| and the outlier fraction eta, the
share of |dz| > 0.05.
"""

from __future__ import annotations

import torch

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
