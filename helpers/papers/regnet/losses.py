"""The latent losses of RegNet (Volpato 2019): Gaussian-target moment losses on a network's latent code.

Each function documents its paper, the shapes it takes and the value ranges it expects.
"""

from __future__ import annotations

import math

import torch

from helpers.core.params import check_choice, check_nonnegative, check_positive

# ----------------------------------------------------------------------------------------------------------
# RegNet (Volpato 2019)
# ----------------------------------------------------------------------------------------------------------

REGNET_KINDS = ("cov", "simplified")


def _class_stats(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class counts (C,), means (C, d) and each sample centred on its own class mean (B, d).

    Scatter-adds (``index_add``) instead of a loop over classes: the cost is O(B d), not O(C B d), and classes
    absent from the batch simply get a count of 0.
    """
    ones = torch.ones(len(y), dtype=z.dtype, device=z.device)
    counts = torch.zeros(num_classes, dtype=z.dtype, device=z.device).index_add(0, y, ones)
    sums = torch.zeros(num_classes, z.shape[1], dtype=z.dtype, device=z.device).index_add(0, y, z)
    means = sums / counts.clamp_min(1.0).unsqueeze(1)
    return counts, means, z - means[y]


def kurtosis(
    z: torch.Tensor, y: torch.Tensor | None = None, *, num_classes: int | None = None, eps: float = 1e-12
) -> torch.Tensor:
    """Pearson kurtosis ``E[(z - m)^4] / E[(z - m)^2]^2`` per dimension (Volpato 2019, eq. 2.5), per class.

    A normal distribution has kurtosis 3 in every dimension; heavy tails give more, flat tops and two-spike
    shapes less (the minimum, 1, is a symmetric two-point distribution). Moments are the plain (biased) sample
    moments, computed in float64 and differentiable.

    - ``z``: (B, d) samples; ``y``: optional (B,) int64 labels in [0, num_classes).
    - Returns (d,) without labels, else (C, d) with ``C = num_classes`` (default ``d``); rows of classes with
      fewer than 2 samples are NaN (their kurtosis is undefined). ``eps`` guards constant dimensions.
    """
    z64 = z.double()
    if y is None:
        zc = z64 - z64.mean(0, keepdim=True)
        return zc.pow(4).mean(0) / (zc.pow(2).mean(0).pow(2) + eps)
    c = num_classes if num_classes is not None else z.shape[1]
    counts, _, zc = _class_stats(z64, y, c)
    n = counts.clamp_min(1.0).unsqueeze(1)
    m2 = torch.zeros(c, z.shape[1], dtype=z64.dtype, device=z.device).index_add(0, y, zc.pow(2)) / n
    m4 = torch.zeros(c, z.shape[1], dtype=z64.dtype, device=z.device).index_add(0, y, zc.pow(4)) / n
    k = m4 / (m2.pow(2) + eps)
    return torch.where((counts >= 2).unsqueeze(1), k, torch.full_like(k, float("nan")))


def regnet_loss(
    z: torch.Tensor,
    y: torch.Tensor,
    *,
    mu_t: float,
    sigma_t: float = 1.0,
    kind: str = "cov",
    kurtosis_weight: float = 0.0,
    jitter: float = 1e-3,
    min_kurtosis_count: int = 4,
) -> torch.Tensor:
    """The RegNet latent-space loss (Testa et al. 2019; multi-class study of Volpato 2019, eqs. 2.1-2.7).

    The encoder maps each input to ``z`` in R^d, d = number of classes; the target for class c is the Gaussian
    N(mu_t e_c, sigma_t^2 I), and the decision rule is the nearest target mean, i.e. ``z.argmax(1)``. For every
    class present in the batch the loss fits a Gaussian N(mu_O, Sigma_O) to that class's outputs and adds its
    KL divergence to the target, ``1/2 [log|Sigma_T|/|Sigma_O| - d + tr(Sigma_T^-1 Sigma_O)
    + (mu_T - mu_O)^T Sigma_T^-1 (mu_T - mu_O)]``; the per-class terms are summed (eq. 2.2).

    - ``kind="cov"``: the full sample covariance (eq. 2.1). ``kind="simplified"``: only its diagonal
      (eq. 2.3), i.e. the KL of the product of the per-dimension Gaussians.
    - ``kurtosis_weight`` F_k adds ``F_k * mean_i |K_ci - 3|`` for every class c, with K_ci the kurtosis of
      dimension i of class c (:func:`kurtosis`). The thesis writes the signed ``F_k (K - 3)`` (eqs. 2.6/2.7);
      its minimum is not Gaussianity but a two-spike distribution (kurtosis 1), so we use the absolute value,
      whose minimum, 0, is reached exactly when every dimension has the normal kurtosis 3. Classes with fewer
      than ``min_kurtosis_count`` samples in the batch skip this term (a kurtosis from 2-3 samples is noise).

    Numerics (the thesis lost training to NaN above 62 classes): everything is computed in float64; the
    covariance is the unbiased sample covariance plus ``jitter * sigma_t^2 * I``, so it is positive definite
    even when a class has fewer samples than dimensions, and its log-determinant comes from a Cholesky factor
    (a sum of logs, never a determinant that underflows). The result is then the exact KL of that regularised
    Gaussian, >= 0, finite, with finite gradients. Classes with fewer than 2 samples in the batch (no
    covariance) contribute nothing; a batch without any such class returns 0 (still attached to ``z``).

    - ``z``: (B, d) latent outputs (any float dtype); ``y``: (B,) int64 labels in [0, d).
    - ``mu_t`` >= 0 target mean, ``sigma_t`` > 0 target standard deviation, in latent units.
    Returns a scalar of ``z``'s dtype.
    """
    check_choice("kind", kind, REGNET_KINDS)
    mu_t = check_nonnegative("mu_t", mu_t)
    sigma_t = check_positive("sigma_t", sigma_t)
    kurtosis_weight = check_nonnegative("kurtosis_weight", kurtosis_weight)
    jitter = check_nonnegative("jitter", jitter)
    if z.dim() != 2 or y.shape != z.shape[:1]:
        raise ValueError(f"z must be (B, d) and y (B,) (got z {tuple(z.shape)}, y {tuple(y.shape)})")
    d = z.shape[1]
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= d):
        raise ValueError(f"y must hold labels in [0, {d}) for a {d}-dimensional latent space")
    z64 = z.double()
    counts, means, zc = _class_stats(z64, y, d)
    present = counts >= 2
    if not bool(present.any()):
        return z.sum() * 0.0
    var_t = sigma_t**2
    target = mu_t * torch.eye(d, dtype=z64.dtype, device=z.device)
    mean_term = (target - means).pow(2).sum(1) / var_t  # (C,)
    n1 = (counts - 1).clamp_min(1.0)
    if kind == "cov":
        outer = zc.unsqueeze(2) * zc.unsqueeze(1)  # (B, d, d)
        cov = torch.zeros(d, d, d, dtype=z64.dtype, device=z.device).index_add(0, y, outer) / n1.view(-1, 1, 1)
        cov = cov[present] + jitter * var_t * torch.eye(d, dtype=z64.dtype, device=z.device)
        chol = torch.linalg.cholesky(cov)
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        trace = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)
    else:
        var = torch.zeros(d, d, dtype=z64.dtype, device=z.device).index_add(0, y, zc.pow(2)) / n1.unsqueeze(1)
        var = var[present] + jitter * var_t
        logdet = torch.log(var).sum(-1)
        trace = var.sum(-1)
    kl = 0.5 * (d * math.log(var_t) - logdet - d + trace / var_t + mean_term[present])
    loss = kl.sum()
    if kurtosis_weight > 0:
        k = kurtosis(z64, y, num_classes=d)
        enough = counts >= max(min_kurtosis_count, 2)
        if bool(enough.any()):
            loss = loss + kurtosis_weight * (k[enough] - 3.0).abs().mean(1).sum()
    return loss.to(z.dtype)


def naive_cov_loss(z: torch.Tensor, y: torch.Tensor, *, mu_t: float, sigma_t: float = 1.0) -> torch.Tensor:
    """The covariance loss written the straightforward way: float32, ``log(det(Sigma_O))``, no jitter.

    For illustration only (the RegNet chapter's 100-class section): with fewer samples per class than
    dimensions the sample covariance is singular, ``det`` returns 0 (or a tiny negative number from rounding)
    and the loss becomes -inf, +inf or NaN, which is how the thesis' training failed at many classes. Use
    :func:`regnet_loss`.
    """
    z = z.float()
    d = z.shape[1]
    eye = torch.eye(d, device=z.device)
    total = z.new_zeros(())
    for c in range(d):
        s = z[y == c]
        if len(s) < 2:
            continue
        m = s.mean(0)
        cov = torch.cov(s.T)
        diff = mu_t * eye[c] - m
        total = total + 0.5 * (
            2 * d * math.log(sigma_t)
            - torch.log(torch.det(cov))
            - d
            + torch.trace(cov) / sigma_t**2
            + diff.dot(diff) / sigma_t**2
        )
    return total
