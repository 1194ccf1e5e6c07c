"""Effective rank (Roy & Vetterli 2007) and principal directions of a data matrix (the document's Sec. 5).

The document measured an effective rank of 625 for CIFAR-10 images seen as points of R^3072 and tried a
learnable projection onto as many directions (:class:`~helpers.papers.curriculum.defenses.LowRankInput`),
which :func:`principal_directions` initialises.
"""

from __future__ import annotations

import torch

from helpers.core.params import check_int


def _spectrum(x: torch.Tensor, center: bool, vectors: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Squared singular values of ``x`` (N, D) in descending order, and optionally its right singular vectors.

    Works on the smaller of the two Gram matrices: ``x x^T`` (N x N) when N < D, else ``x^T x`` (D x D); the
    non-zero eigenvalues are the same, and ``V = x^T U / s`` recovers the right singular vectors.
    """
    x = x.flatten(1).double()
    if center:
        x = x - x.mean(0)
    small = x.shape[0] < x.shape[1]
    gram = x @ x.T if small else x.T @ x
    if not vectors:
        return torch.linalg.eigvalsh(gram).clamp_min(0).flip(0), None
    evals, evecs = torch.linalg.eigh(gram)
    evals, evecs = evals.clamp_min(0).flip(0), evecs.flip(1)
    if small:
        evecs = (x.T @ evecs) / evals.sqrt().clamp_min(1e-12)
    return evals, evecs


def effective_rank(x: torch.Tensor, *, center: bool = False) -> float:
    """Roy & Vetterli (2007)'s effective rank of the data matrix ``x`` (N, ...) flattened to (N, D).

    With singular values ``s_k`` and ``p_k = s_k / sum(s)``, it is ``exp(-sum p_k log p_k)``: min(N, D) for a
    matrix whose singular values are all equal, 1 for rank one. ``center`` subtracts the mean first (PCA).
    """
    evals, _ = _spectrum(x, center)
    s = evals.sqrt()
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def principal_directions(x: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(basis (D, rank), mean (D,))``: the top principal directions of ``x`` (N, ...) and its mean."""
    check_int("rank", rank, low=1, high=min(len(x), x[0].numel()))
    _, evecs = _spectrum(x, center=True, vectors=True)
    return evecs[:, :rank].float(), x.flatten(1).double().mean(0).float()
