"""CURE's curvature regularizer (Moosavi-Dezfooli et al. 2019) against a direct per-example computation,
its double-backprop gradient, its h schedule, and the ``regularizer`` hook of ``training.fit``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.core import data, training
from helpers.core.attacks import eval_mode
from helpers.core.device import seed_everything
from helpers.papers.cure.losses import cure_h_schedule, cure_penalty, cure_regularizer


def _tiny(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A smooth (tanh) convolutional net on 1x4x4 inputs, 3 classes: every term has a non-zero curvature."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(48, 3))
    return net.to(dtype)


def _direct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float) -> torch.Tensor:
    """The definition, one example at a time: ||grad l(x + h z) - grad l(x)||^2, z = sign(g) / ||sign(g)||."""
    values = []
    for xi, yi in zip(x, y, strict=True):

        def grad_at(p: torch.Tensor, yi: torch.Tensor = yi) -> torch.Tensor:
            p = p.clone().requires_grad_(True)
            loss = F.cross_entropy(model(p[None]), yi[None])
            return torch.autograd.grad(loss, p)[0]

        g = grad_at(xi)
        z = g.sign() / g.sign().norm()
        values.append((grad_at(xi + h * z) - g).pow(2).sum())
    return torch.stack(values).mean()


def test_matches_direct_per_example_computation():
    model = _tiny()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=g)
    for h in (0.05, 0.5, 2.0):
        got = cure_regularizer(model, x, y, h)
        torch.testing.assert_close(got, _direct(model, x, y, h), rtol=1e-10, atol=1e-12)
        assert got > 0
    assert float(cure_regularizer(model, x, y, 0.0).detach()) == 0.0


def test_is_differentiable_by_double_backprop():
    model = _tiny()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    reg = cure_regularizer(model, x, y, 0.3)
    assert reg.requires_grad
    grads = torch.autograd.grad(reg, list(model.parameters()))
    assert all(torch.isfinite(gr).all() for gr in grads) and any(gr.abs().sum() > 0 for gr in grads)
    # the parameter gradient is that of the function (z is piecewise constant): check it numerically
    weight = model[3].weight

    def as_function_of(w: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            weight.copy_(w)
        return cure_regularizer(model, x, y, 0.3)

    w0 = weight.detach().clone()
    direction = torch.randn(w0.shape, generator=g, dtype=torch.float64)
    eps = 1e-6
    numeric = (as_function_of(w0 + eps * direction) - as_function_of(w0 - eps * direction)) / (2 * eps)
    with torch.no_grad():
        weight.copy_(w0)
    analytic = (torch.autograd.grad(cure_regularizer(model, x, y, 0.3), weight)[0] * direction).sum()
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-9)


def test_per_example_means_batchnorm_does_not_couple_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(64, 3))
    model.train()
    x, y = torch.rand(5, 1, 4, 4), torch.randint(0, 3, (5,))
    model(x)  # give BatchNorm running statistics
    whole = cure_regularizer(model, x, y, 0.2)
    alone = torch.stack([cure_regularizer(model, x[i : i + 1], y[i : i + 1], 0.2) for i in range(5)]).mean()
    torch.testing.assert_close(whole, alone, rtol=1e-4, atol=1e-7)
    assert model.training and model[1].training  # modes restored
    with eval_mode(model):
        torch.testing.assert_close(cure_regularizer(model, x, y, 0.2, per_example=False), whole)


def test_h_schedule_ramps_then_stays():
    assert cure_h_schedule(0.0, 0.6, h_start=0.02) == pytest.approx(0.02)
    assert cure_h_schedule(0.25, 0.6, h_start=0.0, warmup=0.5) == pytest.approx(0.3)
    assert cure_h_schedule(0.9, 0.6, warmup=0.5) == pytest.approx(0.6)
    assert cure_h_schedule(0.1, 0.6, warmup=0.0) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="^h_final must be"):
        cure_h_schedule(0.1, -1.0)
    with pytest.raises(ValueError, match="^h must be"):
        cure_regularizer(_tiny(), torch.rand(1, 1, 4, 4, dtype=torch.float64), torch.tensor([0]), -0.1)


def test_cure_penalty_is_the_weighted_term_on_the_schedule():
    model = _tiny()
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4,), generator=g)
    term = cure_penalty(4.0, 0.6, h_start=0.02, warmup=0.5)
    for progress in (0.0, 0.25, 0.9):
        h = cure_h_schedule(progress, 0.6, h_start=0.02, warmup=0.5)
        torch.testing.assert_close(term(model, x, y, progress), 4.0 * cure_regularizer(model, x, y, h))
    late, early = term(model, x, y, 0.9), term(model, x, y, 0.0)
    assert late.requires_grad and float(late.detach()) > float(early.detach())  # h grew
    assert float(cure_penalty(0.0, 0.6)(model, x, y, 0.5).detach()) == 0.0
    with pytest.raises(ValueError, match="^lam must"):
        cure_penalty(-1.0, 0.6)
    with pytest.raises(ValueError, match="^h_final must"):
        cure_penalty(1.0, -0.6)  # checked when the term is made, before any training


def _toy_loader() -> data.Loader:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(128) % 2
    x = torch.randint(0, 60, (128, 1, 4, 4), generator=g)
    x[y == 0, :, :, :2] += 150
    x[y == 1, :, :, 2:] += 150
    return data.Loader(data.TensorData(x.clamp(0, 255).to(torch.uint8), y, ("a", "b")), 32, shuffle=True)


def test_fit_regularizer_hook_adds_the_term_and_sees_progress():
    seen = []

    def reg(model: nn.Module, x: torch.Tensor, y: torch.Tensor, progress: float) -> torch.Tensor:
        seen.append(progress)
        return 0.1 * cure_regularizer(model, x, y, cure_h_schedule(progress, 0.5))

    def run(regularizer):
        seed_everything(0)
        model = _tiny(dtype=torch.float32)[:-1].append(nn.Linear(48, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        return model, training.fit(model, _toy_loader(), optimizer=opt, epochs=2, regularizer=regularizer)

    model, hist = run(reg)
    assert seen == [(e + b / 4) / 2 for e in range(2) for b in range(4)]
    assert all(r["train_reg"] > 0 for r in hist)
    plain, hist0 = run(None)
    assert "train_reg" not in hist0[0]
    assert hist[0]["train_loss"] != hist0[0]["train_loss"]  # the term entered the loss and the update
    assert not all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values(), strict=True)
    )
