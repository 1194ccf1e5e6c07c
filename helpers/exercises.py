"""Self-checks for the book's coding exercises: each compares a student's function with the tested one.

A check returns quietly when the answer is right and raises ``AssertionError`` with a hint when it is wrong,
so a self-check cell is one call: ``exercises.check_l2_projection(project_l2)``. The inputs are small and
seeded, so a check takes well under a second on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from helpers.core import attacks

__all__ = [
    "check_l2_projection",
    "check_fgsm",
    "check_kurtosis",
    "check_margin_loss",
    "check_cure_term",
    "check_segment_labels",
    "check_zphot",
    "check_photoz_metrics",
    "check_nes_gradient",
    "check_curriculum_schedule",
    "check_l2_random_start",
    "check_mat_max",
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
    """``fn(model, x, y, eps)`` must be the l-inf FGSM of :func:`helpers.core.attacks.fgsm`."""
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
            f"only {agree:.1%} of the pixels agree with helpers.core.attacks.fgsm. Step by eps times the sign of the "
            "input gradient of the summed cross-entropy (torch.autograd.grad), then clip to [0, 1]."
        )


def check_kurtosis(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(z, y, num_classes)`` must be the per-class, per-dimension Pearson kurtosis of
    :func:`helpers.papers.regnet.losses.kurtosis`."""
    from helpers.papers.regnet import losses

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
    """``fn(z, y)`` must be the summed Carlini-Wagner margin of :func:`helpers.papers.regnet.latent.margin_loss`."""
    from helpers.papers.regnet import latent

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
    """``fn(model, x, y, h)`` must be the CURE finite-difference term of
    :func:`helpers.papers.cure.losses.cure_regularizer`."""
    from helpers.papers.cure import losses

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
    from helpers.papers.cure import geometry

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
                "the labels differ from helpers.papers.cure.geometry.segment_labels: use the points x0 + a (x1 - x0) "
                "for n "
                "values of a evenly spaced in [0, 1], both ends included, and the model's argmax in eval mode"
            )


def check_zphot(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """``fn(logits)`` must be the PDF-weighted mean redshift of
    :func:`helpers.papers.photoz.metrics.zphot_from_logits`."""
    from helpers.papers.photoz import metrics

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(32, 180, generator=g) * 3
    logits[:4] = -1e4
    logits[torch.arange(4), torch.tensor([0, 17, 90, 179])] = 0.0  # four one-bin PDFs: zphot is the bin's centre
    _close(
        "zphot(logits)",
        torch.as_tensor(_call(fn, logits.clone())).reshape(-1),
        metrics.zphot_from_logits(logits),
        atol=1e-6,
        rtol=1e-5,
        hint="Softmax the 180 logits into a PDF, then weight the bin centres (i + 0.5) / 180, not the bin edges "
        "i / 180 and not only the most probable bin.",
    )


def check_photoz_metrics(fn: Callable[[torch.Tensor, torch.Tensor], dict]) -> None:
    """``fn(zphot, zspec)`` must give the bias, sigma_mad and eta of
    :func:`helpers.papers.photoz.metrics.photoz_metrics`."""
    from helpers.papers.photoz import metrics

    g = torch.Generator().manual_seed(4)
    zspec = torch.rand(400, generator=g, dtype=torch.float64) * 0.3 + 0.02
    zphot = zspec + 0.02 * (1 + zspec) * torch.randn(400, generator=g, dtype=torch.float64) + 0.004
    zphot[:30] += 0.2 * torch.rand(30, generator=g, dtype=torch.float64)  # outliers
    hints = {
        "bias": "the bias is the mean of dz = (zphot - zspec) / (1 + zspec)",
        "sigma_mad": "sigma_MAD is 1.4826 times the median of |dz - median(dz)|, with the usual median (the mean "
        "of the two middle values for an even count: torch.quantile(v, 0.5), not Tensor.median)",
        "eta": "eta is the fraction of galaxies with |dz| > 0.05 (dz divided by 1 + zspec)",
    }
    # An even count whose two middle values differ, where the usual median and the lower median disagree.
    cases = (
        (zphot, zspec),
        (torch.tensor([0.11, 0.3, 0.12, 0.2]).double(), torch.tensor([0.1, 0.1, 0.1, 0.1]).double()),
    )
    for zp, zs in cases:
        got = _call(fn, zp.clone(), zs.clone())
        want = metrics.photoz_metrics(zp, zs)
        if not isinstance(got, dict) or set(want) - set(got):
            raise AssertionError(f"return a dict with the keys {sorted(want)} (got {got!r})")
        for k, v in want.items():
            if abs(float(got[k]) - v) > 1e-6 + 1e-4 * abs(v):
                raise AssertionError(f"{k} is {float(got[k]):.6g}, expected {v:.6g}: {hints[k]}")


def check_nes_gradient(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(model, x, y, sigma, n_samples, generator)`` must be an antithetic NES estimate of the gradient of the
    softmax probability ``P(y|x)``: close to the true gradient with many queries, at ``n_samples`` queries per image.
    """
    g = torch.Generator().manual_seed(5)
    lin = nn.Linear(6, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(3, 6, generator=g, dtype=torch.float64))
        lin.bias.copy_(torch.randn(3, generator=g, dtype=torch.float64))
    x = torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.5
    y = torch.tensor([0, 1, 2, 0])
    x_req = x.clone().requires_grad_(True)
    (true,) = torch.autograd.grad(lin(x_req).softmax(1).gather(1, y[:, None]).sum(), x_req)

    queried = [0]

    def model(inp: torch.Tensor) -> torch.Tensor:
        queried[0] += len(inp)
        return lin(inp.double())

    n_samples = 20000
    x_in = x.clone()
    with torch.no_grad():
        est = _call(fn, model, x, y, 0.01, n_samples, torch.Generator().manual_seed(6))
    if not isinstance(est, torch.Tensor) or est.shape != x.shape:
        raise AssertionError(f"return one gradient per image, a tensor of shape {tuple(x.shape)}")
    if not torch.equal(x, x_in):
        raise AssertionError("your NES gradient modified its input x in place; work on a copy")
    if queried[0] != len(x) * n_samples:
        raise AssertionError(
            f"the model saw {queried[0]} queries for {len(x)} images, expected n_samples = {n_samples} per image: "
            "n_samples / 2 Gaussian directions u, each queried at x + sigma u and at x - sigma u (antithetic pairs)"
        )
    est = est.double()
    cos = torch.nn.functional.cosine_similarity(est, true, dim=1)
    ratio = est.norm(dim=1) / true.norm(dim=1)
    if cos.min() < 0.97:
        raise AssertionError(
            f"with {n_samples} queries the estimate should point along the true gradient of P(y|x) (cosine "
            f"{cos.min():.2f}): weight each direction u by P(y|x + sigma u) - P(y|x - sigma u), the softmax "
            "probability of the true class (not the loss, not the logit)"
        )
    if (ratio - 1).abs().max() > 0.1:
        raise AssertionError(
            f"the estimate has {ratio.mean():.2f} times the true gradient's length: divide the sum over the "
            "n = n_samples / 2 directions by 2 n sigma"
        )


def check_curriculum_schedule(fn: Callable[..., tuple[float, int]]) -> None:
    """``fn(t, iter_scale)`` must be the curriculum's ``(eps, iterations)`` of
    :func:`helpers.papers.curriculum.schedule`."""
    from helpers.papers import curriculum

    for t in (0.0, 0.2, 1 / 3, 0.5, 0.8, 1.0):
        for scale in (1.0, 0.2, 0.1, 0.01):
            got = _call(fn, t, scale)
            want = curriculum.schedule(t, iter_scale=scale)
            if not isinstance(got, tuple) or len(got) != 2:
                raise AssertionError(f"return the pair (eps, iterations) (got {got!r})")
            if abs(float(got[0]) - want[0]) > 1e-9:
                raise AssertionError(
                    f"at t={t:g} the radius is {float(got[0]):.4g}, expected {want[0]:.4g}: interpolate linearly "
                    "from 0.01 at t = 0 to 0.1 at t = 1"
                )
            if int(got[1]) != want[1] or got[1] != int(got[1]):
                raise AssertionError(
                    f"at t={t:g}, iter_scale={scale:g} the iteration count is {got[1]!r}, expected {want[1]}: "
                    "int(iter_scale * (10 (1 - t) + 40 t)), truncated to an integer but never below 1"
                )


def check_l2_random_start(fn: Callable[..., torch.Tensor]) -> None:
    """``fn(shape, eps, generator)`` must draw one perturbation per sample, uniform in the l2 ball of radius eps."""
    n = 20000
    for shape in ((n, 2), (n, 1, 2, 2), (200, 3, 32, 32)):
        eps = 0.5
        delta = torch.as_tensor(_call(fn, shape, eps, torch.Generator().manual_seed(7))).double()
        if tuple(delta.shape) != tuple(shape):
            raise AssertionError(f"expected a tensor of shape {shape}, got {tuple(delta.shape)}")
        d = delta[0].numel()
        r = delta.flatten(1).norm(dim=1) / eps
        if r.max() > 1 + 1e-6:
            raise AssertionError("some perturbations leave the ball: ||delta_i||_2 <= eps for every sample")
        if len(delta) < n:  # d = 3072: uniform in the ball puts almost everything near the surface
            if r.mean() < 0.99:
                raise AssertionError(
                    f"in d = {d} dimensions the mean of ||delta|| / eps should be d / (d + 1) = {d / (d + 1):.4f}, "
                    f"got {r.mean():.3f}: the radius is eps * U^(1/d), U uniform on [0, 1], not eps * U"
                )
            continue
        for q in (0.5, 0.8):
            want, got = q**d, float((r <= q).double().mean())
            if abs(got - want) > 0.02:
                raise AssertionError(
                    f"in d = {d} dimensions a share (r/eps)^d = {want:.3f} of the draws should lie within "
                    f"{q:g} eps, got {got:.3f}: draw the radius as eps * U^(1/d) (U uniform on [0, 1]) and the "
                    "direction as a normalized Gaussian vector (uniform on the sphere)"
                )
        flat = delta.flatten(1)
        var = flat.var(0) / eps**2
        if flat.mean(0).abs().max() > 0.02 * eps or (var - 1 / (d + 2)).abs().max() > 0.15 / (d + 2):
            raise AssertionError(
                f"the draws are not isotropic: every coordinate should have mean 0 and variance eps^2 / (d + 2) "
                f"= {1 / (d + 2):.3f} eps^2, got {var.min():.3f} to {var.max():.3f}; take the direction as a "
                "Gaussian vector divided by its norm (uniform on the sphere), not a uniform draw in the cube"
            )


def check_mat_max(fn: Callable[..., torch.Tensor], model: nn.Module | None = None) -> None:
    """``fn(model, x_linf, x_l2, y)`` must keep, per sample, the candidate with the higher cross-entropy (MAT-Max)."""
    g = torch.Generator().manual_seed(8)
    if model is None:
        torch.manual_seed(8)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    x = torch.rand(64, 3, 4, 4, generator=g)
    x_linf = (x + 0.3 * (2 * torch.rand(x.shape, generator=g) - 1)).clamp(0, 1)
    x_l2 = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    y = torch.randint(0, 10, (64,), generator=g)
    with attacks.eval_mode(model), torch.no_grad():
        p = next(model.parameters())
        a, b, yy = x_linf.to(p.device), x_l2.to(p.device), y.to(p.device)
        got = _call(fn, model, a.clone(), b.clone(), yy)
        ce = torch.nn.functional.cross_entropy
        la, lb = ce(model(a), yy, reduction="none"), ce(model(b), yy, reduction="none")
    want = torch.where((la >= lb).view(-1, 1, 1, 1), a, b)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        raise AssertionError(f"return one image per sample, shape {tuple(want.shape)}")
    if not torch.equal(got.to(want.device), want):
        wrong = int((got.to(want.device) != want).flatten(1).any(1).sum())
        raise AssertionError(
            f"{wrong} of {len(y)} samples got the wrong candidate: compute each image's own cross-entropy "
            "(reduction='none') under both attacks and keep, image by image, the one with the higher loss; the "
            "choice is per sample, not one choice for the whole batch"
        )
