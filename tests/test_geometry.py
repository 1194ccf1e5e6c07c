"""helpers.papers.cure.geometry against closed forms: Hutchinson vs the exact Hessian, DeepFool on linear models,
boundary curvature of a known parabola, the path algorithm on convex and non-convex 2-D regions, the hue rotation;
and the attack contract (``clip``, a tensor returned, inputs untouched) of every attack of the package."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.attacks import per_sample_norm
from helpers.papers.cure import geometry as G
from helpers.papers.cure import study


class Smooth(nn.Module):
    """A tanh MLP on inputs (B, 1, 2, 3): small enough (d = 6) to form each example's Hessian exactly."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _exact_frobenius_sq(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = []
    for xi, yi in zip(x, y, strict=True):
        hess = torch.autograd.functional.hessian(lambda p, yi=yi: F.cross_entropy(model(p[None]), yi[None]), xi)
        out.append(hess.reshape(xi.numel(), xi.numel()).pow(2).sum())
    return torch.stack(out)


def _data(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 2, 3, generator=g, dtype=torch.float64), torch.randint(0, 4, (n,), generator=g)


def test_hutchinson_is_exact_over_all_sign_probes():
    model, (x, y) = Smooth(), _data()
    probes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=6)), dtype=torch.float64).view(-1, 1, 2, 3)
    est = G.hessian_frobenius_sq(model, x, y, probes=probes)
    torch.testing.assert_close(est, _exact_frobenius_sq(model, x, y), rtol=1e-9, atol=1e-12)


def test_hutchinson_random_probes_converge_to_exact():
    model, (x, y) = Smooth(), _data(seed=3)
    est = G.hessian_frobenius_sq(model, x, y, samples=3000, generator=torch.Generator().manual_seed(0))
    exact = _exact_frobenius_sq(model, x, y)
    assert torch.allclose(est, exact, rtol=0.05), (est, exact)
    again = G.hessian_frobenius_sq(model, x, y, samples=3000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(est, again)  # seeded


def test_hutchinson_per_example_and_zero_for_a_linear_model_direction():
    model, (x, y) = Smooth(), _data(n=4, seed=5)
    probes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=6)), dtype=torch.float64).view(-1, 1, 2, 3)
    batch = G.hessian_frobenius_sq(model, x, y, probes=probes)
    alone = torch.cat([G.hessian_frobenius_sq(model, x[i : i + 1], y[i : i + 1], probes=probes) for i in range(4)])
    torch.testing.assert_close(batch, alone)


def test_top_hessian_direction_is_the_leading_eigenvector():
    model, (x, y) = Smooth(), _data(n=3, seed=7)
    v, lam = G.top_hessian_direction(model, x, y, iters=200, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        hess = torch.autograd.functional.hessian(lambda p, i=i: F.cross_entropy(model(p[None]), y[i : i + 1]), x[i])
        evals, evecs = torch.linalg.eigh(hess.reshape(6, 6))
        k = int(evals.abs().argmax())
        torch.testing.assert_close(lam[i], evals[k], rtol=1e-6, atol=1e-10)
        assert abs(float(v[i].flatten() @ evecs[:, k])) == pytest.approx(1.0, abs=1e-6)
        assert float(v[i].norm()) == pytest.approx(1.0)


class Linear2(nn.Module):
    """Binary linear classifier on (B, 1, 2, 2) images: logits (0, w.x + b)."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = w.double().flatten(), b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([torch.zeros_like(s), s], 1)


def test_deepfool_and_minimal_perturbation_match_the_distance_to_a_hyperplane():
    w = torch.tensor([0.3, -0.2, 0.5, 0.1])
    model = Linear2(w, -0.35)
    g = torch.Generator().manual_seed(0)
    x = (0.35 + 0.3 * torch.rand(16, 1, 2, 2, generator=g)).double()
    dist = (x.flatten(1) @ w.double() - 0.35).abs() / w.double().norm()
    x_adv = G.deepfool(model, x, overshoot=0.02)
    assert (G.predict(model, x_adv) != G.predict(model, x)).all()
    torch.testing.assert_close(per_sample_norm(x_adv - x), 1.02 * dist + 1.02e-4 / w.double().norm(), rtol=1e-6, atol=0)
    norms = G.minimal_perturbation_norm(model, x, bisection_steps=20, batch_size=5)  # batches of 5, 5, 5, 1
    torch.testing.assert_close(norms, dist, rtol=1e-4, atol=1e-6)
    x_min = G.minimal_perturbation(model, x, bisection_steps=20)
    torch.testing.assert_close(per_sample_norm(x_min - x), norms)
    assert (G.predict(model, x_min) != G.predict(model, x)).all()
    assert x_min.min() >= 0 and x_min.max() <= 1


def test_push_to_class_and_runner_up_attack():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 5)).eval()
    with torch.no_grad():
        model[1].weight.mul_(3)  # steep, so that the runner-up is within reach of images near mid-grey
    x = 0.3 + 0.4 * torch.rand(32, 3, 2, 2)
    logits = model(x).detach()
    pred = logits.argmax(1)
    target = logits.topk(2, 1).indices[:, 1]  # the runner-up: reachable (a saturated tanh class may not be)
    x_new = G.push_to_class(model, x, target, clip=None)
    assert torch.equal(G.predict(model, x_new), target)
    x_box = G.push_to_class(model, x, target)
    reached_box = G.predict(model, x_box) == target
    assert x_box.min() >= 0 and x_box.max() <= 1 and reached_box.any()
    assert torch.equal(G.predict(model, x_box)[reached_box], target[reached_box])
    y = pred.clone()
    y[:4] = (pred[:4] + 2) % 5  # the first four are "misclassified": left as they are
    x0 = x.clone()
    adv = G.runner_up_attack(model, x, y)
    assert torch.equal(x, x0) and torch.equal(adv[:4], x[:4])
    runner_up = logits.topk(2, 1).indices[:, 1]
    assert torch.equal(G.predict(model, adv[4:]), runner_up[4:])


class Parabola(nn.Module):
    """On (B, 1, 1, 2) points (s, t): class 1 where s > c + a t^2, else 0 (logit gap scaled by ``gain``)."""

    def __init__(self, a: float, c: float, gain: float = 10.0) -> None:
        super().__init__()
        self.a, self.c, self.gain = a, c, gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t = x[:, 0, 0, 0], x[:, 0, 0, 1]
        margin = self.gain * (s - self.c - self.a * t**2)
        return torch.stack([torch.zeros_like(margin), margin], 1)


@pytest.mark.parametrize("a", [0.0, 0.4, -0.3])
def test_boundary_curve_and_quadratic_fit_recover_a_parabola(a):
    model = Parabola(a, 0.5)
    x = torch.zeros(1, 1, 2, dtype=torch.float64)
    u = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    v = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
    t = torch.linspace(-1, 1, 21, dtype=torch.float64)
    s = G.boundary_curve(model, x, u, v, t, s_max=2.0, bisection_steps=20)
    assert s.dtype == torch.float64
    torch.testing.assert_close(s, 0.5 + a * t**2, atol=1e-4, rtol=0)
    fit = G.fit_boundary_curvature(t, s)
    assert fit.curvature == pytest.approx(2 * a, abs=1e-3) and fit.c == pytest.approx(0.5, abs=1e-4)
    grid = G.class_map(model, x, u, v, torch.tensor([0.0, 1.9], dtype=torch.float64), t)
    assert grid.shape == (21, 2) and (grid[:, 0] == 0).all() and (grid[:, 1] == 1).all()


def test_boundary_curve_is_nan_where_the_region_is_not_left():
    model = Parabola(0.0, 5.0)
    x = torch.zeros(1, 1, 2)
    u, v = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.0, 1.0]]])
    s = G.boundary_curve(model, x, u, v, torch.linspace(-1, 1, 5), s_max=1.0)
    assert torch.isnan(s).all()
    assert math.isnan(G.fit_boundary_curvature(torch.linspace(-1, 1, 5), s).curvature)


# The chapter's curvature study (helpers.papers.cure.study) on the same parabolas: with gain 1 the loss curves
# more along t than along the gradient, so the principal plane is the (s, t) plane too.


def test_boundary_curvatures_recover_a_parabola_in_both_planes():
    nets = {"flat": Parabola(0.0, 0.5, gain=1.0), "curved": Parabola(0.5, 0.5, gain=1.0)}
    x = torch.tensor([[[[0.1, 0.0]]]], dtype=torch.float64)  # (1, 1, 1, 2): one "image" at s = 0.1, t = 0
    y = torch.tensor([0])
    grid = torch.linspace(-1, 1, 21, dtype=torch.float64)
    curv, maps = study.boundary_curvatures(nets, x, y, grid, s_max=1.0, seed=0)
    assert len(curv) == 4 and set(curv.plane) == {"random", "principal"}
    for row in curv.itertuples():
        a = 0.0 if row.network == "flat" else 0.5
        assert row.distance == pytest.approx(0.4, abs=1e-3)  # to the boundary s = c along the gradient
        if row.network == "flat" and row.plane == "principal":
            continue  # a flat boundary's loss curves only along u: no second principal axis to cut along
        assert row.curvature == pytest.approx(2 * a, abs=2e-3) and row.n == 21
    summary = study.curvature_summary(curv)
    assert summary.loc["curved", "median |κ|, random plane"] == pytest.approx(1.0, abs=2e-3)
    assert summary.loc["curved", "median |κ|, principal plane"] == pytest.approx(1.0, abs=2e-3)
    assert summary.loc["curved", "boundaries fitted"] == 2
    grid_map, s_curve, fit = maps["curved"]
    assert grid_map.shape == (21, 21) and s_curve.shape == (21,) and fit.curvature == pytest.approx(1.0, abs=2e-3)


class Ring(nn.Module):
    """On 2-D points (B, 2): class 1 inside the annulus 1 < r < 2 (non-convex), else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x.norm(dim=1)
        margin = 4 * (0.25 - (r - 1.5) ** 2)
        return torch.stack([torch.zeros_like(margin), margin], 1)


class HalfPlane(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[:, 0] + 0.5 * x[:, 1] - 0.2
        return torch.stack([torch.zeros_like(m), m], 1)


def _really_inside(model: nn.Module, points: torch.Tensor, label: int, n: int = 2000) -> bool:
    for a, b in zip(points[:-1], points[1:], strict=True):
        if not bool((G.segment_labels(model, a, b, n) == label).all()):
            return False
    return True


def test_path_in_a_convex_region_is_the_straight_segment():
    x0, x1 = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    path = G.connect(HalfPlane(), x0, x1, 1, clip=None)
    assert path.valid and path.n_points == 2 and path.pushes == 0 and path.max_deviation < 1e-12
    assert torch.equal(path.points, torch.stack([x0, x1]))
    ratio = G.path_pca(path.points, n_components=2)["ratio"]
    assert float(ratio[0]) == pytest.approx(1.0, abs=1e-6)


def test_path_in_a_non_convex_region_goes_around_the_hole():
    model = Ring()
    x0, x1 = torch.tensor([1.5, 0.0]), torch.tensor([-1.5, 0.2])
    assert not _really_inside(model, torch.stack([x0, x1]), 1)  # the straight segment crosses the hole
    path = G.connect(model, x0, x1, 1, clip=None, n_check=64)
    assert path.valid and path.n_points > 2 and path.pushes >= 1
    assert torch.equal(path.points[0], x0) and torch.equal(path.points[-1], x1)
    assert _really_inside(model, path.points, 1)
    assert path.max_deviation > 0.2  # it had to leave the segment by about the hole's radius over its length
    assert float(G.deviation_from_segment(path.points).max()) == pytest.approx(path.max_deviation)
    pca = G.path_pca(path.points)
    assert float(pca["ratio"][0]) < 0.99 and pca["coords"].shape[0] == 200


def test_path_rejects_endpoints_outside_the_region():
    with pytest.raises(ValueError, match="^label must be"):
        G.connect(Ring(), torch.tensor([0.0, 0.0]), torch.tensor([1.5, 0.0]), 1, clip=None)


def test_resample_path_is_even_in_arc_length():
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 3.0]])
    dense = G.resample_path(pts, 5)
    torch.testing.assert_close(dense, torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]]))


def test_hue_rotation():
    x = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    torch.testing.assert_close(G.hue_rotate(x, 0.0), x)
    torch.testing.assert_close(G.hue_rotate(x, 360.0), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(G.hue_rotate(x, 90.0).mean(1), x.mean(1), atol=1e-6, rtol=0)  # brightness kept
    grey = torch.full((1, 3, 2, 2), 0.4)
    torch.testing.assert_close(G.hue_rotate(grey, 57.0), grey)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(G.hue_rotate(red, 120.0).flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="^x must be RGB"):
        G.hue_rotate(torch.rand(1, 1, 2, 2), 10.0)


def test_hue_attack_finds_the_smallest_rotation_that_flips_every_model():
    class RedVsGreen(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = (x[:, 0] - x[:, 1]).mean((1, 2)) + 0.1  # greys are class 0, clearly
            return torch.stack([m, -m], 1)

    x = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1).expand(2, 3, 2, 2).clone()
    x[1] = 0.5  # a grey image: no rotation changes it
    angles = [0.0, 30.0, -90.0, 120.0, 90.0, 180.0]
    nets = {"a": RedVsGreen(), "b": RedVsGreen()}
    flips = G.hue_flips(nets, x, angles)
    assert flips.shape == (2, 6, 2) and flips.dtype == torch.bool and not flips[:, 0].any()
    # red turns orange at +30 (still more red than green), magenta-blue at -90, green-ish from +90 on
    assert flips.all(0)[:, 0].tolist() == [False, False, False, True, True, True]
    assert not flips[:, :, 1].any()
    best = G.smallest_hue_angle(flips.all(0), angles)
    assert best[0] == 90.0 and math.isnan(float(best[1]))
    # on a tie in |angle| the one listed first wins
    assert G.smallest_hue_angle(torch.ones(2, 1, dtype=torch.bool), [-90.0, 90.0]).tolist() == [-90.0]
    x0 = x.clone()
    adv = G.hue_attack(nets, x, angles)
    assert torch.equal(x, x0) and adv.shape == x.shape and not adv.requires_grad
    torch.testing.assert_close(adv[0], G.hue_rotate(x[:1], 90.0)[0])
    assert torch.equal(adv[1], x[1])  # nothing fools both: unchanged
    assert (G.predict(nets["a"], adv[:1]) != G.predict(nets["a"], x[:1])).all()
    with pytest.raises(ValueError, match="^angles must"):
        G.hue_flips(nets, x, [])


def test_hue_rotation_clip():
    colours = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]).view(2, 3, 1, 1)  # red, yellow
    free = G.hue_rotate(colours, 60.0, clip=None)  # saturated colours leave the RGB cube when turned
    assert free[0].min() < 0 and free[1].max() > 1
    torch.testing.assert_close(free.mean(1), colours.mean(1))  # unclipped, the brightness is exactly kept
    torch.testing.assert_close(G.hue_rotate(colours, 60.0), free.clamp(0, 1))
    torch.testing.assert_close(G.hue_rotate(colours, 60.0, clip=(0.1, 0.9)), free.clamp(0.1, 0.9))


def _dark_linear() -> tuple[nn.Module, torch.Tensor]:
    """A linear binary classifier whose boundary lies outside the [0, 1] box near the images: only an unbounded
    attack (``clip=None``) reaches it."""
    return Linear2(torch.tensor([1.0, 1.0, 1.0, 1.0]), -6.0), torch.full((3, 1, 2, 2), 0.9, dtype=torch.float64)


@pytest.mark.parametrize(
    "attack",
    [
        lambda m, x, **kw: G.deepfool(m, x, **kw),
        lambda m, x, **kw: G.minimal_perturbation(m, x, **kw),
        lambda m, x, **kw: G.push_to_class(m, x, torch.ones(len(x), dtype=torch.long), **kw),
        lambda m, x, **kw: G.runner_up_attack(m, x, torch.zeros(len(x), dtype=torch.long), **kw),
    ],
    ids=["deepfool", "minimal_perturbation", "push_to_class", "runner_up_attack"],
)
def test_every_minimal_attack_follows_the_attack_contract(attack):
    model, x = _dark_linear()
    x0 = x.clone()
    boxed = attack(model, x)
    assert isinstance(boxed, torch.Tensor) and boxed.shape == x.shape and not boxed.requires_grad
    assert torch.equal(x, x0)  # the input is never modified
    assert boxed.min() >= 0 and boxed.max() <= 1  # clip=(0, 1) by default: valid images
    assert (G.predict(model, boxed) == 0).all()  # the boundary (sum = 6) is out of the box's reach
    free = attack(model, x, clip=None)
    assert free.max() > 1 and (G.predict(model, free) == 1).all()  # unbounded, it crosses
    narrow = attack(model, x, clip=(0.2, 0.95))
    assert narrow.min() >= 0.2 and narrow.max() <= 0.95


def test_minimal_perturbation_norm_is_inf_where_deepfool_fails():
    model, x = _dark_linear()
    assert torch.isinf(G.minimal_perturbation_norm(model, x)).all()  # no label change inside [0, 1]
    free = G.minimal_perturbation_norm(model, x, clip=None, bisection_steps=30)
    torch.testing.assert_close(free, torch.full((3,), (6.0 - 3.6) / 2.0, dtype=torch.float64), rtol=1e-6, atol=0)
    assert G.minimal_perturbation_norm(model, x[:0]).shape == (0,)
