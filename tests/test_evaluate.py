"""The evaluation path: per-sample scores over noise draws, the strong suite, sanity checks, saved models.

The suite tests use one small MNIST network trained adversarially here (FGSM with a random start, a few
seconds), so "at least as strong as each member" and "reduced within 1 point of full" are checked on a model
that has robustness to lose, not on one every attack breaks.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from helpers.core import attacks, data, evaluate, models, suite, training
from helpers.core.models import noise
from helpers.papers import curriculum, regnet
from helpers.papers.photoz import model as photoz
from helpers.results import Run

EPS = 0.1


class NoisyLinear(nn.Module):
    """A randomized linear classifier: Gaussian noise on the logits at every pass (eval included)."""

    def __init__(self, d: int = 12, k: int = 10, sigma: float = 1.0) -> None:
        super().__init__()
        self.lin = nn.Linear(d, k)
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x.flatten(1))
        return z + self.sigma * torch.randn_like(z)


def _toy(n: int = 60, d: int = 12, k: int = 10) -> data.TensorData:
    g = torch.Generator().manual_seed(0)
    classes = tuple(str(c) for c in range(k))
    return data.TensorData(torch.rand(n, 1, 1, d, generator=g), torch.randint(0, k, (n,), generator=g), classes)


def test_scores_average_noise_draws():
    torch.manual_seed(0)
    model, ds = NoisyLinear(), _toy()
    s = evaluate.scores(model, data.Loader(ds, 16), draws=20)
    assert s.hits.shape == (20, 60) and s.draws == 20
    assert torch.allclose(s.correct, s.hits.mean(0)) and s.acc == pytest.approx(float(s.hits.mean()))
    assert s.spread > 0  # the draws disagree: one draw is not the model's accuracy
    assert ((s.correct > 0) & (s.correct < 1)).any()  # some images flip between draws
    model.sigma = 0.0
    det = evaluate.scores(model, data.Loader(ds, 16), draws=5)
    assert (det.hits == det.hits[:1]).all() and det.spread == 0.0


def test_minimum_keeps_each_sample_worst_attack():
    a = evaluate.Scores(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), "a")
    b = evaluate.Scores(torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 1.0]]), "b")
    m = a.minimum(b, attack="min")
    assert m.correct.tolist() == [0.5, 0.5, 0.0]
    assert m.hits.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    assert m.acc <= min(a.acc, b.acc)


@pytest.fixture(scope="module")
def robust_mnist():
    """SmallCNN (width 8) trained 2 epochs on 3,000 MNIST images with FGSM + random start at eps 0.1."""
    torch.manual_seed(0)
    train = data.load_subset("mnist", "train", 3000, seed=0)
    test = data.load_subset("mnist", "test", 100, seed=1)
    model = models.build("small_cnn", "mnist", width=8)

    def fgsm_rs(m, x, y):
        start = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
        return attacks.fgsm(m, start, y, 1.25 * EPS).sub(x).clamp(-EPS, EPS).add(x).clamp(0, 1)

    opt = torch.optim.Adam(model.parameters(), 2e-3)
    training.fit(model, data.Loader(train, 64, shuffle=True), optimizer=opt, epochs=2,
                 adversary=training.Adversary(fgsm_rs, 1.0), desc="fgsm-rs")  # fmt: skip
    return model.eval(), test


@pytest.fixture(scope="module")
def graded(robust_mnist):
    """The reduced suite's grade of the robust MNIST model (computed once for the tests below)."""
    model, test = robust_mnist
    return suite.grade(model, data.Loader(test, 100), suite.Suite.make(EPS, budget="reduced"))


def test_suite_at_least_as_strong_as_each_member(robust_mnist, graded):
    model, test = robust_mnist
    loader = data.Loader(test, 100)
    g, s = graded, graded.suite
    assert 0.2 < g.clean.acc and 0.0 < g.robust_accuracy < g.clean.acc  # a model with robustness to lose
    pgd = evaluate.scores(model, loader, suite._pgd(s, torch.Generator().manual_seed(s.seed))).acc
    apgd_ce = evaluate.scores(model, loader, lambda m, x, y: suite.apgd(m, x, y, s)).acc
    apgd_t = evaluate.scores(model, loader, lambda m, x, y: suite.apgd(m, x, y, s, targeted=True)).acc
    assert g.members["pgd"].acc == pytest.approx(pgd) and g.members["apgd-ce"].acc == pytest.approx(apgd_ce)
    for member in (pgd, apgd_ce, apgd_t):
        assert g.robust_accuracy <= member
    # the book's old weak setting (3 steps of eps/4: it cannot reach the radius) overstates robustness
    weak = evaluate.scores(model, loader, attacks.make_attack("pgd", EPS, alpha=EPS / 4, steps=3)).acc
    assert weak > g.robust_accuracy


def test_reduced_suite_within_one_point_of_full(robust_mnist, graded):
    model, test = robust_mnist
    full = suite.grade(model, data.Loader(test, 100), suite.Suite.make(EPS, budget="full")).robust_accuracy
    assert full <= graded.robust_accuracy + 1e-9 and graded.robust_accuracy <= full + 0.01


def test_sanity_checks_pass_on_an_honest_model(robust_mnist, graded):
    model, test = robust_mnist
    checks = suite.sanity_checks(model, data.Loader(test, 100), graded, square_queries=100)
    assert checks["large_eps"]["accuracy"] <= 0.01 and checks["large_eps"]["passed"]
    assert checks["more_steps"]["passed"] and len(checks["more_steps"]["accuracy_by_steps"]) == 3
    assert checks["black_box"]["passed"] and checks["black_box"]["survivors"] > 0


def test_sanity_check_flags_gradient_masking(robust_mnist):
    """A model whose gradient is zero (a hard quantisation in front) fools the white-box attacks, and the
    checks say so: accuracy does not fall at a large radius."""
    model, test = robust_mnist

    class Quantised(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(torch.round(x * 4) / 4)  # zero gradient almost everywhere

    masked = Quantised(model).eval()
    loader = data.Loader(test.subset(torch.arange(100)), 100)
    g = suite.grade(masked, loader, suite.Suite.make(EPS, budget="reduced"))
    checks = suite.sanity_checks(masked, loader, g, square_queries=100)
    assert not checks["large_eps"]["passed"]


def test_apgd_contract(robust_mnist):
    model, test = robust_mnist
    x, y = test.float()
    x, y = x[:32], y[:32]
    s = suite.Suite.make(EPS, budget="reduced")
    model.train()
    state = torch.get_rng_state()
    with attacks.eval_mode(model):
        adv = suite.apgd(model, x, y, s)
        adv_t = suite.apgd(model, x, y, s, targeted=True)
    assert model.training  # the caller's mode comes back
    assert torch.equal(torch.get_rng_state(), state)  # torchattacks' reseeding does not leak out
    for a in (adv, adv_t):
        assert a.shape == x.shape and (a - x).abs().max() <= EPS + 1e-6 and a.min() >= 0 and a.max() <= 1
    assert torch.equal(suite.apgd(model.eval(), x, y, suite.Suite.make(0.0)), x)


def test_suite_for_randomized_models_uses_eot_and_draws():
    with pytest.raises(ValueError, match="draws"):
        suite.Suite(0.03, eot_samples=10, draws=1)
    s = suite.Suite.make(0.03, budget="reduced", randomized=True)
    assert s.eot_samples >= 2 and s.draws >= evaluate.MIN_DRAWS and "EOT" in s.name
    torch.manual_seed(0)
    model, ds = NoisyLinear(sigma=0.5), _toy()
    x = ds.x.float()
    ds = data.TensorData(x.view(60, 1, 3, 4), ds.y, ds.classes)
    g = suite.grade(model, data.Loader(ds, 30), s)
    assert g.robust.hits.shape == (s.draws, 60) and g.clean.draws == s.draws


@pytest.mark.parametrize("bad", [{"eps": -0.1}, {"eps": 0.1, "norm": "l1"}, {"eps": 0.1, "pgd_steps": 0}])
def test_suite_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        suite.Suite(**bad)
    with pytest.raises(ValueError, match="budget"):
        suite.Suite.make(0.1, budget="huge")


ARCHS = [
    lambda: models.build("small_cnn", "mnist", width=4),
    lambda: models.build("resnet18", "cifar10", width=4),
    lambda: models.build("noisenet20", "cifar10", width=4),
    lambda: models.build("basicnet", "cifar10", width=4),
    lambda: models.build("vgg11", "cifar10", width=4),
    lambda: noise.with_input_noise(models.build("basicnet", "cifar10", width=4), 0.05),
    lambda: models.build_encoder("shakeshake26", "cifar10", 8, width=4),
    lambda: curriculum.build("net", width=6, defense="pni"),
    lambda: curriculum.build("bignet", width=12, defense="rse"),
    lambda: curriculum.build("wrn", width=4, depth=10),
    lambda: curriculum.build("vit", width=1, depth=1, dim=16),
    lambda: curriculum.build("net", width=6, defense="lowrank", basis=torch.randn(3072, 5), mean=torch.rand(3072)),
    lambda: regnet.mlp_encoder(6, 3),
    lambda: photoz.build("cnn", 0.05, 16, [1.0, 2.0, 3.0, 4.0, 5.0]),
    lambda: photoz.build("inception", 0.05, 16),
]


@pytest.mark.parametrize("make", ARCHS)
def test_load_round_trips_every_registered_architecture(make, tmp_path):
    torch.manual_seed(0)
    model = make()
    path = models.save(model, tmp_path / "m.pt")
    back = models.load(path)
    assert not back.training and back.arch_config == model.arch_config
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_registered_architecture_is_covered():
    names = {make().arch_config["name"] for make in ARCHS}
    assert names == set(models.registered())


def test_load_refuses_what_it_cannot_rebuild(tmp_path):
    with pytest.raises(ValueError, match="path"):
        models.load(tmp_path / "missing.pt")
    torch.save({"model": {}}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="arch"):
        models.load(tmp_path / "plain.pt")
    torch.save({"arch": {"name": "x", "module": "os", "kwargs": {}}, "model": {}}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="module"):
        models.load(tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="arch_config"):
        models.save(nn.Linear(2, 2), tmp_path / "bare.pt")


def test_run_records_a_loadable_model(robust_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    model, test = robust_mnist
    sub = test.subset(torch.arange(0, 100, 2))
    g = suite.grade(model, data.Loader(sub, 50), suite.Suite.make(EPS, budget="reduced"))
    run = Run("99_test", "Test", profile="small", seed=0, device="cpu")
    entry = run.model("SmallCNN, FGSM-RS", model, g, dataset="mnist", test_data=sub)
    run.finish(tmp_path / "results")
    rec = json.loads((tmp_path / "results" / "99_test.json").read_text())["models"][0]
    for key in ("name", "checkpoint", "dataset", "test_indices", "norm", "eps", "randomized", "robust_accuracy",
                "attack"):  # fmt: skip
        assert key in rec, key
    assert rec == json.loads(json.dumps(entry)) and rec["test_indices"] == sub.indices
    full = data.load("mnist", "test")
    assert torch.equal(full.subset(torch.tensor(rec["test_indices"])).x, sub.x)
    back = models.load(tmp_path / "cache" / rec["checkpoint"])
    again = evaluate.scores(back, data.Loader(sub, 50)).acc
    assert again == pytest.approx(g.clean.acc)


def test_sanity_table_shows_every_check_failing_ones_included():
    checks = {
        "net": {
            "large_eps": {"eps": 0.3, "accuracy": 0.0, "passed": True},
            "more_steps": {"accuracy_by_steps": {5: 0.3, 10: 0.28, 40: 0.29}, "largest_rise": 0.01, "passed": True},
            "black_box": {"attack": "Square, 100 queries", "survivors": 20, "broken_by_black_box": 3, "passed": False},
        }
    }
    table = suite.sanity_table(checks)
    assert table.shape == (3, 2) and table["passed"].tolist() == [True, True, False]
    assert "3 of 20" in table.loc[("net", "a black box breaks no survivor"), "numbers"]
    assert "PGD-40 29.0%" in table.loc[("net", "more steps never raise accuracy"), "numbers"]
