"""The document's curriculum (Sec. 1) and the PGD adversaries of adversarial training.

:func:`schedule` is the curriculum: with ``t`` = elapsed epochs / total epochs, the PGD radius
``eps = 0.01 (1 - t) + 0.1 t`` and the iteration count ``int(10 (1 - t) + 40 t)`` (Cai et al. 2018's idea
without their learning stages); ``iter_scale`` shrinks the iteration counts for CPU profiles and keeps the
schedule's shape. :func:`curriculum_adversary` and :func:`fixed_adversary` turn the schedule, or one fixed
l-inf PGD attack, into a :class:`~helpers.core.training.Adversary` that replaces a fraction (the document's
"attacked ratio") of each training batch. Radii and steps are in [0, 1] pixel units.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from helpers.core import attacks as A
from helpers.core import training
from helpers.core.params import check_int, check_positive, check_real


def schedule(
    t: float,
    *,
    eps_start: float = 0.01,
    eps_end: float = 0.1,
    iters_start: int = 10,
    iters_end: int = 40,
    iter_scale: float = 1.0,
) -> tuple[float, int]:
    """``(eps, iterations)`` of the curriculum at training progress ``t`` in [0, 1] (the document's Sec. 1).

    ``eps = eps_start (1 - t) + eps_end t``; ``iterations = int(iter_scale * (iters_start (1 - t) + iters_end
    t))``, at least 1. With the defaults: (0.01, 10) at t = 0, (0.055, 25) at t = 1/2, (0.1, 40) at t = 1.
    """
    t = check_real("t", t, low=0.0, high=1.0)
    check_real("iter_scale", iter_scale, low=0.0, high=1.0, low_open=True)
    eps = eps_start * (1 - t) + eps_end * t
    iters = max(1, int(iter_scale * (iters_start * (1 - t) + iters_end * t) + 1e-9))
    return eps, iters


def curriculum_adversary(
    epochs: int,
    *,
    fraction: float = 0.5,
    iter_scale: float = 1.0,
    step_ratio: float = 2.5,
    generator: torch.Generator | None = None,
    **schedule_kw: Any,
) -> training.ScheduledAdversary:
    """Curriculum adversarial training: l-inf PGD whose radius and iterations follow :func:`schedule`.

    ``t`` is the number of *elapsed* epochs over ``epochs`` (constant within an epoch, as in the document),
    so the last epoch trains at ``t = (epochs - 1) / epochs``. Each PGD run starts at a random point of the
    ball and steps by ``step_ratio * eps / iterations`` (Madry et al.'s rule; the document gives no step).
    ``fraction`` of every batch is attacked (the document: 0.5).
    """
    check_int("epochs", epochs, low=1)
    check_positive("step_ratio", step_ratio)

    def make(progress: float) -> A.AttackFn:
        t = math.floor(progress * epochs + 1e-9) / epochs
        eps, iters = schedule(t, iter_scale=iter_scale, **schedule_kw)
        return A.make_attack(
            "pgd", eps, alpha=step_ratio * eps / iters, steps=iters, random_start=True, generator=generator
        )

    return training.ScheduledAdversary(make, fraction)


def fixed_adversary(
    eps: float, alpha: float, steps: int, *, fraction: float = 0.5, generator: torch.Generator | None = None
) -> training.Adversary:
    """PGD adversarial training at one radius ``eps`` and step ``alpha`` on ``fraction`` of each batch."""
    attack = A.make_attack("pgd", eps, alpha=alpha, steps=steps, random_start=True, generator=generator)
    return training.Adversary(attack, fraction)
