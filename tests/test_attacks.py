"""Properties and oracles of the attacks (DEVELOPERS.md's list), with torchattacks as the reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import needs_mnist
from torch import nn

from helpers.core import attacks
from helpers.core.attacks import eval_mode, fgsm, pgd

EPS = {"linf": 0.1, "l2": 1.5}


def _attack(kind: str, model, x, y, eps: float, norm: str) -> torch.Tensor:
    if kind == "fgsm":
        return fgsm(model, x, y, eps, norm=norm)
    alpha = 2.5 * eps / 10
    return pgd(model, x, y, eps, alpha, 10, norm=norm, random_start=True, generator=torch.Generator().manual_seed(0))


pytestmark = needs_mnist


@pytest.mark.parametrize("kind", ["fgsm", "pgd"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
class TestContract:
    def test_eps_zero_returns_x(self, kind, norm, trained_cnn, mnist_small):
        x, y = mnist_small[0][:16], mnist_small[1][:16]
        out = _attack(kind, trained_cnn, x, y, 0.0, norm)
        assert torch.equal(out, x)
        assert out.data_ptr() != x.data_ptr()

    def test_within_budget_and_range(self, kind, norm, trained_cnn, mnist_small):
        x, y = mnist_small[0][:64], mnist_small[1][:64]
        eps = EPS[norm]
        out = _attack(kind, trained_cnn, x, y, eps, norm)
        delta = (out - x).flatten(1)
        size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
        assert float(size.max()) <= eps + 1e-5
        assert float(size.max()) > 0.5 * eps  # it did move
        assert out.min() >= 0 and out.max() <= 1
        assert not out.requires_grad and out.grad_fn is None

    def test_input_unchanged(self, kind, norm, trained_cnn, mnist_small):
        x, y = mnist_small[0][:16].clone(), mnist_small[1][:16].clone()
        x0, y0 = x.clone(), y.clone()
        _attack(kind, trained_cnn, x, y, EPS[norm], norm)
        assert torch.equal(x, x0) and torch.equal(y, y0)
        assert not x.requires_grad

    def test_mode_and_parameter_grads_untouched(self, kind, norm, mnist_small):
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Dropout(0.0), nn.ReLU(), nn.Linear(32, 10))
        model.train()
        model[2].eval()  # a submodule in a different mode must stay so
        model[1].weight.grad = torch.full_like(model[1].weight, 7.0)
        x, y = mnist_small[0][:16], mnist_small[1][:16]
        _attack(kind, model, x, y, EPS[norm], norm)
        assert model.training and model[1].training and not model[2].training
        assert torch.all(model[1].weight.grad == 7.0)
        assert all(p.grad is None for n, p in model.named_parameters() if n != "1.weight")

    def test_batch_consistency(self, kind, norm, trained_cnn, mnist_small):
        x, y = mnist_small[0][:8], mnist_small[1][:8]
        eps = EPS[norm]
        if kind == "fgsm":
            whole = fgsm(trained_cnn, x, y, eps, norm=norm)
            parts = torch.cat([fgsm(trained_cnn, x[i : i + 1], y[i : i + 1], eps, norm=norm) for i in range(8)])
        else:
            whole = pgd(trained_cnn, x, y, eps, eps / 4, 5, norm=norm)
            parts = torch.cat(
                [pgd(trained_cnn, x[i : i + 1], y[i : i + 1], eps, eps / 4, 5, norm=norm) for i in range(8)]
            )
        # Batched and single-image convolutions may round differently; a sign can flip only where the
        # gradient is ~0, so allow a vanishing fraction of pixels to differ.
        differ = ((whole - parts).abs() > 1e-4).float().mean()
        assert float(differ) < 1e-3


def test_fgsm_linear_closed_form(mnist_small):
    torch.manual_seed(0)
    lin = nn.Linear(784, 10)
    model = nn.Sequential(nn.Flatten(), lin)
    x, y = mnist_small[0][:32], mnist_small[1][:32]
    eps = 0.07
    with torch.no_grad():
        p = F.softmax(model(x), 1)
        grad = (p - F.one_hot(y, 10).float()) @ lin.weight  # d CE / d x for a linear model
        expected_linf = (x.flatten(1) + eps * grad.sign()).clamp(0, 1).view_as(x)
        expected_l2 = (x.flatten(1) + eps * grad / grad.norm(dim=1, keepdim=True)).clamp(0, 1).view_as(x)
    torch.testing.assert_close(fgsm(model, x, y, eps), expected_linf, atol=1e-6, rtol=0)
    torch.testing.assert_close(fgsm(model, x, y, eps, norm="l2"), expected_l2, atol=1e-5, rtol=0)
    # Targeted FGSM steps against the gradient of the target class's loss.
    t = (y + 1) % 10
    with torch.no_grad():
        gt = (p - F.one_hot(t, 10).float()) @ lin.weight
    torch.testing.assert_close(
        fgsm(model, x, t, eps, targeted=True),
        (x.flatten(1) - eps * gt.sign()).clamp(0, 1).view_as(x),
        atol=1e-6,
        rtol=0,
    )


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_clean_ge_fgsm_ge_pgd(trained_cnn, mnist_small):
    x, y = mnist_small
    clean = _acc(trained_cnn, x, y)
    for norm, eps in (("linf", 0.15), ("l2", 2.0)):
        a_fgsm = _acc(trained_cnn, fgsm(trained_cnn, x, y, eps, norm=norm), y)
        a_pgd = _acc(trained_cnn, pgd(trained_cnn, x, y, eps, 2.5 * eps / 20, 20, norm=norm), y)
        assert clean >= a_fgsm >= a_pgd, (norm, clean, a_fgsm, a_pgd)
        assert clean - a_pgd > 0.3  # the attack is real on an undefended model


def test_fgsm_equals_torchattacks(trained_cnn, mnist_small):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = mnist_small
    theirs = torchattacks.FGSM(trained_cnn, eps=0.1)(x, y)
    ours = fgsm(trained_cnn, x, y, 0.1)
    assert float(((ours - theirs).abs() > 1e-6).float().mean()) < 1e-4
    assert _acc(trained_cnn, ours, y) == _acc(trained_cnn, theirs, y)


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.1, 0.01), ("l2", 1.0, 0.2)])
def test_pgd_at_least_as_strong_as_torchattacks(trained_cnn, mnist_small, norm, eps, alpha):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = mnist_small
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    for random_start in (False, True):
        torch.manual_seed(0)
        theirs = cls(trained_cnn, eps=eps, alpha=alpha, steps=20, random_start=random_start)(x, y)
        ours = pgd(
            trained_cnn,
            x,
            y,
            eps,
            alpha,
            20,
            norm=norm,
            random_start=random_start,
            generator=torch.Generator().manual_seed(0),
        )
        assert _acc(trained_cnn, ours, y) <= _acc(trained_cnn, theirs, y), (norm, random_start)


@pytest.mark.parametrize("d", [1, 2, 5, 784])
def test_l2_random_start_uniform_in_ball(d):
    eps = 0.5
    g = torch.Generator().manual_seed(0)
    delta = attacks.random_in_ball((40000, d), eps, "l2", generator=g)
    r = delta.norm(dim=1) / eps
    assert float(r.max()) <= 1 + 1e-6
    assert math.isclose(float(r.mean()), d / (d + 1), abs_tol=4e-3)
    # Uniform in the ball: P(|delta| <= s * eps) = s^d.
    assert math.isclose(float((r <= 0.9).float().mean()), 0.9**d, abs_tol=0.01)
    # and isotropic: the mean direction is ~0
    assert float(delta.mean(0).abs().max()) < 0.02


def test_linf_random_start_uniform():
    delta = attacks.random_in_ball((20000, 10), 0.3, "linf", generator=torch.Generator().manual_seed(0))
    assert float(delta.abs().max()) <= 0.3
    assert math.isclose(float(delta.abs().mean()), 0.15, abs_tol=3e-3)


def test_targeted_pgd_reaches_target(trained_cnn, mnist_small):
    x, y = mnist_small[0][:64], mnist_small[1][:64]
    t = (y + 3) % 10
    out = pgd(trained_cnn, x, t, 0.3, 0.03, 30, targeted=True)
    with torch.no_grad():
        hit = (trained_cnn(out).argmax(1) == t).float().mean()
    assert float(hit) > 0.8


class _Noisy(nn.Module):
    """A randomized model: Gaussian noise on the input at every call (what EOT is for)."""

    def __init__(self, inner: nn.Module, sigma: float) -> None:
        super().__init__()
        self.inner, self.sigma, self.calls = inner, sigma, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x + self.sigma * torch.randn_like(x))


def test_eot_averages_gradients_over_draws(trained_cnn, mnist_small):
    x, y = mnist_small[0][:8], mnist_small[1][:8]
    noisy = _Noisy(trained_cnn, 0.3)
    torch.manual_seed(5)
    g = attacks.input_gradient(noisy, x, y, eot_samples=6)
    assert noisy.calls == 6
    torch.manual_seed(5)
    singles = [attacks.input_gradient(noisy, x, y) for _ in range(6)]
    torch.testing.assert_close(g, torch.stack(singles).mean(0), atol=1e-6, rtol=1e-5)
    # Averaging reduces the variance of the estimate.
    spread_single = torch.stack(singles).std(0).mean()
    torch.manual_seed(6)
    avgs = torch.stack([attacks.input_gradient(noisy, x, y, eot_samples=6) for _ in range(6)])
    assert float(avgs.std(0).mean()) < float(spread_single)
    noisy.calls = 0
    pgd(noisy, x, y, 0.1, 0.02, 3, eot_samples=4)
    assert noisy.calls == 12


def test_attacks_work_under_no_grad(trained_cnn, mnist_small):
    x, y = mnist_small[0][:8], mnist_small[1][:8]
    with torch.no_grad():
        out = pgd(trained_cnn, x, y, 0.1, 0.05, 3)
    assert torch.equal(out, pgd(trained_cnn, x, y, 0.1, 0.05, 3))


def test_clip_none_keeps_unbounded_values():
    # Calibrated fluxes (photo-z) can be negative: with clip=None only the perturbation is bounded.
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.randn(8, 1, 4, 4) * 3
    y = torch.arange(8) % 3
    for out in (
        fgsm(model, x, y, 0.01, clip=None),
        pgd(model, x, y, 0.01, 0.002, 10, clip=None, random_start=True),
        attacks.uniform_noise(x, 0.01, clip=None),
        attacks.make_attack("pgd_l2", 0.05, steps=5, clip=None)(model, x, y),
    ):
        assert float(out.min()) < -1 and float(out.max()) > 2
        assert float((out - x).abs().max()) <= 0.05 + 1e-6
    assert torch.all(fgsm(model, x, y, 0.01) >= 0)  # the default still clips to [0, 1]


def test_eval_mode_restores_each_submodule():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    model.train()
    model[1].eval()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and not model[1].training and model[2].training


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda m, x, y: fgsm(m, x, y, -0.1), "eps"),
        (lambda m, x, y: fgsm(m, x, y, 0.1, norm="l1"), "norm"),
        (lambda m, x, y: pgd(m, x, y, -1, 0.1, 3), "eps"),
        (lambda m, x, y: pgd(m, x, y, 0.1, -0.1, 3), "alpha"),
        (lambda m, x, y: pgd(m, x, y, 0.1, 0.1, -3), "steps"),
        (lambda m, x, y: pgd(m, x, y, 0.1, 0.1, 3, eot_samples=0), "eot_samples"),
        (lambda m, x, y: attacks.make_attack("foo", 0.1), "attack"),
        (lambda m, x, y: attacks.uniform_noise(x, -1.0), "eps"),
    ],
)
def test_bad_arguments_name_the_parameter(call, name, trained_cnn, mnist_small):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call(trained_cnn, mnist_small[0][:2], mnist_small[1][:2])


def test_make_attack_names(trained_cnn, mnist_small):
    x, y = mnist_small[0][:16], mnist_small[1][:16]
    for name in attacks.ATTACKS:
        out = attacks.make_attack(name, 0.1, steps=3, generator=torch.Generator().manual_seed(0))(trained_cnn, x, y)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(attacks.make_attack("none", 0.1)(trained_cnn, x, y), x)
    assert torch.equal(attacks.make_attack("fgsm", 0.1)(trained_cnn, x, y), fgsm(trained_cnn, x, y, 0.1))


def test_fgsm_rs_is_one_projected_step_from_a_uniform_start(trained_cnn, mnist_small):
    """Wong et al.'s FGSM-RS: inside the l-inf ball and [0, 1], seeded, and not the plain FGSM point."""
    x, y = mnist_small[0][:64], mnist_small[1][:64]
    rs = attacks.make_attack("fgsm_rs", 0.1, generator=torch.Generator().manual_seed(0))(trained_cnn, x, y)
    again = attacks.make_attack("fgsm_rs", 0.1, generator=torch.Generator().manual_seed(0))(trained_cnn, x, y)
    assert torch.equal(rs, again) and (rs - x).abs().max() <= 0.1 + 1e-6 and rs.min() >= 0 and rs.max() <= 1
    plain = fgsm(trained_cnn, x, y, 0.1)
    assert not torch.equal(rs, plain)
    # The 1.25 eps step from a random start leaves most coordinates on the ball's faces, like FGSM's.
    assert ((rs - x).abs() > 0.099).float().mean() > 0.5
