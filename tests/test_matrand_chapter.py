"""Chapter 3's scaffold pieces in helpers.papers.matrand: the parameter rules, the EOT-FGSM of the chapter's
attacks, the train-or-load trainer, and the numbers and texts computed from its tables."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import experiment
from helpers.core import attacks, data, models
from helpers.core.evaluate import Scores
from helpers.core.models import noise
from helpers.papers import matrand

ROOT = Path(__file__).resolve().parents[1]


def notebook_defaults() -> dict:
    """The parameters cell of the chapter, executed: its default values."""
    src = (ROOT / "notebooks" / "03_matrand_wrn.py").read_text(encoding="utf-8")
    cell = re.search(r'^# %% tags=\["parameters"\]\n(.*?)^# %%', src, flags=re.M | re.S).group(1)
    ns: dict = {}
    exec(cell, ns)
    return {k: v for k, v in ns.items() if not k.startswith("__")}


@pytest.fixture
def tmp_run_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    return tmp_path


def start(**overrides):
    ns = {**notebook_defaults(), "profile": "small", "device": "cpu", **overrides}
    return experiment.start("03_matrand_wrn", "test", ns, matrand.PARAMETERS, check=matrand.check_parameters)


# ---------------------------------------------------------------- parameters
def test_the_rules_cover_every_parameter_of_the_notebook_and_every_profile_applies(tmp_run_dirs):
    defaults = notebook_defaults()
    assert set(defaults) == set(matrand.PARAMETERS) | {"profile", "seed", "device"}
    assert list(defaults)[3:] == list(matrand.PARAMETERS)  # the rules in the cell's order
    for profile in ("medium", "small", "full"):
        import yaml

        values = yaml.safe_load((ROOT / "params" / profile / "03_matrand_wrn.yaml").read_text()) or {}
        assert set(values) <= set(matrand.PARAMETERS), profile
        checked = {**defaults, **values, "profile": profile}
        matrand.check_parameters({k: checked[k] for k in matrand.PARAMETERS})


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"eps": 0.0}, "eps must be in (0, 1]"),
        ({"eot_samples": 1}, "eot_samples must be an integer in [2, ∞)"),
        ({"mat_max": 1}, "mat_max must be True or False"),
        ({"basic_milestones": [0.5, 1.0]}, "basic_milestones[1] must be in (0, 1)"),
        ({"overfit_model": "resnet50"}, "overfit_model must be one of"),
        ({"n_suite": 2000}, "n_suite must be an integer in [20, 1000]"),
        ({"n_test_curve": 1001}, "n_test_curve must be an integer in [50, 1000]"),
        ({"eps_sweep": [0.0, 0.03, 0.02]}, "eps_sweep must hold eps=0.03 and radii on both sides"),
        ({"eps_sweep": [0.0, 0.01, 0.06]}, "eps_sweep must hold eps=0.03"),
        ({"wider_width": 8}, "wider_width must exceed wrn_width=8"),
        ({"overfit_n_train": 3601}, "overfit_n_train must be at most the training split, 3600"),
        ({"device": "cuda:x"}, "device must be one of"),
    ],
)
def test_a_bad_parameter_is_named_before_any_compute(tmp_run_dirs, overrides, needle):
    with pytest.raises(ValueError) as err:
        start(**overrides)
    assert needle in str(err.value)


def test_valid_parameters_start_a_seeded_run_on_the_asked_device(tmp_run_dirs):
    run = start(seed=3)
    assert run.dev == torch.device("cpu") and run.seed == 3 and run.params["eps_sweep"][2] == 0.03


# ---------------------------------------------------------------- the chapter's attacks
def test_eval_threat_steps_are_two_and_a_half_radii_over_the_steps():
    t = matrand.Threat.evaluation(0.03, 0.5, 5)
    assert t.alpha_linf == 2.5 * 0.03 / 5 and t.alpha_l2 == 2.5 * 0.5 / 5 and t.steps == 5 and t.random_start


def test_eot_fgsm_averages_the_same_noise_draws_as_the_gradient_it_replaces():
    """The chapter's FGSM with EOT is core FGSM with ``eot_samples``: the sign of the mean of the same draws'
    gradients as ``input_gradient`` (the hand-written EOT-FGSM it replaces), bit for bit."""
    torch.manual_seed(0)
    net = noise.with_input_noise(models.build("basicnet", "cifar10", 2), 0.1).eval()
    x, y = torch.rand(5, 3, 32, 32), torch.arange(5)
    fgsm = matrand.attacks_for(matrand.Threat(0.03, 0.01, 0.5, 0.2, 2), eot_samples=4)["fgsm"]
    torch.manual_seed(7)
    ours = fgsm(net, x, y)
    torch.manual_seed(7)
    by_hand = (x + 0.03 * attacks.input_gradient(net, x, y, eot_samples=4).sign()).clamp(0, 1)
    assert torch.equal(ours, by_hand)
    torch.manual_seed(8)
    assert not torch.equal(fgsm(net, x, y), ours)  # other draws, another gradient: the draws are really used


def test_the_chapter_attacks_honour_clip():
    torch.manual_seed(0)
    net = models.build("basicnet", "cifar10", 2).eval()
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    threat = matrand.Threat(0.2, 0.1, 2.0, 1.0, 2)
    for eot in (1, 2):
        for name, atk in matrand.attacks_for(threat, eot_samples=eot, clip=(0.3, 0.7)).items():
            if atk is not None:
                adv = atk(net, x, y)
                assert float(adv.min()) >= 0.3 and float(adv.max()) <= 0.7, name
        free = matrand.attacks_for(threat, eot_samples=eot, clip=None)["fgsm"](net, x, y)
        step = (free - x).abs()
        assert bool(((step - 0.2).abs() < 1e-6).logical_or(step == 0).all())  # one signed step of 0.2 (or none)
        assert float(free.max()) > 1 or float(free.min()) < 0  # unclipped: [0, 1] is not imposed


# ---------------------------------------------------------------- train-or-load
def _toy_cifar(n: int, seed: int) -> data.TensorData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = (torch.rand(n, 3, 32, 32, generator=g) * 120 + 10 * y.view(-1, 1, 1, 1)).to(torch.uint8)
    return data.TensorData(x, y, tuple(str(c) for c in range(10)))


def _trainer(run):
    train = _toy_cifar(64, 0)
    val, curve = data.Loader(_toy_cifar(20, 1), 20), data.Loader(_toy_cifar(20, 2), 20)
    threat = matrand.Threat(0.03, 0.02, 0.5, 0.3, 1)
    atk = matrand.attacks_for(matrand.Threat.evaluation(0.03, 0.5, 1))["pgd_linf"]
    return matrand.Trainer(run, threat, train, val, curve, atk)


def test_trainer_trains_once_then_loads_the_same_weights(tmp_run_dirs):
    schedule = dict(n_epochs=2, lr0=0.05, drops=[0.5])
    run = start(n_train=400, batch_size=32)
    trainer = _trainer(run)
    model, history, best = trainer("basicnet", 2, "fgsm", **schedule)
    assert trainer("basicnet", 2, "fgsm", **schedule)[0] is model  # memoised in the run
    assert len(history) == 2 and history[1]["lr"] < history[0]["lr"] and best is None and not model.training
    ckpts = list((tmp_run_dirs / "cache" / "checkpoints").glob("03_matrand_wrn-basicnet-fgsm-*.pt"))
    assert len(ckpts) == 1
    again = _trainer(start(n_train=400, batch_size=32))("basicnet", 2, "fgsm", **schedule)
    for a, b in zip(model.state_dict().values(), again[0].state_dict().values(), strict=True):
        assert torch.equal(a, b)  # loaded from the checkpoint: nothing retrained
    assert again[1] == history


def test_trainer_configuration_names_what_changes_the_network(tmp_run_dirs):
    trainer = _trainer(start(n_train=400))
    base = dict(n_epochs=2, lr0=0.05, drops=[0.5])
    natural = [trainer.config("basicnet", 2, "natural", eps_train=e, **base) for e in (0.0, 0.03, 0.06)]
    assert natural[0] == natural[1] == natural[2]  # natural training has no radius: one model for Fig. 1's 0
    pgd = trainer.config("basicnet", 2, "pgd_linf", **base)
    assert pgd["threat"]["eps_linf"] == 0.03 and pgd["natural_fraction"] is None  # eps by default
    assert trainer.config("basicnet", 2, "pgd_linf", eps_train=0.06, **base)["threat"]["alpha_linf"] == 0.04
    assert trainer.config("basicnet", 2, "recipe", **base)["natural_fraction"] == 0.05
    selected = trainer.config("basicnet", 2, "pgd_linf", early_stop=True, curve=True, **base)
    assert selected["val"] == [3] and selected["curve"] == [500, 3]


def test_early_stopping_returns_the_selected_epoch_and_the_last_one_apart(tmp_run_dirs):
    trainer = _trainer(start(n_train=400))
    model, history, best = trainer("basicnet", 2, "pgd_linf", n_epochs=3, lr0=0.05, drops=[0.5], early_stop=True,
                                   curve=True)  # fmt: skip
    assert {"val_robust_acc", "test_robust_acc"} <= set(history[0]) and 1 <= best["epoch"] <= 3
    assert best["metric"] == max(r["val_robust_acc"] for r in history)
    last = trainer.last_epoch("basicnet", 2, best)
    state = torch.load(best["checkpoint"], weights_only=True)
    assert all(torch.equal(v, state["model"][k]) for k, v in last.state_dict().items())
    assert all(torch.equal(v, state["best"]["model"][k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- numbers from the tables
def test_radii_around_pick_the_nearest_under_and_the_mirror_above():
    assert matrand.radii_around(0.03, [0.0, 0.015, 0.03, 0.045]) == (0.015, 0.045)
    assert matrand.radii_around(0.03, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06]) == (0.02, 0.04)
    assert matrand.radii_around(0.03, [0.0, 0.02, 0.03, 0.1]) == (0.02, 0.1)


def test_rate_drops_and_the_claim_statistics():
    hist = [{"epoch": e, "lr": lr} for e, lr in enumerate([0.1, 0.1, 0.01, 0.01, 0.001], start=1)]
    assert matrand.rate_drops(hist) == [3, 5]
    base, better, worse = np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([0.0, 0.0])
    assert matrand.pair_min(base, better, base, worse) == pytest.approx(-50.0)
    assert matrand.pair_mean(base, better, base, worse) == pytest.approx(0.0)
    assert matrand.best_of_rest(better, base, worse) == pytest.approx(50.0)


def _grader():
    x = (torch.rand(40, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    ds = data.TensorData(x, torch.arange(40) % 10, tuple(str(c) for c in range(10)))
    return matrand.Grader(matrand.Threat.evaluation(0.03, 0.5, 2), ds, 20, budget="reduced", eot_samples=2)


def test_side_by_side_puts_the_document_next_to_ours_and_leaves_its_gaps_empty():
    g = _grader()
    rows = list(g.labels().values())
    acc = pd.DataFrame({"a": np.linspace(0.1, 0.8, len(rows)), "b": 0.5}, index=rows)
    table = g.side_by_side(acc, acc * 0, {"a": [40.7, 27.46, 28.86, 27.96]})
    assert list(table.columns) == [("ours", "a"), ("ours", "b"), ("document", "a"), ("document", "b")]
    assert table.loc[rows[1], ("document", "a")] == 27.46 and table.loc[rows[1], ("ours", "a")] == "20.0"
    assert (table[("document", "b")] == "").all() and table.loc[rows[4], ("document", "a")] == ""


def test_noise_gains_and_table4_numbers_read_the_right_cells():
    g = _grader()
    rows = list(g.labels(randomized=True).values())
    acc = pd.DataFrame(0.4, index=rows, columns=["N", "N with noise", "N with noise, EOT attacks"])
    acc.loc[rows[1], "N with noise"] = 0.5  # +10 points under l-inf PGD without EOT ...
    acc.loc[rows[1], "N with noise, EOT attacks"] = 0.42  # ... +2 with EOT
    gains = matrand.noise_gains(acc, g, ["N"])
    assert list(gains.index) == [("N", "l-inf"), ("N", "l2")]
    assert gains.iloc[0].tolist() == pytest.approx([0.1, 0.02, 0.0]) and gains.iloc[1].abs().max() == 0
    wide = acc.rename(columns=lambda c: c.replace("N", "wide ResNet"))
    numbers = matrand.table4_numbers(wide, wide * 0, gains, g)
    assert numbers["noise_gain"] == (pytest.approx(5.0), "{:+.1f}") and numbers["t4_noisy_clean"][0] == "40.0%"


def test_glue_hands_every_number_with_its_format_to_the_run():
    seen = []

    class Run:
        def glue(self, name, value, fmt=None):
            seen.append((name, value, fmt))

    numbers = {"a": (0.5, "{:.1%}"), "b": ("text", None)}
    assert matrand.glue(Run(), numbers) is numbers and seen == [("a", 0.5, "{:.1%}"), ("b", "text", None)]


def test_setup_numbers_state_the_standard_errors(tmp_run_dirs):
    p = start(n_test=400, n_suite=100, n_test_curve=300).params
    n = matrand.setup_numbers(p, n_train=4000, n_val=400, draws=10)
    assert n["se_pts"][0] == "2.5" and n["se_diff_pts"][0] == "3.5" and n["se_suite_pts"][0] == "5.0"
    assert n["n_train"][0] == "4,000" and n["sanity_steps"][0] == "5, 10, 40" and n["n_draws"][0] == "10"


def test_overfit_numbers_select_on_validation_and_read_the_test_curve_apart():
    hist = [{"epoch": e, "lr": 0.1 if e < 3 else 0.01, "train_acc": 0.1 * e, "test_robust_acc": t}
            for e, t in enumerate([0.2, 0.3, 0.35, 0.25, 0.2], start=1)]  # fmt: skip
    n = matrand.overfit_numbers(hist, {"epoch": 2})
    assert n["of_first_drop"][0] == "3" and n["of_sel_test"][0] == 0.3 and n["of_last_test"][0] == 0.2
    assert n["of_peak_epoch"][0] == "3" and n["of_peak_test"][0] == 0.35 and n["of_train_last"][0] == 0.5


def test_findings_state_both_measures():
    g = _grader()
    row = g.labels()
    t2 = pd.DataFrame({"l-inf PGD training": 0.3, "MAT-Rand": 0.4}, index=list(row.values()))
    assert g.n_test == 40
    text = matrand.findings.matrand(t2, g, "l2")
    assert text == "l2 suite: 40.0% vs 30.0%; the document's l2 PGD: 40.0% vs 30.0%"
    sizes = pd.DataFrame({"parameters (ours)": [10, 2000, 300]}, index=["ResNet20", "wide ResNet-18", "VGG11"])
    t3 = pd.DataFrame({"ResNet20": 0.2, "wide ResNet-18": 0.25, "VGG11": 0.3}, index=list(row.values()))
    assert "(2,000 vs 300 parameters)" in matrand.findings.capacity(t3, g, sizes, "VGG11")
    assert "l-inf PGD -5.0 pts" in matrand.findings.capacity(t3, g, sizes, "VGG11")
    scores = Scores(torch.ones(1, 40)), Scores(torch.zeros(1, 40))
    hist = [{"epoch": e, "lr": 0.1, "train_acc": 0.5, "test_robust_acc": 0.3} for e in (1, 2)]
    assert "100.0% vs last 0.0%" in matrand.findings.robust_overfitting(hist, {"epoch": 1}, scores, g, n_test_curve=9)


def test_parameter_counts_compare_our_widths_with_the_documents():
    nets = {k: nn.Linear(2, 2) for k in ("ResNet20", "wide ResNet-18", "VGG11")}
    sizes = matrand.parameter_counts(nets)
    assert sizes["parameters (ours)"].tolist() == [6, 6, 6]
    assert sizes["parameters (document's width)"].tolist() == [269_722, 11_173_962, 9_231_114]
