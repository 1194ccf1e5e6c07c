"""Self-checks for the book's coding exercises: each compares a student's function with the tested one.

A check returns quietly when the answer is right and raises ``AssertionError`` with a hint when it is wrong,
so a self-check cell is one call: ``exercises.check_l2_projection(project_l2)``. The inputs are small and
seeded, so a check takes well under a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from helpers import attacks

__all__ = [
    "check_l2_projection",
    "check_fgsm",
    "check_kurtosis",
    "check_margin_loss",
    "check_cure_term",
    "check_segment_labels",
]


def _call(fn: Callable[..., torch.Tensor], *args: object) -> torch.Tensor:
    """``fn(*args)``, with a stub's ``NotImplementedError`` turned into the self-check's ``AssertionError``."""
    try:
        return fn(*args)
    except NotImplementedError as err:
        name = getattr(fn, "__name__", "your function")
        raise AssertionError(f"{name} is not implemented yet: complete it in the cell above ({err})") from None


def _close(name: str, got: torch.Tensor, want: torch.Tensor, *, atol: float, rtol: float, hint: str) -> None:
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name} must return a torch.Tensor (got {type(got).__name__})")
    if got.shape != want.shape:
        raise AssertionError(f"{name} returned shape {tuple(got.shape)}, expected {tuple(want.shape)}. {hint}")
    if not torch.allclose(got.double(), want.double(), atol=atol, rtol=rtol, equal_nan=True):
        err = (got.double() - want.double()).abs().nan_to_num(float("inf")).max().item()
        raise AssertionError(f"{name} differs from helpers by up to {err:.3g}. {hint}")


def check_l2_projection(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """``fn(delta, eps)`` must project each sample of ``delta`` (B, ...) onto the l2 ball of radius ``eps``."""
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(6, 1, 28, 28, generator=g) * torch.tensor([0.01, 0.1, 0.5, 1.0, 3.0, 10.0]).view(-1, 1, 1, 1)
    for eps in (0.5, 2.0):
        got = _call(fn, delta.clone(), eps)
        want = attacks.project(delta, eps, "l2")
        _close(
            f"project_l2(delta, eps={eps})",
            got,
            want,
            atol=1e-5,
            rtol=1e-4,
            hint="Each sample is scaled by min(1, eps / ||delta_i||_2): samples inside the ball are unchanged, "
            "the others are shrunk onto its surface; the norm is over all pixels of one sample, not the batch.",
        )
    zero = _call(fn, torch.zeros(2, 3, 4, 4), 1.0)
    if not torch.isfinite(zero).all() or zero.abs().max() > 0:
        raise AssertionError("project_l2 must map a zero perturbation to zero (guard the division by the norm)")


def check_fgsm(fn: Callable[..., torch.Tensor], model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> None:
    """``fn(model, x, y, eps)`` must be the l-inf FGSM of :func:`helpers.attacks.fgsm`."""
    x_in = x.clone()
    with attacks.eval_mode(model):
        got = _call(fn, model, x, y, eps)
        want = attacks.fgsm(model, x, y, eps)
    if not torch.equal(x, x_in):
        raise AssertionError("your FGSM modified its input x in place; work on a copy")
    if (got - x).abs().max() > eps + 1e-6 or got.min() < 0 or got.max() > 1:
        raise AssertionError("the adversarial images must stay within eps of x (l-inf) and inside [0, 1]")
    agree = float((got - want).abs().le(1e-5).float().mean())
    if agree < 0.99:
        raise AssertionError(
            f"only {agree:.1%} of the pixels agree with helpers.attacks.fgsm. Step by eps times the sign of the "
            "input gradient of the summed cross-entropy (torch.autograd.grad), then clip to [0, 1]."
        )


def check_kurtosis(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(z, y, num_classes)`` must be the per-class, per-dimension Pearson kurtosis of ``helpers.losses``."""
    from helpers import losses

    g = torch.Generator().manual_seed(1)
    z = torch.cat([torch.randn(200, 3, generator=g), torch.rand(200, 3, generator=g) * 4, torch.randn(200, 3) ** 3])
    y = torch.arange(3).repeat_interleave(200)
    got = _call(fn, z, y, 3)
    want = losses.kurtosis(z, y, num_classes=3)
    _close(
        "kurtosis(z, y, 3)",
        got,
        want,
        atol=1e-4,
        rtol=1e-3,
        hint="Centre each class on its own mean, then divide the mean fourth power by the squared mean second "
        "power (plain, biased moments), per class and per dimension: the result has shape (classes, d).",
    )


def check_margin_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """``fn(z, y)`` must be the summed Carlini-Wagner margin of :func:`helpers.latent.margin_loss`."""
    from helpers import latent

    g = torch.Generator().manual_seed(2)
    z = torch.randn(64, 10, generator=g) * 30
    y = torch.randint(0, 10, (64,), generator=g)
    _close(
        "margin_loss(z, y)",
        _call(fn, z, y).reshape(()),
        latent.margin_loss(z, y),
        atol=1e-3,
        rtol=1e-5,
        hint="For each sample take the largest output among the wrong classes minus the output of the true class, "
        "then sum over the batch (mask the true class with -inf before the max).",
    )


def check_cure_term(
    fn: Callable[..., torch.Tensor], model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float
) -> None:
    """``fn(model, x, y, h)`` must be the CURE finite-difference term of :func:`helpers.losses.cure_regularizer`."""
    from helpers import losses

    with attacks.eval_mode(model):
        got = _call(fn, model, x, y, h)
    want = losses.cure_regularizer(model, x, y, h)
    _close(
        f"cure_term(model, x, y, h={h})",
        torch.as_tensor(got).detach().reshape(()),
        want.detach(),
        atol=1e-6,
        rtol=2e-3,
        hint="z is sign(g) scaled to unit l2 norm per sample, g the input gradient of the summed cross-entropy "
        "at x; the term is the batch mean of ||g(x + h z) - g(x)||_2^2 with the model in eval mode.",
    )


def check_segment_labels(
    fn: Callable[..., torch.Tensor], model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, n: int = 32
) -> None:
    """``fn(model, x0, x1, n)`` must give the predicted labels of ``n`` evenly spaced points from x0 to x1."""
    from helpers import geometry

    # Also the segment to the colour-inverted image, along which the label surely changes, in both directions.
    for a, b in ((x0, x1), (x0, 1 - x0), (1 - x0, x0)):
        with attacks.eval_mode(model):
            got = torch.as_tensor(_call(fn, model, a, b, n)).cpu()
        want = geometry.segment_labels(model, a, b, n)
        if got.shape != want.shape:
            raise AssertionError(
                f"expected {n} labels, one per point (shape {tuple(want.shape)}), got {tuple(got.shape)}"
            )
        if not torch.equal(got.long(), want.long()):
            raise AssertionError(
                "the labels differ from helpers.geometry.segment_labels: use the points x0 + a (x1 - x0) for n "
                "values of a evenly spaced in [0, 1], both ends included, and the model's argmax in eval mode"
            )
