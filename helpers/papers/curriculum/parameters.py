"""The chapter's parameters and their valid ranges, checked by :func:`helpers.experiment.start` before any compute.

:data:`PARAMETERS` gives each parameter of ``notebooks/02_curriculum_rse.py`` (besides ``profile``, ``seed`` and
``device``) its rule, in the order of the parameters cell (the run record keeps that order);
:func:`check_parameters` adds the constraints that tie two parameters together. Every failure is a ``ValueError``
that starts with the parameter's name and states its valid range. Radii and steps are in [0, 1] pixel units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers.core import params as P

EPS = P.real(0.0, 1.0, low_open=True)  # a radius in (0, 1], pixel units
COUNT = P.integer(1)
VIT = P.list_of(COUNT, min_len=2)  # [depth, embedding size]

PARAMETERS: dict[str, P.Rule] = {
    "n_train": P.integer(200, 50000),
    "n_test": P.integer(50, 10000),
    "n_battery": P.integer(50),  # at most n_test: check_parameters
    "n_fig4": P.integer(50),  # at most n_test
    "batch_size": P.integer(2),
    "epochs": P.integer(2),
    "defense_epochs": COUNT,
    "wide_epochs": COUNT,
    "sgd_lr": P.positive(),
    "adamw_lr": P.positive(),
    "attacked_ratio": P.fraction(),
    "iter_scale": EPS,  # a scale in (0, 1], not a radius, but the same interval
    "train_eps": EPS,
    "train_delta": P.positive(),
    "train_steps": COUNT,
    "strong_eps": EPS,
    "battery_eps": P.list_of(EPS),
    "battery_delta": P.list_of(P.positive()),
    "battery_steps": COUNT,
    "eval_steps": COUNT,
    "eot_samples": P.integer(2),
    "fig4_eps": P.list_of(EPS, min_len=2),
    "width_net": COUNT,
    "width_big": COUNT,  # above width_net
    "wrn_depth": P.integer(10),  # 6 n + 4
    "wrn_width": COUNT,
    "vit_small": VIT,  # exactly two items, the size a multiple of 4 (the attention heads)
    "vit_large": VIT,
    "dropout": P.real(0.0, 1.0, high_open=True),
    "pni_alpha": P.nonnegative(),
    "sigma_init": P.nonnegative(),
    "sigma_inner": P.nonnegative(),
    "rse_passes": COUNT,
    "test_noise": EPS,
    "n_rank": P.integer(100, 50000),
    "n_nes": P.integer(10),  # at most n_test
    "nes_sigma": P.positive(),
    "nes_samples": P.integer(2),  # even: antithetic pairs
    "nes_eps": EPS,
    "nes_delta": P.positive(),
    "nes_budgets": P.list_of(COUNT, min_len=2),  # each at least nes_samples
    "suite_budget": P.choice("full", "reduced"),
    "n_suite": P.integer(50),  # at most n_test
    "sanity_steps": P.list_of(COUNT, min_len=2),
    "square_queries": COUNT,
}


def check_parameters(p: Mapping[str, Any]) -> None:
    """The constraints between parameters (``p``: the values :data:`PARAMETERS` accepted); raises ValueError."""
    for name in ("n_battery", "n_fig4", "n_nes", "n_suite"):  # subsets of the test images
        P.check_int(name, p[name], low=50 if name != "n_nes" else 10, high=p["n_test"])
    if p["width_big"] <= p["width_net"]:
        raise ValueError(f"width_big must exceed width_net={p['width_net']} (got {p['width_big']})")
    if (p["wrn_depth"] - 4) % 6:
        raise ValueError(f"wrn_depth must be 6n + 4, e.g. 10, 16, 28 (got {p['wrn_depth']})")
    for name in ("vit_small", "vit_large"):
        if len(p[name]) != 2 or p[name][1] % 4:
            raise ValueError(f"{name} must be [depth, size] with size a multiple of 4 (got {p[name]})")
    if p["nes_samples"] % 2:
        raise ValueError(f"nes_samples must be even (antithetic pairs) (got {p['nes_samples']})")
    P.check_list("nes_budgets", p["nes_budgets"], lambda n, v: P.check_int(n, v, low=p["nes_samples"]), min_len=2)
