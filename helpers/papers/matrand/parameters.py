"""The chapter's parameters: each one's valid range, checked before any compute (:func:`helpers.experiment.start`).

Radii and steps are in [0, 1] pixel units; fractions of training (milestones) are open on both ends. The rules
follow the parameters cell of ``notebooks/03_matrand_wrn.py`` in order; :func:`check_parameters` adds the
constraints between parameters. Every failure is a ``ValueError`` whose message starts with the parameter's name.
"""

from __future__ import annotations

from typing import Any

from helpers.core import params as P

_milestone = P.fraction(open_ends=True)  # a fraction of training after which the learning rate drops

PARAMETERS: dict[str, P.Rule] = {
    "n_train": P.integer(200, 50000),
    "n_test": P.integer(50, 10000),
    "val_fraction": P.real(0.0, 0.5, low_open=True),
    "batch_size": P.integer(2),
    "weight_decay": P.nonnegative(),
    "eps": P.real(0.0, 1.0, low_open=True),
    "alpha": P.positive(),
    "eps_l2": P.positive(),
    "alpha_l2": P.positive(),
    "train_steps": P.integer(1),
    "eval_steps": P.integer(1),
    "eot_samples": P.integer(2),  # EOT averages at least two gradient draws
    "noise_sigma": P.real(0.0, 1.0, low_open=True),
    "basic_width": P.integer(1),
    "basic_epochs": P.integer(2),
    "basic_lr": P.positive(),
    "basic_milestones": P.list_of(_milestone),
    "eps_sweep": P.list_of(P.real(0.0, 1.0), min_len=3),
    "wrn_width": P.integer(1),
    "wider_width": P.integer(1),
    "resnet20_width": P.integer(1),
    "vgg_width": P.integer(1),
    "epochs": P.integer(2),
    "lr": P.positive(),
    "milestones": P.list_of(_milestone),
    "mat_max": P.boolean(),
    "natural_fraction": P.fraction(),
    "overfit_model": P.choice("basicnet", "resnet20", "resnet18", "vgg11"),
    "overfit_width": P.integer(1),
    "overfit_n_train": P.integer(100),
    "overfit_epochs": P.integer(3),
    "overfit_lr": P.positive(),
    "overfit_milestones": P.list_of(_milestone),
    "n_test_curve": P.integer(50),  # and at most n_test (check_parameters)
    "curve_steps": P.integer(1),
    "suite_budget": P.choice("reduced", "full"),
    "n_suite": P.integer(20),  # and at most n_test (check_parameters)
    "sanity_steps": P.list_of(P.integer(1), min_len=2),
    "square_queries": P.integer(1),
}


def check_parameters(p: dict[str, Any]) -> None:
    """The constraints between parameters (each single value already checked by :data:`PARAMETERS`).

    The curve's and the suite's test images are parts of the test subset; Fig. 1's sweep holds the attack's
    radius ``eps`` and radii on both sides of it (under- against over-training); the final recipe's network is
    wider than Table 2's; Fig. 2's training images are a part of the training split.
    """
    P.check_int("n_test_curve", p["n_test_curve"], low=50, high=p["n_test"])
    P.check_int("n_suite", p["n_suite"], low=20, high=p["n_test"])
    eps, sweep = p["eps"], p["eps_sweep"]
    if eps not in sweep or not any(e < eps for e in sweep) or not any(e > eps for e in sweep):
        raise ValueError(f"eps_sweep must hold eps={eps} and radii on both sides of it (got {sweep})")
    if p["wider_width"] <= p["wrn_width"]:
        raise ValueError(f"wider_width must exceed wrn_width={p['wrn_width']} (got {p['wider_width']})")
    n_split = round(p["n_train"] * (1 - p["val_fraction"]))
    if p["overfit_n_train"] > n_split:
        raise ValueError(f"overfit_n_train must be at most the training split, {n_split}")
