"""The RegNet chapter's document package (helpers.papers.regnet): parameter rules, data, train-or-load through the
chapter scaffold, FGSM curves scored once, the gradient-masking check, the experiments and the figures."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch
import yaml

from helpers import experiment
from helpers.core import data
from helpers.core import params as P
from helpers.papers import regnet
from helpers.papers.regnet import latent, problems, studies
from helpers.papers.regnet import plots as figures

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def notebook_defaults() -> dict:
    """The values of the chapter's parameters cell (plain assignments)."""
    src = (ROOT / "notebooks" / "04_regnet.py").read_text(encoding="utf-8")
    cell = re.search(r'# %% tags=\["parameters"\]\n(.*?)\n# %%', src, flags=re.S).group(1)
    values: dict = {}
    exec(cell, {}, values)
    return values


@pytest.mark.parametrize("profile", ["medium", "small", "full"])
def test_every_profile_passes_the_rules_and_the_cross_checks(profile):
    values = notebook_defaults()
    f = ROOT / "params" / profile / "04_regnet.yaml"
    if f.exists():
        values.update(yaml.safe_load(f.read_text(encoding="utf-8")) or {})
    checked = P.validate(values, regnet.PARAMETERS)
    regnet.check_parameters(checked)
    assert set(regnet.PARAMETERS) <= set(values)  # every rule names a parameter of the notebook


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"encoder": "vgg"}, "encoder must be one of"),
        ({"n_train": 50}, "n_train must be an integer"),
        ({"eps_list": [0.1, 1.5]}, r"eps_list\[1\]"),
        ({"depths": [18, 101]}, r"depths\[1\]"),
        ({"triplets": [[0, 1, 1]]}, "triplets must be lists of 3 distinct digits"),
        ({"n_suite": 600}, "n_suite must be an integer in"),
        ({"eps_moderate": 0.3}, "eps_moderate must be one of"),
        ({"mu_t": 20.0}, "mu_t must be one of"),
        ({"fk_list": [0.2, 3000.0]}, "fk_list must hold 0"),
    ],
)
def test_a_bad_parameter_is_named_before_anything_runs(override, needle, tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path))
    namespace = {**notebook_defaults(), **override}
    with pytest.raises(ValueError, match=needle):
        experiment.start("04_regnet", "RegNet", namespace, regnet.PARAMETERS, check=regnet.check_parameters)


def test_schedule_drops_inside_training_once_per_epoch():
    assert regnet.schedule(1, [0.5]) == {"epochs": 1, "lr_milestones": ()}
    assert regnet.schedule(4, [0.75]) == {"epochs": 4, "lr_milestones": (3,)}
    assert regnet.schedule(3, [0.01, 0.1, 1.0]) == {"epochs": 3, "lr_milestones": (1, 2)}
    for n in range(2, 12):
        ms = regnet.schedule(n, [0.03, 0.5, 0.99])["lr_milestones"]
        assert all(1 <= m <= n - 1 for m in ms) and list(ms) == sorted(set(ms))


def fake_digits(n: int = 400, seed: int = 0) -> data.TensorData:
    """MNIST-shaped uint8 images whose mean brightness encodes the label (a learnable toy problem)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(10).repeat(n // 10)
    x = (torch.rand(n, 1, 28, 28, generator=g) * 60 + 18 * y.view(-1, 1, 1, 1)).to(torch.uint8)
    return data.TensorData(x, y, tuple(str(c) for c in range(10)))


def test_three_class_problems_are_relabelled_balanced_and_seeded():
    train, test = fake_digits(400, 0), fake_digits(200, 1)
    tr, loader = problems.three_class(train, test, problems.GROUPED, 60, 30, seed=3)
    assert tr.classes == ("0,1,2", "3,4,5", "6,7,8") and len(tr) == 60
    assert torch.bincount(tr.y).tolist() == [20, 20, 20]
    again, _ = problems.three_class(train, test, problems.GROUPED, 60, 30, seed=3)
    other, _ = problems.three_class(train, test, problems.GROUPED, 60, 30, seed=4)
    assert torch.equal(again.x, tr.x) and not torch.equal(other.x, tr.x)
    ys = torch.cat([y for _, y, *_ in loader])
    assert len(ys) == 30 and set(ys.tolist()) == {0, 1, 2}


def test_fingerprint_sees_labels_and_pixels():
    d = fake_digits(40)
    flipped = data.TensorData(d.x, d.y.flip(0), d.classes)
    brighter = data.TensorData(d.x + 1, d.y, d.classes)
    fps = {problems.fingerprint(x) for x in (d, flipped, brighter)}
    assert len(fps) == 3 and problems.fingerprint(fake_digits(40)) == problems.fingerprint(d)


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    return experiment.start("99_regnet_test", "Test", {"profile": "small", "seed": 0, "device": "cpu"}, {})


TINY = regnet.LatentConfig(loss="cov", mu_t=10.0, width=1, epochs=1, batch_size=40, lr=1e-2)


def test_trained_trains_once_per_configuration_and_loads_in_a_new_run(run, tmp_path, monkeypatch):
    train = fake_digits(80)
    a = regnet.trained(run, TINY, train)
    assert regnet.trained(run, dataclasses.replace(TINY), train) is a  # equal configuration: same model
    b = regnet.trained(run, dataclasses.replace(TINY, seed=1), train)
    assert b is not a and b.train_key != a.train_key
    assert len(list((tmp_path / "cache" / "checkpoints").glob("99_regnet_test-encoder-*.pt"))) == 2
    fresh = experiment.start("99_regnet_test", "Test", {"profile": "small", "seed": 0, "device": "cpu"}, {})
    loaded = regnet.trained(fresh, TINY, train)
    assert loaded is not a and loaded.train_key == a.train_key
    for p, q in zip(a.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(p, q)


def test_fgsm_scores_are_computed_once_and_paired_over_the_same_digits(run, monkeypatch):
    train, test = fake_digits(80), fake_digits(30, 1)
    model = regnet.trained(run, TINY, train)
    loader = data.Loader(test, 16)
    calls = []
    real = latent.evaluate.scores
    monkeypatch.setattr(latent.evaluate, "scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    eps = [0.0, 0.1, 0.3]
    first = latent.fgsm_scores(run, model, loader, eps, test="toy")
    assert latent.fgsm_scores(run, model, loader, eps, test="toy") is first and len(calls) == 3
    assert first[0].acc == pytest.approx(latent.evaluate.accuracy(model, loader))
    hits = latent.fgsm_hits(run, model, loader, eps, test="toy")
    assert hits.shape == (2, 30) and torch.equal(hits[1], first[2].hits[0]) and len(calls) == 3
    assert latent.fgsm_curve(run, model, loader, eps, test="toy") == [s.acc for s in first]
    latent.fgsm_scores(run, model, loader, eps, test="other")  # another test set: scored again
    assert len(calls) == 6
    with pytest.raises(ValueError, match="train_key"):
        latent.fgsm_scores(run, torch.nn.Linear(2, 2), loader, eps, test="toy")


def test_curve_rows_accuracy_at_and_class_shares():
    rows = latent.curve_rows([0.0, 0.1], [0.9, 0.4], model="a", study="s")
    rows += latent.curve_rows([0.0, 0.1], [0.8, 0.2], model="b", study="s")
    table = pd.DataFrame(rows)
    assert list(table.columns) == ["model", "study", "ε", "accuracy"]
    assert latent.accuracy_at(table, "b", 0.1) == 0.2 and latent.accuracy_at(table, "a", 0.1 + 1e-12) == 0.4
    shares = latent.class_shares(torch.tensor([[3.0, 0, 0], [0, 5, 0], [0, 6, 0], [0, 1, 0]]))
    assert shares.tolist() == [0.25, 0.75, 0.0]
    with pytest.raises(ValueError, match="strict|length|shorter|longer"):
        latent.curve_rows([0.0, 0.1], [0.9])


def test_gradient_masking_table_keeps_the_worst_pgd_per_radius():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 1, 4, 4, generator=g)
    y = (x.flatten(1).mean(1) > 0.5).long()
    loader = data.Loader(data.TensorData((x * 255).to(torch.uint8), y, ("a", "b")), 20)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    table, worst = latent.gradient_masking_table({"lin": model}, loader, [0.05, 0.2], steps=3, seed=0)
    assert set(table.attack) == {"FGSM (cross-entropy)", "FGSM (margin)", "PGD (cross-entropy)", "PGD (margin)"}
    assert len(table) == 8 and table.accuracy.between(0, 1).all()
    for e in (0.05, 0.2):
        pgd = table[table.attack.str.startswith("PGD") & (table["ε"] == e)].accuracy
        assert worst.loc[e, "lin"] == pgd.min()


@pytest.mark.parametrize(
    ("fgsm", "pgd", "needle"),
    [(-0.01, 0.2, "no FGSM advantage"), (0.2, 0.0, "vanishes under PGD"), (0.2, 0.05, "most of it"),
     (0.2, 0.15, "not gradient masking")],
)  # fmt: skip
def test_pgd_verdict_branches(fgsm, pgd, needle):
    assert needle in latent.pgd_verdict(fgsm, pgd)


def test_suite_verdict_branches():
    assert "stays ahead" in latent.suite_verdict(0.05, 0.1)
    assert "FGSM's weakness" in latent.suite_verdict(-0.01, 0.1)
    assert "neither" in latent.suite_verdict(0.0, -0.1)


def test_variations_change_one_thing_at_a_time():
    reg = dataclasses.replace(TINY, kurtosis_weight=0.2)
    ce = dataclasses.replace(TINY, loss="ce")
    shake = {"encoder": "shakeshake26", "width": 2, "epochs": 2}
    out = studies.variations(reg, ce, depths=[18, 34], shake=shake, seeds=[0, 1, 2], augment="affine")
    assert len(out) == 2 + 3 + 2 * 3 + 2
    by = {(lab["study"], lab["model"]): cfg for lab, cfg in out}
    assert by["depth", "ResNet-34"] == dataclasses.replace(reg, encoder="resnet34")
    assert by["shake-shake", "cross-entropy"] == dataclasses.replace(ce, **shake)
    assert by["seeds", "RegNet seed 0"] == reg and by["seeds", "cross-entropy seed 2"].seed == 2
    assert by["augmentation", "RegNet + affine"].augment == "affine" and by["augmentation", "RegNet"] == reg


def test_latent_study_records_gaussianity_and_draws_one_row_per_configuration(run):
    train, test = fake_digits(120), fake_digits(60, 1)
    probs = {"single": problems.three_class(train, test, problems.SINGLE, 60, 30, seed=0)}
    rows = [("a", "single", TINY), ("b", "single", dataclasses.replace(TINY, mu_t=20.0))]
    records, fig = studies.latent_study(run, rows, probs, "fig", "title")
    assert [r["configuration"] for r in records] == ["a", "b"] and all(r["figure"] == "fig" for r in records)
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["rmse"] < float("inf") for r in records)
    assert len(fig.axes) == 2 * 4
    table = studies.accuracy_table(run, [({"k": 1}, TINY)], *probs["single"])
    assert list(table.columns) == ["k", "accuracy"] and table.accuracy.iloc[0] == pytest.approx(records[0]["accuracy"])
    matplotlib.pyplot.close("all")


def test_figures_have_one_panel_per_series():
    curves = pd.DataFrame(
        latent.curve_rows([0, 0.1], [0.9, 0.5], model="RegNet μT=70", study="seeds")
        + latent.curve_rows([0, 0.1], [0.9, 0.2], model="cross-entropy", study="depth")
    )
    assert len(figures.curves_figure(curves, "t").axes[0].lines) == 2
    masking = pd.DataFrame(latent.curve_rows([0.1], [0.3], model="cross-entropy", attack="PGD (margin)"))
    assert len(figures.robustness_figure(curves, masking).axes) == 2
    studies_curves = pd.DataFrame(
        [
            row
            for study, _ in figures.STUDIES
            for row in latent.curve_rows([0, 0.1], [0.9, 0.4], study=study, model="m 0")
        ]
    )
    assert [len(ax.lines) for ax in figures.studies_figure(studies_curves, 0).axes] == [1, 1, 1, 1]
    assert len(figures.loss_figure([3.0, 2.0, 1.0], 100).axes[0].lines) == 1
    matplotlib.pyplot.close("all")
