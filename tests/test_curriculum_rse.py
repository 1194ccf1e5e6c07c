"""Chapter 2 (curriculum adversarial training, capacity, PNI/RSE, NES): the document's models and their sizes,
the curriculum schedule, the randomized defences and EOT, the NES estimator and attack, the battery and the
effective rank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from helpers import experiment
from helpers.core import attacks, data, evaluate, models, suite
from helpers.core import params as P
from helpers.core.models import cifar_nets, noise
from helpers.core.models.convvit import ConvViT
from helpers.core.models.wrn import WideResNet
from helpers.papers import curriculum as C


# ---------------------------------------------------------------- architectures and parameter counts
def test_document_models_parameter_counts():
    assert models.count_parameters(C.build("net", width=6)) == 62_006  # the PyTorch tutorial's CIFAR-10 Net
    big = C.build("bignet", width=12)
    assert models.count_parameters(big) == 244_962  # every layer twice as wide: 2 x 2 = about 4x the weights
    widths = [m.out_channels for m in big.modules() if isinstance(m, nn.Conv2d)]
    widths += [m.out_features for m in big.modules() if isinstance(m, nn.Linear)][:-1]
    assert widths == [12, 32, 240, 168]  # Net's 6, 16, 120, 84 doubled
    wrn = WideResNet(16, 160)
    assert models.count_parameters(wrn) == 17_116_634  # Zagoruyko & Komodakis: WRN-16-10, 17.2M
    three = [m for m in wrn.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(three) == 13  # the document: "13 convolution layers and a width factor of 10"


def test_basicnet_defaults_keep_their_layout_and_options_work():
    default = cifar_nets.BasicNet()
    keys = [k for k in default.state_dict() if k.endswith("weight")]
    assert keys == ["net.1.weight", "net.4.weight", "net.8.weight", "net.10.weight", "net.12.weight"]  # as before
    x = torch.rand(4, 3, 32, 32)
    gelu = cifar_nets.BasicNet(activation="gelu", dropout=0.5).train()
    assert any(isinstance(m, nn.GELU) for m in gelu.modules()) and gelu(x).shape == (4, 10)
    assert not torch.equal(gelu(x), gelu(x))  # dropout is on in training
    gelu.eval()
    assert torch.equal(gelu(x), gelu(x))  # ... and off at prediction
    with pytest.raises(ValueError, match="^activation"):
        cifar_nets.BasicNet(activation="tanh")
    with pytest.raises(ValueError, match="^dropout"):
        cifar_nets.BasicNet(dropout=1.5)


def test_convvit_and_wrn_shapes_and_sizes():
    x = torch.rand(3, 3, 32, 32)
    small, large = ConvViT(1, 32), ConvViT(2, 64)
    assert small(x).shape == (3, 10) and large(x).shape == (3, 10)
    assert models.count_parameters(large) > 2 * models.count_parameters(small)
    assert sum(isinstance(m, nn.Conv2d) for m in small.modules()) == 2  # the convolutional tokenizer
    assert any(isinstance(m, nn.ReLU) for m in ConvViT(1, 32, activation="relu").modules())
    with pytest.raises(ValueError, match="^dim"):
        ConvViT(1, 30, heads=4)
    assert WideResNet(10, 8)(x).shape == (3, 10)
    with pytest.raises(ValueError, match="^depth"):
        WideResNet(12, 8)
    with pytest.raises(ValueError, match="^arch"):
        C.build("resnet", width=4)


# ---------------------------------------------------------------- the curriculum
@pytest.mark.parametrize("t,eps,iters", [(0.0, 0.01, 10), (0.5, 0.055, 25), (1.0, 0.1, 40)])
def test_curriculum_schedule_gives_the_documents_values(t, eps, iters):
    e, n = C.schedule(t)
    assert e == pytest.approx(eps) and n == iters


def test_scaled_schedule_keeps_its_shape():
    ts = [i / 10 for i in range(11)]
    full = [C.schedule(t)[1] for t in ts]
    scaled = [C.schedule(t, iter_scale=0.1)[1] for t in ts]
    assert full == sorted(full) and scaled == sorted(scaled) and min(scaled) >= 1
    assert [C.schedule(t, iter_scale=0.1)[0] for t in ts] == [C.schedule(t)[0] for t in ts]
    assert scaled[-1] == 4 and full[-1] == 40
    with pytest.raises(ValueError, match="^t "):
        C.schedule(1.5)


def test_curriculum_adversary_follows_elapsed_epochs():
    torch.manual_seed(0)
    model = C.build("net", width=2).eval()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    adv = C.curriculum_adversary(2, fraction=1.0, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    first, _ = adv(model, x, y, progress=0.99 / 2, generator=g)  # still epoch 1: t = 0
    second, mask = adv(model, x, y, progress=0.5, generator=g)  # epoch 2: t = 1/2
    assert mask.all()
    assert (first - x).abs().max() <= 0.01 + 1e-6
    assert 0.01 + 1e-4 < (second - x).abs().max() <= 0.055 + 1e-6
    assert ((second >= 0) & (second <= 1)).all()


# ---------------------------------------------------------------- randomized defences and EOT
def test_pni_is_stochastic_at_eval_and_keeps_the_weights():
    torch.manual_seed(0)
    base = C.build("net", width=4).eval()
    x = torch.rand(5, 3, 32, 32)
    ref = base(x)
    pni = C.to_pni(base, alpha=0.25).eval()  # in place
    layers = [m for m in pni.modules() if isinstance(m, (noise.NoisyConv2d, noise.NoisyLinear))]
    assert len(layers) == 5 and noise.is_randomized(pni)
    assert len(noise.noise_scales(pni)) == 5  # one learnable alpha per conv and linear layer
    assert not torch.allclose(pni(x), pni(x))  # a new weight draw per pass, also in eval mode
    noise.set_noise(pni, False)
    assert torch.allclose(pni(x), ref, atol=1e-6)  # the weights were carried over


def test_rse_is_stochastic_at_eval_and_places_its_noise():
    torch.manual_seed(0)
    rse = C.build("wrn", width=4, depth=10, defense="rse", sigma_init=0.2, sigma_inner=0.1).eval()
    layers = [m for m in rse.modules() if isinstance(m, noise.GaussianNoise)]
    convs = [m for m in rse.modules() if isinstance(m, nn.Conv2d)]
    assert len(layers) == len(convs) and C.has_rse(rse)
    assert layers[0].sigma == 0.2 and all(n.sigma == 0.1 for n in layers[1:])
    assert not any(p.requires_grad for n in layers for p in n.parameters())  # not learned
    x = torch.rand(4, 3, 32, 32)
    assert not torch.allclose(rse(x), rse(x))
    assert not C.has_rse(C.build("net", width=2))


def test_ensemble_averages_passes():
    torch.manual_seed(0)
    det = C.build("net", width=2).eval()
    x = torch.rand(3, 3, 32, 32)
    assert torch.allclose(C.Ensemble(det, 4)(x), F.log_softmax(det(x), -1), atol=1e-5)
    rse = C.build("net", width=2, defense="rse").eval()
    torch.manual_seed(1)
    probs = torch.stack([rse(x).softmax(-1) for _ in range(3)]).mean(0)
    torch.manual_seed(1)
    assert torch.allclose(C.Ensemble(rse, 3)(x).exp(), probs, atol=1e-5)


def test_eot_gradient_is_the_mean_of_single_draw_gradients():
    torch.manual_seed(0)
    model = C.build("net", width=2, defense="rse", sigma_init=0.5, sigma_inner=0.3).eval()
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 2])
    torch.manual_seed(5)
    singles = [attacks.input_gradient(model, x, y) for _ in range(6)]
    torch.manual_seed(5)
    eot = attacks.input_gradient(model, x, y, eot_samples=6)
    assert torch.allclose(eot, torch.stack(singles).mean(0), atol=1e-6)
    assert not torch.allclose(singles[0], singles[1])  # the draws differ
    spread_single = torch.stack(singles).std(0).mean()
    eots = torch.stack([attacks.input_gradient(model, x, y, eot_samples=16) for _ in range(6)])
    assert eots.std(0).mean() < 0.5 * spread_single  # averaging over draws reduces the gradient's variance


# ---------------------------------------------------------------- NES
class _Smooth(nn.Module):
    """A smooth small classifier on (B, 3, 8, 8) inputs: one tanh hidden layer."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Counter(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.images = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.model(x)


def _true_prob_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    p = model(x).softmax(-1).gather(1, y[:, None]).sum()
    return torch.autograd.grad(p, x)[0]


def test_nes_estimate_agrees_with_the_true_gradient():
    torch.manual_seed(0)
    model = _Smooth().eval()
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    true = _true_prob_gradient(model, x, y).flatten(1)
    cos = {}
    for n in (20, 4000):
        est = attacks.nes_gradient(model, x, y, sigma=1e-3, n_samples=n, generator=torch.Generator().manual_seed(1))
        cos[n] = F.cosine_similarity(est.flatten(1), true, dim=1)
    assert (cos[4000] > 0.5).all(), cos[4000]
    assert cos[4000].mean() > cos[20].mean()


def test_nes_pgd_contract():
    torch.manual_seed(0)
    counted = _Counter(_Smooth()).eval()
    for p in counted.parameters():
        p.grad = None
    x, y = torch.rand(5, 3, 8, 8), torch.randint(0, 10, (5,))
    x_copy = x.clone()
    out = attacks.nes_pgd(counted, x, y, 0.05, 0.02, 250, n_samples=50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x_copy) and not out.requires_grad
    assert (out - x).abs().max() <= 0.05 + 1e-6 and out.min() >= 0 and out.max() <= 1
    assert counted.images == 5 * 250  # 5 iterations of 50 queries per image: exactly the budget
    assert not counted.training and all(p.grad is None for p in counted.parameters())
    counted.images = 0
    out = attacks.nes_pgd(counted, x, y, 0.05, 0.02, 120, n_samples=50)
    assert counted.images == 5 * 100  # never more than the budget L: floor(L / N) iterations
    assert torch.equal(attacks.nes_pgd(counted, x, y, 0.05, 0.02, 49, n_samples=50), x)
    assert torch.equal(attacks.nes_pgd(counted, x, y, 0.0, 0.02, 500, n_samples=50), x)
    with pytest.raises(ValueError, match="^n_samples"):
        attacks.nes_gradient(counted, x, y, n_samples=51)


def test_nes_lowers_the_true_class_probability():
    torch.manual_seed(0)
    model = _Smooth().eval()
    x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))
    with torch.no_grad():
        before = model(x).softmax(-1).gather(1, y[:, None])
        adv = attacks.nes_pgd(model, x, y, 0.1, 0.02, 1000, n_samples=100, generator=torch.Generator().manual_seed(0))
        after = model(adv).softmax(-1).gather(1, y[:, None])
    assert (after < before).float().mean() >= 0.9


# ---------------------------------------------------------------- battery, effective rank, other defences
def test_battery_shape_and_zero_radius_is_clean_accuracy():
    from helpers.core import data

    torch.manual_seed(0)
    model = C.build("net", width=2).eval()
    ds = data.TensorData(torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (40,)), ())
    loader = data.Loader(ds, 16)
    grid = evaluate.battery(model, loader, [0.0, 0.05], [0.01, 0.02], 2)
    assert grid.shape == (2, 2)
    clean = evaluate.accuracy(model, loader)
    assert (grid.loc[0.0] == clean).all() and (grid.loc[0.05] <= clean).all()
    assert C.aggregated_score(grid) == pytest.approx(100 * grid.to_numpy().sum())


def test_effective_rank_oracles():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(50, 50))
    assert C.effective_rank(q) == pytest.approx(50, rel=1e-6)  # all singular values equal
    rank_one = torch.randn(30, 1) @ torch.randn(1, 20)
    assert C.effective_rank(rank_one) == pytest.approx(1, abs=1e-3)
    low = torch.randn(200, 5) @ torch.randn(5, 40)
    assert 1 < C.effective_rank(low) <= 5 + 1e-6
    wide = torch.randn(20, 300)  # fewer points than dimensions: the N x N Gram matrix gives the same spectrum
    assert C.effective_rank(wide) == pytest.approx(C.effective_rank(wide.T.contiguous()), rel=1e-9)
    assert C.effective_rank(wide) <= 20


def test_low_rank_projection_is_a_projection():
    torch.manual_seed(0)
    x = torch.rand(100, 3, 32, 32)
    basis, mean = C.principal_directions(x, 20)
    assert torch.allclose(basis.T @ basis, torch.eye(20), atol=1e-4)
    xc = x.flatten(1) - mean
    top = torch.linalg.svd(xc, full_matrices=False).Vh[:20].T  # the oracle: an SVD of the centred data
    assert torch.allclose((basis.T @ top).abs().diagonal(), torch.ones(20), atol=1e-3)
    proj = C.LowRankInput(basis, mean)
    once = proj(x[:5])
    assert once.shape == (5, 3, 32, 32)
    assert torch.allclose(proj(once), once, atol=1e-4)  # idempotent
    model = C.build("net", width=2, defense="lowrank", basis=basis, mean=mean)
    assert model(x[:2]).shape == (2, 10)
    assert models.count_parameters(model) == models.count_parameters(C.build("net", width=2)) + 3072 * 20


def test_spectral_normalization_bounds_each_layer():
    torch.manual_seed(0)
    model = C.spectral_normalize(C.build("net", width=4)).train()
    for _ in range(20):  # power iterations run in training mode
        model(torch.rand(2, 3, 32, 32))
    for m in model.modules():
        if isinstance(m, nn.Linear):
            assert torch.linalg.matrix_norm(m.weight.detach(), ord=2) == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------- the chapter's parameters
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_curriculum_rse.py"


def _defaults(**over):
    from helpers.sweep.grid import notebook_parameters

    return {**notebook_parameters(NOTEBOOK), "profile": "small", "device": "cpu", **over}


@pytest.mark.parametrize("profile", ["medium", "small", "full"])
def test_every_profile_passes_the_chapters_rules(profile):
    path = NOTEBOOK.parents[1] / "params" / profile / "02_curriculum_rse.yaml"
    values = P.validate(_defaults(**(yaml.safe_load(path.read_text()) or {})), C.PARAMETERS)
    C.check_parameters(values)
    # one rule per parameter of the notebook, in the parameters cell's order (the run record keeps it)
    assert list(C.PARAMETERS) == [k for k in _defaults() if k not in ("profile", "seed", "device")]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"n_battery": 1001}, r"n_battery must be an integer in \[50, 1000\]"),
        ({"n_suite": 20}, r"n_suite must be an integer in \[50, "),
        ({"width_big": 6}, "width_big must exceed width_net=6"),
        ({"wrn_depth": 12}, "wrn_depth must be 6n"),
        ({"vit_small": [1, 30]}, "vit_small must be"),
        ({"vit_large": [1, 32, 2]}, "vit_large must be"),
        ({"nes_samples": 51}, "nes_samples must be even"),
        ({"nes_budgets": [50, 300]}, r"nes_budgets\[0\] must be an integer in \[100"),
        ({"battery_delta": [0.01, 0.0]}, r"battery_delta\[1\] must be in \(0"),
        ({"suite_budget": "huge"}, "suite_budget must be one of"),
        ({"device": "cuda:x"}, "device must be one of"),
    ],
)
def test_a_bad_parameter_is_named_before_any_compute(tmp_path, monkeypatch, overrides, needle):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=needle):
        experiment.start("02_curriculum_rse", "test", _defaults(**overrides), C.PARAMETERS, check=C.check_parameters)
    assert not (tmp_path / "cache").exists()  # nothing loaded, trained or saved


# ---------------------------------------------------------------- the chapter's study on tiny synthetic data
TINY = {
    "n_train": 200, "n_test": 60, "n_battery": 50, "n_fig4": 50, "n_suite": 50, "n_nes": 10, "batch_size": 20,
    "epochs": 2, "defense_epochs": 1, "wide_epochs": 1, "width_net": 2, "width_big": 3, "iter_scale": 0.1,
    "train_steps": 1, "battery_eps": [0.01, 0.1], "battery_delta": [0.005, 0.05], "battery_steps": 2,
    "eval_steps": 2, "eot_samples": 2, "fig4_eps": [0.01, 0.1], "rse_passes": 2, "suite_budget": "reduced",
    "sanity_steps": [1, 2], "square_queries": 2,
}  # fmt: skip


def _images(n: int, seed: int) -> data.TensorData:
    """CIFAR-shaped uint8 images whose brightness tells the class (a tiny net learns it in two epochs)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = (torch.rand(n, 3, 32, 32, generator=g) * 10 + 25 * y.view(-1, 1, 1, 1)).to(torch.uint8)
    return data.TensorData(x, y, tuple(map(str, range(10))))


def _study(root: Path, **over) -> C.Study:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HELPERS_RESULTS", str(root / "results"))
        run = experiment.start("02_curriculum_rse", "test", _defaults(**TINY, **over), C.PARAMETERS,
                               check=C.check_parameters)  # fmt: skip
    return C.Study(run, _images(200, 0), _images(60, 1))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A study on synthetic data, its cache in a temporary folder, and the natural Net trained there."""
    root = tmp_path_factory.mktemp("curriculum")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HELPERS_CACHE", str(root / "cache"))
        study = _study(root)
        net = study.train("net", "natural", opt="sgd", activation="relu")[0]
        yield root, study, net


def test_train_trains_once_per_configuration_and_a_new_run_loads_it(tiny, monkeypatch):
    root, study, net = tiny
    monkeypatch.setenv("HELPERS_CACHE", str(root / "cache"))
    again, history = study.train("net", "natural", opt="sgd", activation="relu")
    assert again is net and not net.training and len(history) == 2
    fixed = study.train("net", "fixed", opt="sgd", activation="relu")[0]
    assert fixed is not net and C.model_key(fixed) != C.model_key(net)
    names = sorted(p.name for p in (root / "cache" / "checkpoints").glob("*.pt"))
    assert [n.rsplit("-", 1)[0] for n in names] == [
        "02_curriculum_rse-net-fixed-sgd-relu-none-none", "02_curriculum_rse-net-natural-sgd-relu-none-none"
    ]  # fmt: skip
    loaded = _study(root).train("net", "natural", opt="sgd", activation="relu")[0]  # a fresh run: from the cache
    weights = zip(loaded.state_dict().values(), net.state_dict().values(), strict=True)
    assert loaded is not net and all(torch.equal(a, b) for a, b in weights)
    assert len(list((root / "cache" / "checkpoints").glob("*.pt"))) == 2
    with pytest.raises(ValueError, match="^scheme"):
        study.train("net", "madry")
    with pytest.raises(ValueError, match="^arch"):
        study.train("resnet", "natural")


def test_scores_are_computed_once_and_do_not_depend_on_what_was_scored_before(tiny, monkeypatch):
    root, study, net = tiny
    monkeypatch.setenv("HELPERS_CACHE", str(root / "cache"))
    noisy = study.with_test_noise(net)  # randomized: its scores draw noise from the global generator
    assert study.draws(noisy) == evaluate.MIN_DRAWS and study.draws(net) == 1
    first = study.natural_scores(noisy)
    assert study.natural_scores(noisy) is first and first.draws == evaluate.MIN_DRAWS
    grid = study.grid(noisy)
    other = _study(root)
    net2 = other.train("net", "natural", opt="sgd", activation="relu")[0]
    noisy2 = other.with_test_noise(net2)
    other.pgd_scores(noisy2, 0.05, 0.02)  # a different score first, then the global generator disturbed
    torch.rand(1000)
    pd.testing.assert_frame_equal(other.grid(noisy2), grid)
    assert torch.equal(other.natural_scores(noisy2).hits, first.hits)
    with pytest.raises(ValueError, match="study_key"):
        C.model_key(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="^loader"):
        study.pgd_scores(net, 0.03, 0.01, loader="train")


def test_summary_is_the_battery_and_the_suite(tiny, monkeypatch):
    root, study, net = tiny
    monkeypatch.setenv("HELPERS_CACHE", str(root / "cache"))
    grid, p = study.grid(net), study.p
    assert grid.shape == (2, 2) and list(grid.index) == p["battery_eps"] and list(grid.columns) == p["battery_delta"]
    s = study.summary(net, suite_too=True)
    assert s["natural"] == study.natural(net) > 0.2  # the tiny net learnt the classes' brightness
    assert s["battery"] == pytest.approx(grid.to_numpy().mean()) and s["score"] == pytest.approx(100 * grid.sum().sum())
    cells = [study.pgd_scores(net, p["train_eps"], d, loader="suite", steps=p["battery_steps"]).acc
             for d in p["battery_delta"]]  # fmt: skip
    assert s["cell"] == min(cells) and s["gap"] == pytest.approx(s["cell"] - s["suite"])
    assert s["suite"] == study.graded(net).robust_accuracy <= study.graded(net).clean.acc
    table = study.summaries({"a": net, "b": net}, suite_too=("a",))
    assert table.loc["a", "suite"] == s["suite"] and np.isnan(table.loc["b", "suite"])
    shown = study.scaled(table)
    assert shown.loc["a", "natural (%)"] == pytest.approx(round(100 * s["natural"], 1))
    assert f"robust (%), suite {study.suite_name}" in shown.columns


def test_tables_of_the_randomized_defences(tiny, monkeypatch):
    root, study, net = tiny
    monkeypatch.setenv("HELPERS_CACHE", str(root / "cache"))
    models = {
        "BigNet": study.train("bignet", "fixed", epochs=1)[0],
        "BigNet-PNI": study.train("bignet", "fixed", defense="pni", epochs=1)[0],
        "BigNet-RSE": study.train("bignet", "fixed", defense="rse", epochs=1)[0],
    }
    for m in models.values():  # stand-in grades in the run's score cache (the suite itself is tested elsewhere)
        pgd = study.pgd_scores(m, study.p["train_eps"], 0.01, loader="suite")
        stand_in = suite.Grade(suite.Suite.make(study.p["train_eps"]), pgd, {"pgd": pgd}, pgd)
        study.run.scored((C.model_key(m), "suite"), lambda g=stand_in: g)
    t2 = C.table2(study, models)
    assert all(t2.graded[k] is study.graded(m) for k, m in models.items())  # scored once, then reused
    assert set(t2.eot) == {"BigNet-PNI", "BigNet-RSE"} and list(t2.frame.index) == list(models)
    for k, m in models.items():
        suite_pgd = study.pgd_scores(m, study.p["train_eps"], study.p["train_delta"], loader="suite").acc
        assert t2.gap[k] == pytest.approx(suite_pgd - t2.graded[k].robust_accuracy)
    assert t2.frame.loc["BigNet", "natural, document (%)"] == 53.32
    numbers = C.report.randomness(study.p, t2, study.summaries({"a": net, "b": net}, suite_too=True))
    gain = numbers["rse_gain_eot"][0] / 100
    assert gain == pytest.approx(t2.eot["BigNet-RSE"].acc - t2.doc["BigNet"].acc)
    assert numbers["drop_delta_suite"][0] == 0 and numbers["doc_reach"] == "2 × 0.008 = 0.016"
    assert "cannot even reach" in numbers["doc_reach_note"]  # 2 steps of 0.008 stay inside eps 0.03
    attacked = C.attacked_table(study, {"Net": net, "noisy": study.with_test_noise(net)})
    assert attacked.iloc[0, 2] is None and attacked.iloc[1, 2].draws == evaluate.MIN_DRAWS
    curves = C.radius_curves(study, {"Net": net, "RSE": models["BigNet-RSE"]}, eot_model="RSE")
    assert list(curves.columns) == ["Net", "RSE", "RSE, EOT-PGD"] and list(curves.index) == study.p["fig4_eps"]


def test_overstatement_records_every_model_with_the_documents_number(tiny, monkeypatch):
    root, study, net = tiny
    monkeypatch.setenv("HELPERS_CACHE", str(root / "cache"))
    fixed = study.train("net", "fixed", opt="sgd", activation="relu")[0]
    table, gaps = C.overstatement(study, {"natural": net, "fixed (Table 2)": fixed}, table2_names=["fixed (Table 2)"])
    assert [m["name"] for m in study.run.models] == ["natural", "fixed (Table 2)"] and set(study.sanity) == set(gaps)
    assert table.loc["natural", "document's attack"].startswith("battery's PGD-2")
    assert table.loc["fixed (Table 2)", "document's attack"] == f"Table 2's {study.doc_attack}"
    assert gaps["natural"] == pytest.approx(study.cell_scores(net).acc - study.graded(net).robust_accuracy)
    numbers = C.report.overstatement(study, gaps)
    assert numbers["n_graded"] == str(study.n_graded) and study.n_graded >= 2
    assert (root / "cache" / study.run.models[0]["checkpoint"]).exists()


def test_report_glue_keeps_values_and_formats():
    calls = []

    class FakeRun:
        def glue(self, name, value, fmt=None):
            calls.append((name, value, fmt))

    C.report.glue(FakeRun(), {"a": (0.5, "{:.1%}"), "b": "text"})
    assert calls == [("a", 0.5, "{:.1%}"), ("b", "text", None)]
    assert C.se_difference(100) == pytest.approx(0.0707, abs=1e-4)


def test_schedule_table_follows_the_schedule():
    table = C.schedule_table(5, 0.5)
    assert list(table.index) == [1, 2, 3, 4, 5] and table["t"].tolist() == [0, 0.2, 0.4, 0.6, 0.8]
    assert table["ε"].is_monotonic_increasing and table["ε"].iloc[-1] < 0.1  # the last epoch trains below 0.1
    assert table["iterations"].tolist() == [C.schedule(t, iter_scale=0.5)[1] for t in table["t"]]


def test_nes_attack_and_its_reference():
    torch.manual_seed(0)
    model = _Smooth().eval()
    x, y = torch.rand(12, 3, 8, 8), torch.randint(0, 10, (12,))
    kw = {"budgets": [100, 400], "eps": 0.1, "delta": 0.02, "n_samples": 50, "sigma": 1e-3, "seed": 0}
    result = C.nes_attack(model, x, y, **kw)
    assert result.pgd_iters == 8 and set(result.hits) == {100, 400} and result.hits[100].shape == (12,)
    assert result.acc[400] <= result.natural and result.pgd_level <= result.natural
    assert torch.equal(C.nes_attack(model, x, y, **kw).hits[400], result.hits[400])  # seeded directions
    assert list(result.table().index) == ["L=100", "L=400", "PGD"]
    numbers = C.report.nes({"nes_budgets": [100, 400], "nes_samples": 50, "nes_sigma": 1e-3, "nes_eps": 0.1,
                            "nes_delta": 0.02, "n_nes": 12}, result)  # fmt: skip
    assert numbers["nes_hi"] == (result.acc[400], "{:.1%}") and numbers["nes_L_lo"] == "100"


def test_figures_draw_what_they_are_given():
    import matplotlib.pyplot as plt

    grid = pd.DataFrame([[0.5, 0.4], [0.2, 0.1]], index=[0.01, 0.1], columns=[0.005, 0.05])
    fig = C.figures.battery_heatmap(grid, 0.6, 3)
    assert len(fig.axes[0].texts) == 4 and fig.axes[0].texts[0].get_text() == "50.0"
    fig = C.figures.capacity({"a": grid, "b": grid, "c": grid}, [0.01, 0.1], [0.005, 0.05])
    assert len(fig.axes) == 2 and all(len(ax.lines) == 3 for ax in fig.axes)
    table = pd.DataFrame({"natural": [0.9, 0.8], "battery": [0.2, 0.5], "suite": [0.0, 0.3]}, index=["n", "a"])
    assert len(C.figures.trade_off(table, 0.03).axes[0].collections) == 4  # two markers per model
    plt.close("all")
