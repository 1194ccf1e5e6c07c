"""RegNet's latent-space loss (Volpato 2019, eqs. 2.1-2.7) against closed forms, its numerics at 100 classes,
the kurtosis measure, the Gaussianity measures and encoders of the RegNet chapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers.core import data, models
from helpers.core.models.shakeshake import shake
from helpers.papers.regnet import encoders, gaussianity, latent, problems
from helpers.papers.regnet.losses import kurtosis, regnet_loss


def _exact_samples(mean: np.ndarray, cov: np.ndarray, n: int, seed: int) -> torch.Tensor:
    """n samples whose sample mean and unbiased sample covariance are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(mean)))
    x -= x.mean(0)
    s = np.cov(x, rowvar=False)
    x = x @ np.linalg.inv(np.linalg.cholesky(s)).T  # whiten: sample covariance exactly I
    return torch.from_numpy(x @ np.linalg.cholesky(cov).T + mean)


def _kl_closed_form(mean: np.ndarray, cov: np.ndarray, target: np.ndarray, sigma_t: float) -> float:
    """KL(N(mean, cov) || N(target, sigma_t^2 I)) in closed form."""
    d = len(mean)
    cov_t = sigma_t**2 * np.eye(d)
    diff = target - mean
    return 0.5 * (
        np.linalg.slogdet(cov_t)[1]
        - np.linalg.slogdet(cov)[1]
        - d
        + np.trace(np.linalg.solve(cov_t, cov))
        + diff @ np.linalg.solve(cov_t, diff)
    )


HAND_MADE = {
    0: (np.array([4.0, 1.0, -1.0]), np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])),
    2: (np.array([0.5, -0.5, 6.0]), np.array([[0.7, -0.2, 0.1], [-0.2, 1.5, 0.0], [0.1, 0.0, 3.0]])),
}


def _hand_made_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Classes 0 and 2 of a 3-d latent space with the Gaussians above; class 1 is missing from the batch."""
    zs, ys = [], []
    for c, (m, s) in HAND_MADE.items():
        zs.append(_exact_samples(m, s, 50, seed=c))
        ys.append(torch.full((50,), c))
    return torch.cat(zs), torch.cat(ys)


@pytest.mark.parametrize("mu_t,sigma_t", [(5.0, 1.0), (70.0, 2.0)])
def test_cov_loss_equals_closed_form_kl_for_hand_made_gaussians(mu_t, sigma_t):
    z, y = _hand_made_batch()
    expected = sum(_kl_closed_form(m, s, mu_t * np.eye(3)[c], sigma_t) for c, (m, s) in HAND_MADE.items())
    got = regnet_loss(z, y, mu_t=mu_t, sigma_t=sigma_t, kind="cov", jitter=0.0)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # The simplified loss is the same KL with the off-diagonal covariances dropped (eq. 2.3).
    diag = sum(_kl_closed_form(m, np.diag(np.diag(s)), mu_t * np.eye(3)[c], sigma_t) for c, (m, s) in HAND_MADE.items())
    got_s = regnet_loss(z, y, mu_t=mu_t, sigma_t=sigma_t, kind="simplified", jitter=0.0)
    assert float(got_s) == pytest.approx(diag, rel=1e-9)
    # The default jitter (1e-3 sigma_t^2) moves the value by well under a percent.
    assert float(regnet_loss(z, y, mu_t=mu_t, sigma_t=sigma_t)) == pytest.approx(expected, rel=1e-2)


def test_cov_and_simplified_agree_on_uncorrelated_classes_and_kl_is_positive():
    z = torch.cat([_exact_samples(np.array([1.0, 0.0]), np.diag([0.5, 2.0]), 40, seed=3)]).float()
    y = torch.zeros(40, dtype=torch.long)
    a = regnet_loss(z, y, mu_t=1.0, kind="cov", jitter=0.0)
    b = regnet_loss(z, y, mu_t=1.0, kind="simplified", jitter=0.0)
    assert a.dtype == torch.float32 and float(a) == pytest.approx(float(b), rel=1e-5) and float(a) > 0


def test_loss_is_near_zero_for_a_large_batch_drawn_from_the_target():
    d, n, mu_t, sigma_t = 10, 20_000, 70.0, 1.5
    g = torch.Generator().manual_seed(0)
    y = torch.arange(d).repeat_interleave(n)
    z = mu_t * torch.eye(d)[y] + sigma_t * torch.randn(d * n, d, generator=g)
    on_target = float(regnet_loss(z, y, mu_t=mu_t, sigma_t=sigma_t, kind="cov"))
    # Expected KL of a Gaussian fitted to n samples is about d(d+3)/(4n) per class: ~0.016 in total here.
    assert 0 <= on_target < 0.05
    assert float(regnet_loss(z, y, mu_t=mu_t, sigma_t=sigma_t, kind="simplified")) < 0.05
    assert float(regnet_loss(z + 1.0, y, mu_t=mu_t, sigma_t=sigma_t)) > 10 * d * 0.5 / sigma_t**2 * 0.9
    assert (
        float(regnet_loss(2 * (z - mu_t * torch.eye(d)[y]) + mu_t * torch.eye(d)[y], y, mu_t=mu_t, sigma_t=sigma_t)) > 1
    )


@pytest.mark.parametrize("kind", ["cov", "simplified"])
@pytest.mark.parametrize("collapsed", [False, True])
def test_loss_is_finite_with_finite_gradients_at_100_classes_with_a_class_missing(kind, collapsed):
    d = 100
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, d - 1, (200,), generator=g)  # class 99 never appears
    y[y == 5] = 6
    y[0] = 5  # class 5 has a single sample: no covariance, it must be skipped, not crash
    z = 30 * torch.randn(200, d, generator=g)
    if collapsed:  # every class mapped to one point: zero covariance, the determinant of the thesis is 0
        z = 30 * torch.randn(d, d, generator=g)[y]
    z.requires_grad_(True)
    loss = regnet_loss(z, y, mu_t=70.0, kind=kind, kurtosis_weight=0.2)
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert grad[y == 5].abs().sum() == 0  # the lone sample contributes nothing
    assert grad.abs().sum() > 0


def test_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(2)
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2])
    z = torch.randn(12, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    for kind in ("cov", "simplified"):
        assert torch.autograd.gradcheck(
            lambda t, kind=kind: regnet_loss(t, y, mu_t=3.0, kind=kind, kurtosis_weight=0.3), (z,)
        )


def test_a_batch_without_any_usable_class_gives_zero_attached_to_the_graph():
    z = torch.randn(3, 4, requires_grad=True)
    loss = regnet_loss(z, torch.tensor([0, 1, 2]), mu_t=10.0)
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_kurtosis_of_gaussian_samples_is_about_three():
    g = torch.Generator().manual_seed(0)
    k = kurtosis(torch.randn(200_000, 5, generator=g))
    assert k.shape == (5,) and torch.allclose(k, torch.full((5,), 3.0, dtype=torch.float64), atol=0.06)
    # per class, with a class missing: NaN row; and the two reference shapes
    y = torch.arange(3).repeat_interleave(50_000)
    z = torch.randn(150_000, 4, generator=g)
    z[y == 1] = torch.rand(50_000, 4, generator=g)  # uniform: kurtosis 9/5
    kc = kurtosis(z, y, num_classes=4)
    assert kc.shape == (4, 4) and torch.isnan(kc[3]).all()
    assert torch.allclose(kc[0], torch.tensor(3.0, dtype=torch.float64), atol=0.1)
    assert torch.allclose(kc[1], torch.tensor(1.8, dtype=torch.float64), atol=0.03)
    two_point = torch.tensor([[-1.0], [1.0]] * 100)
    assert float(kurtosis(two_point)) == pytest.approx(1.0, abs=1e-6)


def test_kurtosis_term_vanishes_for_gaussians_and_penalises_other_shapes():
    g = torch.Generator().manual_seed(4)
    n = 20_000
    y = torch.zeros(n, dtype=torch.long)
    gauss = torch.randn(n, 2, generator=g, dtype=torch.float64)
    unif = (torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5) * math.sqrt(12)  # same mean and variance

    def term(z: torch.Tensor) -> float:
        return float(regnet_loss(z, y, mu_t=0.0, kurtosis_weight=1.0) - regnet_loss(z, y, mu_t=0.0))

    assert term(gauss) < 0.1
    assert term(unif) == pytest.approx(1.2, abs=0.05)  # |1.8 - 3|, averaged over the dimensions


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"kind": "full"}, "kind"),
        ({"mu_t": -1.0}, "mu_t"),
        ({"sigma_t": 0.0}, "sigma_t"),
        ({"kurtosis_weight": -0.2}, "kurtosis_weight"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(kw, match):
    args = {"mu_t": 10.0, **kw}
    with pytest.raises(ValueError, match=f"^{match}"):
        regnet_loss(torch.randn(8, 3), torch.zeros(8, dtype=torch.long), **args)


def test_labels_outside_the_latent_space_are_rejected():
    with pytest.raises(ValueError, match="^y must"):
        regnet_loss(torch.randn(8, 3), torch.full((8,), 3), mu_t=10.0)


def test_decision_rule_argmax_is_the_nearest_target_mean():
    g = torch.Generator().manual_seed(5)
    z = 40 * torch.randn(500, 7, generator=g)
    dist = torch.cdist(z.double(), gaussianity.targets(40.0, 7))
    assert torch.equal(dist.argmin(1), z.argmax(1))


# --- Gaussianity measures ------------------------------------------------------------------------------------


def test_histogram_rmse_is_small_on_target_and_large_off_target():
    g = torch.Generator().manual_seed(6)
    y = torch.arange(3).repeat_interleave(20_000)
    z = 10 * torch.eye(3)[y] + torch.randn(60_000, 3, generator=g)
    good = gaussianity.histogram_rmse(z, y, 10.0)
    assert good.shape == (3, 3) and float(good.max()) < 0.05
    spiky = 10 * torch.eye(3)[y] + torch.sign(torch.randn(60_000, 3, generator=g))  # two spikes at +-1
    wide = 10 * torch.eye(3)[y] + 3 * torch.randn(60_000, 3, generator=g)
    assert float(gaussianity.histogram_rmse(spiky, y, 10.0).min()) > 5 * float(good.max())
    assert float(gaussianity.histogram_rmse(wide, y, 10.0).min()) > 5 * float(good.max())
    stats = gaussianity.gaussianity(z, y, 10.0)
    assert stats["kurtosis"] == pytest.approx(3.0, abs=0.1) and stats["abs_skewness"] < 0.05
    assert stats["spread"] == pytest.approx(1.0, abs=0.02) and stats["mean_error"] < 0.05


def test_skewness_sign():
    g = torch.Generator().manual_seed(7)
    z = torch.cat([torch.randn(50_000, 1, generator=g), torch.empty(50_000, 1).exponential_(generator=g)], 1)
    labels = torch.cat([torch.zeros(50_000), torch.ones(50_000)]).long()
    s = gaussianity.skewness(torch.cat([z[:, :1], z[:, 1:]]), labels, 2)
    assert abs(float(s[0, 0])) < 0.05 and float(s[1, 0]) == pytest.approx(2.0, abs=0.15)


def test_margin_loss_is_scale_free_and_positive_when_wrong():
    z = torch.tensor([[3.0, 1.0, 0.0], [0.0, 5.0, 1.0]])
    y = torch.tensor([0, 0])
    assert float(latent.margin_loss(z, y)) == pytest.approx((1 - 3) + (5 - 0))
    x = torch.randn(4, 3, requires_grad=True)
    w = torch.randn(3, 3)
    (g1,) = torch.autograd.grad(latent.margin_loss(x @ w, torch.zeros(4, dtype=torch.long)), x)
    (g2,) = torch.autograd.grad(latent.margin_loss(100 * (x @ w), torch.zeros(4, dtype=torch.long)), x)
    assert torch.allclose(g2, 100 * g1)  # no saturation: the gradient scales with the latent space


def test_relabel_groups_and_single_classes():
    base = data.TensorData(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10), data.MNIST_CLASSES)
    grouped = problems.relabel(base, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    assert grouped.y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and grouped.classes == ("0,1,2", "3,4,5", "6,7,8")
    single = problems.relabel(base, [[7], [2]])
    assert single.y.tolist() == [1, 0] and single.classes == ("7", "2")
    with pytest.raises(ValueError, match="^groups"):
        problems.relabel(base, [[0, 1], [1]])


# --- encoders ------------------------------------------------------------------------------------------------


def test_encoders_map_to_the_latent_dimension_and_validate_the_name():
    for name in models.ENCODERS:
        enc = models.build_encoder(name, "mnist", 3, width=4)
        assert enc(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    assert models.build_encoder("resnet18", "cifar10", 10, 64)(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="^model"):
        models.build_encoder("vgg", "mnist", 3)
    # Gastaldi (2017) reports 26.2M parameters for the 26 2x96d CIFAR-10 network.
    assert models.count_parameters(models.build_encoder("shakeshake26", "cifar10", 10, 96)) == pytest.approx(
        26.2e6, rel=0.01
    )


def test_shake_blends_with_alpha_forward_and_beta_backward():
    torch.manual_seed(0)
    a = torch.randn(64, 2, 3, 3, requires_grad=True)
    b = torch.randn(64, 2, 3, 3, requires_grad=True)
    assert torch.allclose(shake(a, b, training=False), 0.5 * (a + b))
    out = shake(a, b, training=True)
    alpha = ((out - b) / (a - b)).detach()  # per image, constant over the image
    assert torch.allclose(alpha, alpha[:, :1, :1, :1].expand_as(alpha), atol=1e-4)
    ga, gb = torch.autograd.grad(out.sum(), (a, b))
    assert torch.allclose(ga + gb, torch.ones_like(ga))  # beta and 1 - beta
    assert not torch.allclose(ga, alpha)  # the backward weight is drawn independently


def test_shakeshake_is_random_in_training_and_deterministic_in_eval():
    torch.manual_seed(0)
    net = models.build_encoder("shakeshake26", "mnist", 4, width=4)
    x = torch.rand(3, 1, 28, 28)
    net.train()
    assert not torch.allclose(net(x), net(x))
    net.eval()
    assert torch.equal(net(x), net(x))


def test_synthetic_problem_held_out_set_shares_the_class_centres():
    a = problems.synthetic_latent_problem(5, 400, dim_in=8, seed=3)
    b = problems.synthetic_latent_problem(5, 400, dim_in=8, seed=3, noise_seed=99)
    assert not torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    means = [torch.stack([d.x[d.y == c].mean(0) for c in range(5)]) for d in (a, b)]
    assert torch.allclose(means[0], means[1], atol=0.05)


def test_training_at_100_classes_never_produces_nan():
    """The thesis' runs turned NaN above 62 classes; ours train 100 classes in float32 without a NaN, while the
    float32 determinant form of the same loss is not finite on these batches (2 samples per class and batch)."""
    problem = problems.synthetic_latent_problem(100, 12, dim_in=16, seed=0)
    cfg = encoders.LatentConfig(loss="cov", mu_t=70.0, kurtosis_weight=0.2, batch_size=200, lr=1e-2)
    run = encoders.train_synthetic(cfg, problem, epochs=3)
    losses = run.step_losses
    assert len(losses) == 18 == len(run.naive_finite) and all(math.isfinite(v) for v in losses)
    assert run.all_finite and losses[-1] < losses[0]
    assert run.naive_bad > 0.5
    assert run.model.arch_config["name"] == "mlp_encoder"
