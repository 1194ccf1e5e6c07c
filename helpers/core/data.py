"""Datasets as cached uint8 tensors, stratified subsets, and a fast in-memory batch loader.

Value ranges: images are stored as uint8 ``(N, C, H, W)`` and every loader yields float32 in [0, 1];
normalization (per-channel mean/std) is a layer inside each model, so attacks and budgets are always
expressed in [0, 1] pixel units. Labels are int64 class indices.

Where the data come from:
- the root is ``HELPERS_DATA`` (default: a per-user cache directory);
- MNIST: ``torchvision.datasets.MNIST(root, download=True)``, which skips the download when the files are
  intact under ``<root>/MNIST/raw``;
- CIFAR-10: ``torchvision.datasets.CIFAR10(root, download=True)`` when ``<root>/cifar-10-batches-py`` exists
  or no other copy is there; otherwise the ImageFolder tree ``<root>/cifar10/{train,test}/<class>/*.png``
  (class folders sorted alphabetically give CIFAR-10's label order), decoded once into a uint8 cache under
  ``HELPERS_CACHE``.
Offline with the files missing, a :class:`DataNotFoundError` says which files to put where.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from helpers.core.io import atomic_path
from helpers.core.params import check_choice, check_fraction, check_int

DATASETS = ("mnist", "cifar10")
SPLITS = ("train", "test")
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))
# Per-channel statistics of the training splits, for the models' Normalize layers.
MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
_APP = "adv-robust-book"


class DataNotFoundError(FileNotFoundError):
    """The dataset is neither on disk nor downloadable; the message says what to put where."""


def data_root() -> Path:
    """Where the raw datasets live: ``HELPERS_DATA``, else ``<user cache>/adv-robust-book/data``."""
    env = os.environ.get("HELPERS_DATA")
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir(_APP)) / "data"


def cache_dir() -> Path:
    """Where decoded tensors, simulations and checkpoints are cached: ``HELPERS_CACHE`` or a user cache dir.

    Kept apart from :func:`data_root` because the data root may be read-only (a shared mount).
    """
    env = os.environ.get("HELPERS_CACHE")
    path = Path(env).expanduser() if env else Path(__import__("platformdirs").user_cache_dir(_APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class TensorData:
    """An in-memory split: ``x`` uint8 (N, C, H, W) images (or float in physical units), ``y`` int64 (N,), the
    class names, and ``extra``: further per-sample model inputs (N, ...) such as the photo-z chapter's E(B-V),
    which loaders yield after ``y`` and attacks never perturb. ``source``: (N,) int64, each sample's index in
    the split it was loaded from (``None``: the split itself), so results can name the exact test images."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    extra: tuple[torch.Tensor, ...] = ()
    source: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def indices(self) -> list[int]:
        """Each sample's index in the split it was loaded from (see ``source``)."""
        return (torch.arange(len(self)) if self.source is None else self.source).tolist()

    def subset(self, index: torch.Tensor) -> TensorData:
        src = torch.arange(len(self)) if self.source is None else self.source
        return TensorData(self.x[index], self.y[index], self.classes, tuple(e[index] for e in self.extra), src[index])

    def float(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """All images as float32 in [0, 1] on ``device``, with their labels."""
        return to_float(self.x, device), self.y.to(device)


def to_float(x: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images to float32 in [0, 1], converting on the device (4x less to copy); float data as float32."""
    if x.dtype != torch.uint8:
        return x.to(device, torch.float32, non_blocking=True)
    return x.to(device, non_blocking=True).float().div_(255.0)


def _missing(dataset: str, root: Path, err: BaseException) -> DataNotFoundError:
    where = {
        "mnist": f"{root}/MNIST/raw/ (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])",
        "cifar10": f"{root}/cifar-10-batches-py/ (torchvision's pickled batches) or an ImageFolder tree "
        f"{root}/cifar10/{{train,test}}/<class>/<image>.png",
    }[dataset]
    return DataNotFoundError(
        f"{dataset} is not under the data root {root} and could not be downloaded ({err}). "
        f"Put the files at {where}, or point HELPERS_DATA at a directory that has them."
    )


@functools.lru_cache(maxsize=8)
def load(dataset: str, split: str = "train") -> TensorData:
    """A whole split of ``dataset`` ("mnist" or "cifar10") as :class:`TensorData` (cached in memory)."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("split", split, SPLITS)
    root = data_root()
    if dataset == "mnist":
        return _load_mnist(root, split)
    return _load_cifar10(root, split)


def _load_mnist(root: Path, split: str) -> TensorData:
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(root), train=split == "train", download=True)
    except Exception as err:  # URLError, RuntimeError, OSError: all mean "not here and not fetchable"
        raise _missing("mnist", root, err) from err
    return TensorData(ds.data.unsqueeze(1).contiguous(), ds.targets.long(), MNIST_CLASSES)


def _load_cifar10(root: Path, split: str) -> TensorData:
    tree = root / "cifar10" / split
    if not (root / "cifar-10-batches-py").is_dir() and tree.is_dir():
        return _load_image_folder(tree, CIFAR10_CLASSES)
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=split == "train", download=True)
    except Exception as err:
        raise _missing("cifar10", root, err) from err
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    return TensorData(x, torch.tensor(ds.targets, dtype=torch.long), CIFAR10_CLASSES)


def _decode(paths: list[str]) -> np.ndarray:
    from PIL import Image

    out = None
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"), dtype=np.uint8)
        if out is None:
            out = np.empty((len(paths), *a.shape), dtype=np.uint8)
        out[i] = a
    return out


def _load_image_folder(tree: Path, expected_classes: tuple[str, ...]) -> TensorData:
    """Decode ``tree/<class>/*`` once into a uint8 tensor cached under :func:`cache_dir`.

    The cache key hashes every relative path and size, so a changed tree is decoded again.
    """
    classes = tuple(sorted(d.name for d in tree.iterdir() if d.is_dir()))
    if classes != expected_classes:
        raise DataNotFoundError(f"{tree} has class folders {classes}, expected {expected_classes}")
    files: list[tuple[str, int]] = []
    for label, cls in enumerate(classes):
        names = sorted(e.name for e in os.scandir(tree / cls) if e.is_file())
        files.extend((str(tree / cls / n), label) for n in names)
    digest = hashlib.sha1(str(tree.resolve()).encode())
    for p, _ in files:
        digest.update(p.encode())
        digest.update(str(os.stat(p).st_size).encode())
    cache = cache_dir() / f"{tree.parent.name}-{tree.name}-{digest.hexdigest()[:16]}.pt"
    if cache.exists():
        blob = torch.load(cache, weights_only=True)
        return TensorData(blob["x"], blob["y"], classes)
    paths = [p for p, _ in files]
    workers = max(1, min(os.cpu_count() or 1, 8))
    chunks = [paths[i : i + 2048] for i in range(0, len(paths), 2048)]
    from tqdm.auto import tqdm

    with ProcessPoolExecutor(workers) as pool:
        parts = list(tqdm(pool.map(_decode, chunks), total=len(chunks), desc=f"decode {tree.name}"))
    x = torch.from_numpy(np.concatenate(parts).transpose(0, 3, 1, 2).copy())
    y = torch.tensor([label for _, label in files], dtype=torch.long)
    with atomic_path(cache) as tmp:
        torch.save({"x": x, "y": y}, tmp)
    return TensorData(x, y, classes)


def stratified_indices(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` indices with classes as balanced as possible, chosen by ``seed``; sorted ascending.

    Each class gets ``n // k`` items and the first ``n % k`` classes (in a seeded order) one more.
    """
    classes = torch.unique(y)
    check_int("n", n, low=1, high=len(y))
    g = torch.Generator().manual_seed(seed)
    k = len(classes)
    extra = set(torch.randperm(k, generator=g)[: n % k].tolist())
    picked = []
    for i, c in enumerate(classes):
        pool = torch.nonzero(y == c).flatten()
        take = n // k + (1 if i in extra else 0)
        if take > len(pool):
            raise ValueError(f"n={n} needs {take} items of class {int(c)} but only {len(pool)} exist")
        picked.append(pool[torch.randperm(len(pool), generator=g)[:take]])
    return torch.sort(torch.cat(picked)).values


def subset(data: TensorData, n: int | None, seed: int) -> TensorData:
    """A seeded stratified subset of ``n`` items (``None`` or ``n >= len`` keeps everything)."""
    if n is None or n >= len(data):
        return data
    return data.subset(stratified_indices(data.y, n, seed))


def split_off(data: TensorData, fraction: float, seed: int) -> tuple[TensorData, TensorData]:
    """Split ``data`` into (rest, held_out) with a stratified held-out ``fraction`` (a validation split)."""
    check_fraction("val_fraction", fraction)
    n_val = int(round(fraction * len(data)))
    if n_val == 0:
        return data, data.subset(torch.empty(0, dtype=torch.long))
    held = stratified_indices(data.y, n_val, seed)
    mask = torch.ones(len(data), dtype=torch.bool)
    mask[held] = False
    return data.subset(torch.nonzero(mask).flatten()), data.subset(held)


def load_subset(dataset: str, split: str, n: int | None = None, seed: int = 0) -> TensorData:
    """:func:`load` then :func:`subset`: the usual one-liner of a chapter."""
    return subset(load(dataset, split), n, seed)


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class Loader:
    """Shuffled mini-batches ``(x, y, *extra)`` of float32 images in [0, 1] on ``device``, from uint8 tensors in
    memory (float data, e.g. fluxes, pass through as float32; ``extra`` inputs follow the labels).

    Much faster than ``DataLoader`` for data that fits in memory. The order of epoch ``e`` depends only on
    ``(seed, e)``, so a resumed run sees the same batches as an uninterrupted one; call
    :meth:`set_epoch` before iterating (the training loop does).
    """

    def __init__(
        self,
        data: TensorData,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        augment: Augment | None = None,
        drop_last: bool = False,
    ) -> None:
        self.data = data
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.shuffle, self.seed, self.device = shuffle, seed, torch.device(device)
        self.augment, self.drop_last = augment, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.data)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = to_float(self.data.x[idx], self.device)
            if self.augment is not None:
                x = self.augment(x, g)
            extra = tuple(e[idx].to(self.device, non_blocking=True) for e in self.data.extra)
            yield (x, self.data.y[idx].to(self.device, non_blocking=True), *extra)
