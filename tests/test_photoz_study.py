"""The photo-z chapter's study code: parameter rules, samples, training recipe, scoring, attacks and tables."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import experiment
from helpers.core import data, evaluate, models
from helpers.papers.photoz import galaxies, metrics, study, tables, threats

ROOT = Path(__file__).resolve().parents[1]


def notebook_defaults() -> dict:
    """The values of the chapter's parameters cell, as papermill would see them without injection."""
    src = (ROOT / "notebooks" / "01_photoz.py").read_text()
    cell = re.search(r'# %% tags=\["parameters"\]\n(.*?)\n# %%', src, flags=re.S).group(1)
    values: dict = {}
    exec(cell, {}, values)  # noqa: S102 -- the repository's own parameters cell
    return values


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    return tmp_path


# ---- parameters ------------------------------------------------------------------------------------------------


def test_every_parameter_of_the_notebook_has_a_rule_and_every_profile_passes(tmp_results):
    defaults = notebook_defaults()
    assert set(defaults) - {"profile", "seed", "device"} == set(study.PARAMETERS)
    for profile in ("medium", "small", "full"):
        overrides = yaml.safe_load((ROOT / "params" / profile / "01_photoz.yaml").read_text()) or {}
        assert set(overrides) <= set(study.PARAMETERS), profile
        run = experiment.start(
            "99_photoz_test",
            "t",
            {**defaults, **overrides, "profile": profile, "device": "cpu"},
            study.PARAMETERS,
            check=study.check_parameters,
        )
        assert run.params["stamp"] % 8 == 0 and list(run.params)[3:] == list(study.PARAMETERS)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("stamp", 20, "stamp must be a multiple of 8"),
        ("stamp", 4, "stamp must be an integer in [8, ∞)"),
        ("fractions", [0.1, 1.5], "fractions[1] must be in [0, 1]"),
        ("table3", 1, "table3 must be True or False"),
        ("eps", 0.0, "eps must be in (0, ∞)"),
        ("seed", [0, 1], "seed must be an integer"),
        ("n_train", 50, "n_train must be an integer in [100, ∞)"),
    ],
)
def test_a_bad_parameter_is_named_before_any_compute(tmp_results, name, value, needle):
    with pytest.raises(ValueError) as err:
        experiment.start(
            "99_photoz_test",
            "t",
            {**notebook_defaults(), "device": "cpu", name: value},
            study.PARAMETERS,
            check=study.check_parameters,
        )
    assert needle in str(err.value)


# ---- samples and training --------------------------------------------------------------------------------------


def fake_samples(n_train: int = 100, n_val: int = 20, n_test: int = 30, stamp: int = 8) -> study.Samples:
    """Samples with random 'galaxies' (no GalSim): z uniform on [0, 0.4), fluxes at the sky-noise scale."""
    g = torch.Generator().manual_seed(0)

    def sample(n: int) -> galaxies.Galaxies:
        z = 0.4 * torch.rand(n, generator=g)
        images = 0.05 * torch.randn(n, 5, stamp, stamp, generator=g) + z.view(-1, 1, 1, 1)
        return galaxies.Galaxies(images, 0.05 * torch.rand(n, generator=g), z, {"index": torch.arange(n)})

    n_pool = n_train + n_train // 2
    sim = galaxies.SimConfig(n=n_pool + n_val, stamp=stamp)
    return study.Samples(sim, sample(n_pool + n_val), sample(n_test), n_train, n_pool)


def test_training_subsets_iref_first_twins_seeded_never_the_validation_galaxies():
    s = fake_samples()
    assert len(s.val_data) == 20 and torch.equal(s.val_data.x, s.pool.images[150:])
    assert torch.equal(s.test_data.x, s.test.images) and torch.equal(s.z_test, s.test.z)
    iref = s.training_subset(0, seed=3)
    assert torch.equal(iref.x, s.pool.images[:100])
    twin1, twin1_again, twin2 = s.training_subset(1, 3), s.training_subset(1, 3), s.training_subset(2, 3)
    assert torch.equal(twin1.x, twin1_again.x) and not torch.equal(twin1.x, twin2.x)
    for twin in (twin1, twin2):
        rows = [int(torch.nonzero((s.pool.images == x).all(dim=(1, 2, 3)))[0]) for x in twin.x]
        assert len(set(rows)) == 100 and rows == sorted(rows) and max(rows) < 150  # distinct, ordered, no val


HP = {
    "seed": 1,
    "n_train": 100,
    "width": 0.05,
    "stamp": 8,
    "epochs": 1,
    "batch_size": 32,
    "lr": 0.002,
    "adam_eps": 1e-6,
    "plateau_patience": 2,
    "eps": 0.01,
}


def test_recipe_config_names_what_changes_the_weights():
    recipe = study.Recipe(fake_samples(), HP, torch.device("cpu"))
    base = recipe.config()
    assert base["seed"] == 1 and base["sim"] == recipe.samples.sim.key() and base["arch"] == "inception"
    variants = [recipe.config(k=1), recipe.config(arch="cnn"), recipe.config(attack="fgsm", fraction=0.1)]
    assert all(v != base for v in variants)
    assert study.Recipe(fake_samples(), {**HP, "lr": 0.01}, torch.device("cpu")).config() != base
    tag, config, _ = recipe.job("FGSM f_a=0.05", attack="fgsm", fraction=0.05)
    assert tag == "fgsm-f_a-0.05" and config == recipe.config(attack="fgsm", fraction=0.05)
    assert re.fullmatch(r"[a-z0-9._-]+", recipe.job("I(fc0 = 2000)", arch="inception_fc2000")[0])


def test_training_is_reproducible_resumable_and_built_by_the_registry(tmp_path):
    recipe = study.Recipe(fake_samples(), HP, torch.device("cpu"))
    a = recipe.train(None, "a")
    b = recipe.train(None, "b")
    twin = recipe.train(None, "twin", k=1)
    flat = lambda m: torch.cat([p.detach().flatten() for p in m.parameters()])  # noqa: E731
    assert torch.equal(flat(a), flat(b)) and not torch.equal(flat(a), flat(twin))
    assert not a.training and a.arch_config["name"] == "photoz"
    assert torch.allclose(a.scale.scale.flatten(), torch.tensor(recipe.samples.sim.sky_sigma))  # fluxes / sky noise
    ckpt = tmp_path / "net.pt"
    trained = recipe.train(ckpt, "c", attack="fgsm", fraction=0.5)
    torch.manual_seed(123)  # a finished checkpoint is loaded, whatever the global RNG
    loaded = recipe.train(ckpt, "c", attack="fgsm", fraction=0.5)
    assert torch.equal(flat(trained), flat(loaded)) and not torch.equal(flat(trained), flat(a))


# ---- scoring ---------------------------------------------------------------------------------------------------


class OneBin(torch.nn.Module):
    """Puts all the PDF's mass in bin ``round(180 * ebv)``: zphot is that bin's centre."""

    def forward(self, images: torch.Tensor, ebv: torch.Tensor) -> torch.Tensor:
        logits = torch.full((len(ebv), 180), -1e4, device=images.device)
        logits[torch.arange(len(ebv)), (180 * ebv).round().long()] = 0.0
        return logits + 0 * images.sum()


def test_scorer_gives_each_galaxy_its_pdf_mean_in_order_across_batches():
    n = 1100  # three evaluation batches of 500
    bins = torch.randint(0, 72, (n,), generator=torch.Generator().manual_seed(0))
    ebv, zspec = bins / 180.0, (bins + 0.5) / 180.0
    galaxies_in = data.TensorData(torch.zeros(n, 5, 8, 8), bins, tuple(map(str, range(180))), (ebv,))
    scorer = metrics.Scorer(zspec, "cpu")
    assert torch.allclose(scorer.zphot(OneBin(), galaxies_in), zspec.double(), atol=1e-6)
    scores = scorer.scores(OneBin(), galaxies_in)
    assert abs(scores["bias"]) < 1e-6 and scores["sigma_mad"] < 1e-6 and scores["eta"] == 0.0
    shifted = metrics.Scorer(zspec - 0.1, "cpu")  # every galaxy 0.1 too high: all outliers
    dz = shifted.delta_z(OneBin(), galaxies_in)
    assert isinstance(dz, np.ndarray) and dz.shape == (n,) and np.all(dz > metrics.OUTLIER_DZ)
    assert shifted.scores(OneBin(), galaxies_in)["eta"] == 1.0


@pytest.mark.parametrize("n", [599, 600])  # odd and even counts: the usual median either way
def test_smad_agrees_with_photoz_metrics(n):
    g = torch.Generator().manual_seed(n)
    zspec = 0.4 * torch.rand(n, generator=g, dtype=torch.float64)
    zphot = zspec + 0.03 * torch.randn(n, generator=g, dtype=torch.float64) ** 3
    dz = metrics.delta_z(zphot, zspec).numpy()
    assert metrics.smad(dz) == pytest.approx(metrics.photoz_metrics(zphot, zspec)["sigma_mad"], rel=1e-12)
    assert metrics.smad(dz + 0.3) == pytest.approx(metrics.smad(dz), rel=1e-9)  # a bias does not widen it


def test_smad_ratios_scale_with_the_scatter():
    dz = np.random.default_rng(0).normal(0, 0.02, 501)
    assert metrics.smad_ratio(3 * dz, dz) == pytest.approx(3.0)
    pairs = (dz, 2 * dz, dz, 5 * dz, 2 * dz, 3 * dz)  # (clean, attacked) x 3 models: x2, x5, x1.5
    assert metrics.smad_ratio_min(*pairs) == pytest.approx(1.5)
    assert metrics.smad_ratio_max(*pairs) == pytest.approx(5.0)
    assert metrics.smad_worst_over(dz, 0.5 * dz, 4 * dz, 2 * dz) == pytest.approx(4.0)


# ---- attacks ---------------------------------------------------------------------------------------------------


def test_l2_radius_is_the_equal_volume_radius_for_large_n():
    for n in (576, 4096):
        exact = 2 * 0.01 * math.exp(math.lgamma(n / 2 + 1) / n) / math.sqrt(math.pi)
        assert threats.l2_radius(0.01, n) == pytest.approx(exact, rel=0.01) and threats.l2_radius(0.01, n) < exact


def test_table1_attacks_stay_within_their_budgets_on_the_images_only():
    torch.manual_seed(0)
    model = models.create("photoz", arch="cnn", width=0.05, image_size=8).eval()
    x = 0.05 * torch.randn(6, 5, 8, 8)
    ebv = 0.1 * torch.rand(6)
    test = data.TensorData(x, torch.randint(0, 180, (6,)), tuple(map(str, range(180))), (ebv.clone(),))
    l2_eps = threats.l2_radius(0.01, 64)
    atk = threats.table1_attacks(0.01, 0.1, 3, l2_eps, 0.01, 5, seed=0)
    labels = threats.labels(0.01, 0.1, 3)
    assert list(atk) == [labels[r] for r in threats.ROLES[1:]] and len(set(labels.values())) == len(threats.ROLES)
    budgets = {"noise": 0.01, "noise_large": 0.1, "fgsm": 0.01, "pgd": 0.01, "pgd2": 0.01}
    for role, budget in budgets.items():
        adv = evaluate.perturb(model, test, atk[labels[role]])
        assert float((adv.x - x).abs().max()) <= budget + 1e-6 and torch.equal(adv.extra[0], ebv)
    adv = evaluate.perturb(model, test, atk[labels["pgdl2"]])
    assert float((adv.x - x).flatten(1).norm(dim=1).max()) <= l2_eps + 1e-5 and float(adv.x.min()) < 0  # unclipped


def test_the_noise_rows_depend_only_on_the_seed():
    x = torch.zeros(4, 5, 8, 8)
    labels = threats.labels(0.01, 0.1, 3)
    draws = []
    for _ in range(2):  # the same seed and order of application give the same draws
        atk = threats.table1_attacks(0.01, 0.1, 3, 0.1, 0.01, 5, seed=7)
        draws.append([atk[labels[r]](None, x, None) for r in ("noise", "noise_large")])
    assert all(torch.equal(a, b) for a, b in zip(*draws, strict=True))
    assert not torch.allclose(draws[0][0] * 10, draws[0][1])  # the second row continues the generator
    assert float(draws[0][0].abs().max()) <= 0.01 and float(draws[0][1].abs().max()) > 0.05


# ---- tables ----------------------------------------------------------------------------------------------------


def score(s: float, eta: float, bias: float = 0.0) -> dict[str, float]:
    return {"bias": bias, "sigma_mad": s, "eta": eta}


def test_table1_puts_the_documents_values_beside_ours():
    labels = threats.labels(0.01, 0.1, 10)
    rows = [
        {"model": "Iref", "images": labels[r], **score(0.01 * (k + 1), 0.1, -0.001)}
        for k, r in enumerate(threats.ROLES)
    ]
    t = tables.table1(pd.DataFrame(rows), labels)
    assert list(t.columns) == [
        "model",
        "images",
        "bias (1e-4)",
        "σ_MAD (1e-3)",
        "η (%)",
        "σ_MAD, document",
        "η, document",
    ]
    assert t["σ_MAD (1e-3)"].tolist() == [10.0 * (k + 1) for k in range(7)] and t["bias (1e-4)"].iloc[0] == -10.0
    by_label = t.set_index("images")
    assert by_label.at["FGSM", "σ_MAD, document"] == "66" and by_label.at["PGD 10 it.", "η, document"] == "59"


def test_transfer_rows_the_twins_as_a_range_and_the_cnn_for_fgsm_only():
    labels = threats.labels(0.01, 0.1, 10)
    assert tables.paper_transfer("CNN", "Iref's FGSM", labels) == ("76", "49")
    assert tables.paper_transfer("CNN", "Iref's PGD 10 it.", labels) == tables.NONE
    assert tables.paper_transfer("I1", "Iref's PGD 10 it.", labels) == ("76–78", "52–55")
    assert tables.paper_transfer("I1", "non perturbed", labels) == tables.NONE
    frame = pd.DataFrame([{"model": "CNN", "images": "Iref's FGSM", **score(0.05, 0.4)}])
    t = tables.transfer(frame, labels)
    assert "bias" not in t.columns and t.iloc[0].tolist() == ["CNN", "Iref's FGSM", 50.0, 40.0, "76", "49"]


def test_tables_2_and_3_format_clean_and_attacked_side_by_side():
    t2 = tables.table2([{"f_a": 0.05, "clean": score(0.011, 0.01, 0.002), "FGSM": score(0.009, 0.04, -0.004)}])
    assert t2.iloc[0].tolist() == ["5%", "20/-40", "11.0/9.0", "1.0/4.0", "−20/−40", "11/9", "1/4"]
    t3 = tables.table3(
        [{"model": "Iref", "clean": score(0.011, 0.01), "FGSM": score(0.066, 0.42), "PGD": score(0.082, 0.59)}]
    )
    assert t3.iloc[0].tolist() == ["Iref", "11.0/66.0/82.0", "1.0/42.0/59.0", "11/66/82", "1/42/59"]
    pgd = tables.fgsm_trained_under_pgd(0.2, score(0.0111, 0.01), score(0.0822, 0.5), 10)
    assert pgd.index.tolist() == ["f_a=20% model, clean", "f_a=20% model, its own PGD 10 it."]
    assert pgd["σ_MAD (1e-3)"].tolist() == pytest.approx([11.1, 82.2])
