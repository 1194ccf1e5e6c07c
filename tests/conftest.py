"""Shared fixtures: a quiet CPU environment and a small model trained on real MNIST digits."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HELPERS_PROGRESS", "0")
os.environ.setdefault("HELPERS_DEVICE", "cpu")


def data_available(dataset: str) -> bool:
    """Whether ``dataset`` loads; in CI (``CI`` set) missing data is an error, never a skip."""
    from helpers.core import data

    try:
        data.load(dataset, "test")
    except data.DataNotFoundError:
        if os.environ.get("CI"):
            raise
        return False
    return True


needs_mnist = pytest.mark.skipif("not __import__('conftest').data_available('mnist')", reason="MNIST not found")
needs_cifar = pytest.mark.skipif("not __import__('conftest').data_available('cifar10')", reason="CIFAR-10 not found")


@pytest.fixture(scope="session")
def mnist_small() -> tuple[torch.Tensor, torch.Tensor]:
    """256 stratified MNIST test digits as float (256, 1, 28, 28) in [0, 1] and labels."""
    from helpers.core import data

    return data.load_subset("mnist", "test", 256, seed=1).float()


@pytest.fixture(scope="session")
def trained_cnn() -> torch.nn.Module:
    """A narrow SmallCNN trained for one epoch on 3,000 MNIST digits (a few seconds), in eval mode."""
    from helpers.core import data, models, training
    from helpers.core.device import seed_everything

    seed_everything(0)
    model = models.build("small_cnn", "mnist", width=8)
    loader = data.Loader(data.load_subset("mnist", "train", 3000, seed=0), 64, shuffle=True)
    training.fit(model, loader, optimizer=torch.optim.Adam(model.parameters(), 2e-3), epochs=1)
    return model.eval()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run ``test_sweep.py`` right before ``test_notebooks.py``.

    Its primer sweep writes ``results/sweeps/``, which the book's "Sweeps" page reads when the last notebook test
    executes it and builds the book: run in the default (alphabetical) order the page would show no sweep.
    """
    sweep = [i for i in items if i.path.name == "test_sweep.py"]
    rest = [i for i in items if i.path.name != "test_sweep.py"]
    at = next((k for k, i in enumerate(rest) if i.path.name == "test_notebooks.py"), len(rest))
    items[:] = rest[:at] + sweep + rest[at:]
