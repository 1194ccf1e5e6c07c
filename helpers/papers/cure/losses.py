"""The curvature regularizer of CURE (Moosavi-Dezfooli et al. 2019) and its step schedule.

Each function documents its paper, the shapes it takes and the value ranges it expects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from helpers.core.attacks import eval_mode
from helpers.core.params import check_nonnegative

# ----------------------------------------------------------------------------------------------------------
# CURE (Moosavi-Dezfooli et al. 2019)
# ----------------------------------------------------------------------------------------------------------


def cure_regularizer(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float, *, per_example: bool = True
) -> torch.Tensor:
    """Curvature regularizer of CURE (Moosavi-Dezfooli, Fawzi, Uesato & Frossard 2019, "Robustness via
    curvature regularization, and vice versa"): the batch mean of ``||grad l(x + h z) - grad l(x)||_2^2``.

    ``l`` is each example's cross-entropy, gradients are with respect to the input, and
    ``z = sign(grad l(x)) / ||sign(grad l(x))||_2`` is a unit direction (held constant, as in the paper), so
    the term is a finite-difference estimate of ``h^2 ||H z||^2``: it penalises the input-space curvature of
    the loss along the direction an l-inf attacker would take. The graph is kept (double backprop), so
    ``(ce + lam * cure_regularizer(...)).backward()`` trains on it.

    - ``x``: (B, C, H, W) images in [0, 1] (normalisation is a model layer); ``y``: (B,) int64 labels.
    - ``h``: the finite-difference step, an l2 length in pixel units (``x + h z`` is not clipped to [0, 1]).
    - ``per_example``: evaluate the term with every submodule in eval mode (BatchNorm on running statistics),
      so each example's gradient depends on that example alone, as the paper's per-example definition needs;
      the model's modes are restored afterwards. ``False`` uses the model as it is.

    Returns a scalar tensor (the mean over the batch) attached to the parameters' graph.
    """
    h = check_nonnegative("h", h)
    ctx = eval_mode(model) if per_example else contextlib.nullcontext()
    with ctx, torch.enable_grad():
        x0 = x.detach().requires_grad_(True)
        (g0,) = torch.autograd.grad(F.cross_entropy(model(x0), y, reduction="sum"), x0, create_graph=True)
        z = g0.detach().sign()
        z = z / z.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (z.dim() - 1)))
        x1 = (x.detach() + h * z).requires_grad_(True)
        (g1,) = torch.autograd.grad(F.cross_entropy(model(x1), y, reduction="sum"), x1, create_graph=True)
        return (g1 - g0).flatten(1).pow(2).sum(1).mean()


def cure_h_schedule(progress: float, h_final: float, *, h_start: float = 0.0, warmup: float = 0.5) -> float:
    """CURE's step ``h`` at training ``progress`` in [0, 1]: linear from ``h_start`` to ``h_final`` over the
    first ``warmup`` fraction of training, then constant.

    Moosavi-Dezfooli et al. (2019) grow h during the first epochs (their reference code: 0.1, 0.4, 0.8, 1.8,
    then 3 over 10 epochs, in inputs normalised by std ~0.2, i.e. about 0.02 to 0.6 in [0, 1] pixel units);
    a small h at the start keeps the finite difference meaningful while the loss surface is still rough.
    """
    h_final = check_nonnegative("h_final", h_final)
    h_start = check_nonnegative("h_start", h_start)
    warmup = check_nonnegative("warmup", warmup)
    ramp = 1.0 if warmup == 0 else min(1.0, max(0.0, progress) / warmup)
    return h_start + (h_final - h_start) * ramp


def cure_penalty(
    lam: float, h_final: float, *, h_start: float = 0.0, warmup: float = 0.5
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor]:
    """CURE's training term as a ``regularizer(model, x, y, progress)`` hook of :func:`helpers.core.training.fit`:
    ``lam * cure_regularizer(model, x, y, h)`` with ``h = cure_h_schedule(progress, h_final, ...)``.

    Moosavi-Dezfooli et al. (2019) weight the term by ``lam`` = 4 and grow ``h`` during the first epochs; ``x``
    (B, C, H, W) in [0, 1], ``y`` (B,) labels, ``progress`` in [0, 1) as ``fit`` passes it. Returns a scalar
    tensor attached to the parameters' graph.
    """
    lam = check_nonnegative("lam", lam)
    cure_h_schedule(0.0, h_final, h_start=h_start, warmup=warmup)  # checks the schedule before any training

    def term(model: nn.Module, x: torch.Tensor, y: torch.Tensor, progress: float) -> torch.Tensor:
        h = cure_h_schedule(progress, h_final, h_start=h_start, warmup=warmup)
        return lam * cure_regularizer(model, x, y, h)

    return term
