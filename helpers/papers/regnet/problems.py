"""The data of the RegNet chapter (Volpato 2019): three-class MNIST problems, a synthetic many-class problem,
and a fingerprint that keys checkpoints on a training set.

Images are :class:`helpers.core.data.TensorData` (uint8 (N, C, H, W), loaders yield float32 in [0, 1]);
labels are int64 in [0, d), d the number of classes, which is also the dimension of the latent space.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from helpers.core.data import Loader, TensorData, subset
from helpers.core.params import check_int

# The thesis' three-class problems (Secs. 2.1-2.4): digits grouped three by three (9 left out), and single digits.
GROUPED = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
SINGLE = [[0], [1], [2]]


def relabel(data: TensorData, groups: Sequence[Sequence[int]]) -> TensorData:
    """Keep the samples whose label is in one of ``groups`` and relabel them by group index.

    ``groups=[[0, 1, 2], [3, 4, 5], [6, 7, 8]]`` gives the thesis' grouped three-class problem (digit 9 left
    out); ``[[0], [1], [2]]`` its single-label one. Class names become e.g. ``"0,1,2"``.
    """
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError(f"groups must be a non-empty list of non-empty label lists (got {groups!r})")
    flat = [int(c) for g in groups for c in g]
    if len(set(flat)) != len(flat) or min(flat) < 0 or max(flat) >= len(data.classes):
        raise ValueError(f"groups must hold distinct labels in [0, {len(data.classes)}) (got {groups!r})")
    lookup = torch.full((len(data.classes),), -1, dtype=torch.long)
    for i, g in enumerate(groups):
        lookup[torch.tensor([int(c) for c in g])] = i
    new = lookup[data.y]
    keep = torch.nonzero(new >= 0).flatten()
    names = tuple(",".join(data.classes[int(c)] for c in g) for g in groups)
    sub = data.subset(keep)
    return TensorData(sub.x, new[keep], names, sub.extra, sub.source)


def three_class(
    train: TensorData,
    test: TensorData,
    groups: Sequence[Sequence[int]],
    n_train: int,
    n_test: int,
    seed: int,
    device: torch.device | str = "cpu",
) -> tuple[TensorData, Loader]:
    """A relabelled problem (:func:`relabel`): stratified subsets of ``n_train`` training and ``n_test`` test
    images drawn from ``seed``, returned as the training set and a test loader (batches of 500, fixed order)."""
    tr = subset(relabel(train, groups), n_train, seed)
    te = subset(relabel(test, groups), n_test, seed)
    return tr, Loader(te, 500, device=device)


def synthetic_latent_problem(
    num_classes: int,
    n_per_class: int,
    dim_in: int = 32,
    *,
    spread: float = 0.2,
    seed: int = 0,
    noise_seed: int | None = None,
) -> TensorData:
    """A synthetic classification problem with many classes, for the loss's numerics at d = ``num_classes``
    (thesis Sec. 3.5, where training beyond 62 classes turned NaN).

    Class c's inputs are ``u_c + spread * noise`` in R^``dim_in``, with ``u_c`` random unit vectors drawn from
    ``seed`` and standard normal noise drawn from ``noise_seed`` (default ``seed + 1``): a held-out set is the
    same problem with another ``noise_seed``. Returns float inputs ``x`` (N, dim_in) (not images) with labels
    (N,), N = num_classes * n_per_class.
    """
    check_int("num_classes", num_classes, low=2)
    check_int("n_per_class", n_per_class, low=1)
    check_int("dim_in", dim_in, low=1)
    centres = torch.randn(num_classes, dim_in, generator=torch.Generator().manual_seed(seed))
    centres = centres / centres.norm(dim=1, keepdim=True)
    g = torch.Generator().manual_seed(seed + 1 if noise_seed is None else noise_seed)
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim_in, generator=g)
    return TensorData(x, y, tuple(str(c) for c in range(num_classes)))


def fingerprint(data: TensorData) -> str:
    """A short hash of a data set's labels and a strided sample of its pixels: checkpoints key on it, so two
    training sets with the same size but different images never share a checkpoint."""
    h = hashlib.sha256()
    h.update(data.y.numpy().tobytes())
    flat = data.x.reshape(len(data), -1)
    h.update(flat[:, :: max(1, flat.shape[1] // 64)].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
