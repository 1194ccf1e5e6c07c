"""Chapter 5's document code: its parameter rules against the notebook and profiles, the checkpoint
configurations, the three trainings (on a tiny synthetic CIFAR-shaped set) and the measurements of
helpers.papers.cure.study on problems with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from helpers.core import data
from helpers.core import params as P
from helpers.core.training import config_hash
from helpers.papers.cure import chapter, study
from helpers.pipeline import parameters_for
from helpers.sweep.grid import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
NAME = "05_cure_topology"


def _defaults() -> dict:
    return notebook_parameters(ROOT / "notebooks" / f"{NAME}.py")


def test_rules_cover_the_parameters_cell_and_every_profile_passes():
    defaults = _defaults()
    assert set(defaults) - {"profile", "seed", "device"} == set(chapter.PARAMETERS)
    assert "dataset" not in defaults  # the tiny_imagenet option, which always raised, is gone
    for profile in P.PROFILES:
        values = {**defaults, **parameters_for(ROOT, NAME, profile, [])}
        assert set(values) == set(defaults), f"params/{profile}/{NAME}.yaml names an unknown parameter"
        P.validate(values, chapter.PARAMETERS)
        chapter.check_parameters(values)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("model_name", "vgg", "model_name must be one of"),
        ("lr_gamma", 0.0, "lr_gamma must be in (0, 1]"),
        ("at_fraction", 1.5, "at_fraction must be in [0, 1]"),
        ("hue_angles", [10, 400], "hue_angles"),
        ("n_geom", 5, "n_geom must be an integer in [10, 10000]"),
    ],
)
def test_a_bad_parameter_is_named(name, value, needle):
    values = {**_defaults(), name: value}
    with pytest.raises(ValueError) as err:
        P.validate(values, chapter.PARAMETERS)
    assert needle in str(err.value)


def test_n_suite_cannot_exceed_n_test():
    values = {**_defaults(), "n_test": 100, "n_suite": 200}
    P.validate(values, chapter.PARAMETERS)  # each value alone is fine
    with pytest.raises(ValueError, match=r"^n_suite must be an integer in \[10, 100\]"):
        chapter.check_parameters(values)


def test_checkpoint_configs_retrain_only_what_a_parameter_touches():
    p = {**_defaults(), "seed": 0}
    hashes = {k: config_hash(v) for k, v in chapter.checkpoint_configs(p).items()}
    assert len(set(hashes.values())) == 3
    for name, touched in (
        ("cure_h", {"cure"}),
        ("overshoot", {"at"}),
        ("ft_lr", {"at", "cure"}),
        ("width", {"base", "at", "cure"}),
    ):
        changed = {k: config_hash(v) for k, v in chapter.checkpoint_configs({**p, name: p[name] * 2}).items()}
        assert {k for k in hashes if hashes[k] != changed[k]} == touched, name
    # the configuration names the dataset and the architecture: a checkpoint says what it holds
    assert chapter.checkpoint_configs(p)["base"]["dataset"] == chapter.DATASET == "cifar10"


def _tiny_cifar(n: int = 24, seed: int = 0) -> data.TensorData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    x[:, y % 3] = 200  # a colour cue per class, so a few steps learn something
    return data.TensorData(x, y, tuple(str(c) for c in range(10)))


def test_the_three_trainings_copy_resume_and_leave_base_untouched(tmp_path):
    loader = data.Loader(_tiny_cifar(), 8, shuffle=True, seed=0)
    val = data.Loader(_tiny_cifar(seed=1), 12)
    kw = {"model_name": "resnet18", "width": 2, "epochs": 1, "lr": 1e-2, "lr_gamma": 0.7, "weight_decay": 5e-4}
    base = chapter.train_base(loader, val, **kw, seed=0, device="cpu", checkpoint=tmp_path / "base.pt")
    assert not base.training and base.arch_config["kwargs"]["dataset"] == "cifar10"
    before = {k: v.clone() for k, v in base.state_dict().items()}
    ft = {"epochs": 1, "lr": 1e-3, "weight_decay": 5e-4, "seed": 0}
    at = chapter.fine_tune_adversarial(base, loader, val, fraction=0.5, overshoot=0.02, **ft)
    cure = chapter.fine_tune_cure(base, loader, val, lam=4.0, h=0.6, h_start=0.02, warmup=0.5, **ft)
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # base untouched
    for model in (at, cure):
        assert not model.training and model is not base
        assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # a finished checkpoint is loaded, not retrained: the same weights
    again = chapter.train_base(loader, val, **kw, seed=0, device="cpu", checkpoint=tmp_path / "base.pt")
    assert all(torch.equal(before[k], v) for k, v in again.state_dict().items())
    x, y = _tiny_cifar(12, seed=2).float()
    adv = chapter.adversarial_set(base, x, y, overshoot=0.02)
    table = chapter.accuracy_table({"base": base, "AT": at}, x, y, adv, ft_epochs=1)
    assert list(table.index) == ["base", "AT"] and table.loc["AT", "fine-tuning epochs"] == 1
    assert table.loc["base", "accuracy on the adversarial set"] == 0.0  # every correct image was pushed over


def test_flatter_counts_pair_images():
    rows = [
        {"image": k, "network": n, "plane": p, "curvature": c}
        for p in ("random", "principal")
        for k, (b, at, cure) in enumerate([(1.0, 0.5, -2.0), (1.0, 2.0, 0.1), (1.0, float("nan"), 0.2)])
        for n, c in (("base", b), ("AT", at), ("CURE", cure))
    ]
    kappa, flatter = study.flatter_counts(pd.DataFrame(rows))
    assert flatter["random", "AT"] == "1/2"  # the NaN image is not counted
    assert flatter["principal", "CURE"] == "2/3"  # |-2| > 1 is steeper
    assert kappa.loc[("random", 0), "CURE"] == 2.0


def test_region_table_and_deepfool_accuracy():
    grid = torch.tensor([[1, 1, 2], [1, 1, 1], [3, 1, 1]])
    table = study.region_table({"net": grid})
    assert table.loc["net", "share of the plane in the image's class"] == pytest.approx(7 / 9)
    assert table.loc["net", "classes seen"] == 3
    correct = torch.tensor([1.0, 1.0, 0.0, 1.0])
    norms = torch.tensor([0.2, 0.05, 0.5, math.inf])
    assert study.deepfool_accuracy(correct, norms, 0.1) == 0.5  # images 0 and 3; image 2 is misclassified


def test_table1_leaves_deepfool_failures_out_of_the_perturbation():
    per_image = {"base": {"hessian": torch.tensor([1.0, 3.0, 8.0]), "perturbation": torch.tensor([0.1, math.inf, 0.3])}}
    t = study.table1(per_image)
    assert t.loc["base", "perturbation size (mean)"] == pytest.approx(0.2)
    assert t.loc["base", "DeepFool failures"] == 1 and t.loc["base", "‖H‖_F² (median)"] == 3.0
    text = study.table1_text({"base": per_image["base"]["hessian"]}, {"base": torch.tensor([0.1, 0.3])})
    assert text == "3 images, means: ‖H‖_F² base 4; perturbation base 0.200"


def test_hessian_norms_are_seeded_per_batch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = torch.rand(7, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.arange(7) % 3
    whole = study.hessian_norms(model, x, y, samples=2, seed=5, batch_size=3)
    assert whole.shape == (7,) and (whole > 0).all()
    from helpers.papers.cure.hessian import hessian_frobenius_sq

    third = hessian_frobenius_sq(model, x[6:], y[6:], samples=2, generator=torch.Generator().manual_seed(5 + 6))
    torch.testing.assert_close(whole[6:], third)


def test_pairs_are_drawn_among_correct_images_of_the_right_classes():
    y = torch.arange(60) % 5
    pred = y.clone()
    pred[::7] = (y[::7] + 1) % 5  # some mistakes
    g = torch.Generator().manual_seed(11)
    nat = study.natural_pairs(pred, y, 5, 6, g)
    adv = study.adversarial_pairs(pred, y, 5, 4, g)
    assert len(nat) == 6 and len(adv) == 4
    for a, b, c in nat:
        assert a != b and y[a] == y[b] == c and pred[a] == y[a] and pred[b] == y[b]
    for a, b, t in adv:
        assert len({int(y[a]), int(y[b]), t}) == 3 and pred[a] == y[a] and pred[b] == y[b]
    g2 = torch.Generator().manual_seed(11)
    assert study.natural_pairs(pred, y, 5, 6, g2) == nat and study.adversarial_pairs(pred, y, 5, 4, g2) == adv


class HalfPlane(nn.Module):
    """On 2-D points (B, 2): class 1 where x0 + 0.5 x1 > 0.2, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0] + 0.5 * x[:, 1] - 0.2
        return torch.stack([-m, m], 1)


def test_connect_pairs_natural_and_pushed():
    x = torch.tensor([[0.9, 0.1], [0.8, 0.9], [0.0, 0.1], [0.1, 0.0]])  # two of class 1, two of class 0
    classes = ["zero", "one"]
    search = {"n_check": 16, "max_rounds": 4, "overshoot": 0.5}
    nat, paths = study.connect_pairs(HalfPlane(), x, [(0, 1, 1), (2, 3, 0)], classes, want=1, **search)
    assert len(nat) == 1 and len(paths) == 1  # stops at ``want``
    assert nat.loc[0, "class"] == "one" and nat.loc[0, "points"] == 2 and bool(nat.loc[0, "valid"])
    adv, paths = study.connect_pairs(HalfPlane(), x, [(2, 3, 1)], classes, want=1, push=0.02, **search)
    assert len(adv) == 1 and bool(adv.loc[0, "valid"])  # both class-0 points pushed into class 1, then joined
    assert (HalfPlane()(paths[0].points).argmax(1) == 1).all()
    table = study.table2(nat, adv)
    assert list(table.index) == ["natural", "adversarial"] and table.loc["natural", "straight segment suffices"] == 1
    assert study.mean_sd(pd.Series([1.0, 3.0]), "{:.1f}") == "2.0 ± 1.0"
