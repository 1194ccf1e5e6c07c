"""The loaders return the real datasets; subsets are stratified and seeded; missing data fails clearly."""

from __future__ import annotations

import urllib.error

import pytest
import torch
from conftest import needs_cifar, needs_mnist

from helpers.core import augment, data


@needs_mnist
def test_mnist_is_the_real_dataset():
    train, test = data.load("mnist", "train"), data.load("mnist", "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.x.shape == (60000, 1, 28, 28) and train.x.dtype == torch.uint8
    assert train.y.dtype == torch.long and set(train.y.unique().tolist()) == set(range(10))
    assert train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's first training labels
    mean = float(train.x.float().mean() / 255)
    assert abs(mean - 0.1307) < 1e-3


@needs_cifar
def test_cifar10_is_the_real_dataset():
    train, test = data.load("cifar10", "train"), data.load("cifar10", "test")
    assert (len(train), len(test)) == (50000, 10000)
    assert train.x.shape == (50000, 3, 32, 32) and train.x.dtype == torch.uint8
    assert train.classes == data.CIFAR10_CLASSES
    assert train.y.bincount().tolist() == [5000] * 10 and test.y.bincount().tolist() == [1000] * 10
    mean = train.x.float().mean(dim=(0, 2, 3)) / 255
    torch.testing.assert_close(mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=2e-4, rtol=0)
    # Class order: airplanes (0) are skies, mostly blue; frogs (6) are green-brown, not blue.
    per_class = torch.stack([train.x[train.y == c].float().mean(dim=(0, 2, 3)) for c in range(10)])
    assert per_class[0, 2] > per_class[0, 0] and per_class[6, 1] > per_class[6, 2]


@needs_mnist
def test_loader_yields_floats_in_unit_range_in_a_seeded_order():
    d = data.load_subset("mnist", "train", 500, seed=0)
    loader = data.Loader(d, 128, shuffle=True, seed=3)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    x, y = batches[0]
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1 and float(x.max()) > 0.9
    again = list(data.Loader(d, 128, shuffle=True, seed=3))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader))[1], y)  # each epoch is shuffled anew
    assert sum(len(b[1]) for b in batches) == 500


def test_stratified_subsets_are_balanced_and_seeded():
    y = torch.arange(10).repeat_interleave(100)
    idx = data.stratified_indices(y, 95, seed=0)
    counts = y[idx].bincount(minlength=10)
    assert int(counts.sum()) == 95 and int(counts.max() - counts.min()) <= 1
    assert torch.equal(idx, data.stratified_indices(y, 95, seed=0))
    assert not torch.equal(idx, data.stratified_indices(y, 95, seed=1))
    assert len(idx.unique()) == 95


def test_split_off_is_disjoint_and_stratified():
    d = data.TensorData(torch.zeros(1000, 1, 2, 2, dtype=torch.uint8), torch.arange(10).repeat(100), ("c",) * 10)
    d = data.TensorData(torch.arange(1000).view(-1, 1, 1, 1).to(torch.uint8), d.y, d.classes)
    rest, val = data.split_off(d, 0.2, seed=0)
    assert (len(rest), len(val)) == (800, 200)
    assert val.y.bincount().tolist() == [20] * 10
    with pytest.raises(ValueError, match="^val_fraction"):
        data.split_off(d, 1.5, seed=0)


def test_unknown_dataset_or_split_names_the_parameter():
    with pytest.raises(ValueError, match="^dataset"):
        data.load("svhn", "train")
    with pytest.raises(ValueError, match="^split"):
        data.load("mnist", "validation")


def test_missing_data_offline_says_where_to_put_it(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10, MNIST

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("HELPERS_DATA", str(tmp_path))
    monkeypatch.setattr(MNIST, "download", offline)
    monkeypatch.setattr(CIFAR10, "download", offline)
    data.load.cache_clear()
    try:
        with pytest.raises(data.DataNotFoundError, match=str(tmp_path)) as err:
            data.load("mnist", "train")
        assert "MNIST/raw" in str(err.value) and "HELPERS_DATA" in str(err.value)
        with pytest.raises(data.DataNotFoundError, match="cifar10/"):
            data.load("cifar10", "test")
    finally:
        data.load.cache_clear()


def test_image_folder_tree_is_decoded_and_cached(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("HELPERS_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    g = torch.Generator().manual_seed(0)
    images = {}
    for label, cls in enumerate(data.CIFAR10_CLASSES):
        folder = tmp_path / "data" / "cifar10" / "test" / cls
        folder.mkdir(parents=True)
        for i in range(2):
            a = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8).numpy()
            Image.fromarray(a).save(folder / f"img_{i}.png")
            images[(label, i)] = a
    data.load.cache_clear()
    try:
        d = data.load("cifar10", "test")
        assert d.x.shape == (20, 3, 32, 32) and d.y.tolist() == [c for c in range(10) for _ in range(2)]
        assert torch.equal(d.x[3].permute(1, 2, 0), torch.from_numpy(images[(1, 1)]))
        assert len(list((tmp_path / "cache").glob("cifar10-test-*.pt"))) == 1
        data.load.cache_clear()
        assert torch.equal(data.load("cifar10", "test").x, d.x)  # from the cache
    finally:
        data.load.cache_clear()


def test_augmentations_keep_shape_range_and_content():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 32, 32, generator=g)
    for name in augment.AUGMENTATIONS[1:]:
        out = augment.make(name)(x, torch.Generator().manual_seed(1))
        assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1, name
    assert augment.make("none") is None
    assert torch.equal(augment.HFlip(p=1.0)(x, g), x.flip(-1))
    assert torch.equal(augment.RandomCrop(0)(x, g), x)
    crop = augment.RandomCrop(4)(x, torch.Generator().manual_seed(2))
    # every crop is a shifted window: its centre 24x24 appears in the zero-padded image
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(4):
        windows = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)  # (C, 9, 9, 32, 32)
        assert any(torch.equal(windows[:, a, b], crop[i]) for a in range(9) for b in range(9))
    d = augment.Dihedral()(x, g)
    torch.testing.assert_close(d.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    with pytest.raises(ValueError, match="^augment"):
        augment.make("mixup")
