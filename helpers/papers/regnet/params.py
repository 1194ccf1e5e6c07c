"""The RegNet chapter's parameters (Volpato 2019, scaled by the run profile): every parameter's valid range, once,
and the constraints between parameters, both checked by :func:`helpers.experiment.start` before any compute.

``profile``, ``seed`` and ``device`` are checked by :data:`helpers.experiment.COMMON`; radii are l-inf, in [0, 1]
pixel units; target means ``mu_t`` and the target standard deviation ``sigma_t`` are in latent units.
"""

from __future__ import annotations

from typing import Any

from helpers.core import params as P
from helpers.core.augment import AUGMENTATIONS
from helpers.core.models import ENCODERS

_RADIUS = P.real(0.0, 1.0)  # FGSM radius, 0 (clean) allowed
_POSITIVE_RADIUS = P.real(0.0, 1.0, low_open=True)

PARAMETERS: dict[str, P.Rule] = {
    "encoder": P.choice(*ENCODERS),
    "width": P.integer(1),
    "batch_size": P.integer(10),
    "lr": P.positive(),
    "lr_milestones": P.list_of(P.real(0, 1, low_open=True), min_len=0),
    "sigma_t": P.positive(),
    "fk_tuned": P.nonnegative(),
    "fk_small": P.nonnegative(),
    "fk_large": P.nonnegative(),
    "width_latent": P.integer(1),
    "n_train_latent": P.integer(30, 18000),
    "n_test_latent": P.integer(30, 3000),
    "n_seeds_gauss": P.integer(2),
    "epochs_latent": P.integer(1),
    "mu_t_latent": P.list_of(P.positive()),
    "mu_t_moments": P.list_of(P.positive(), min_len=2),
    "eps_latent": P.list_of(_RADIUS, min_len=2),
    "triplets": P.list_of(P.list_of(P.integer(0, 9), min_len=3)),
    "n_train": P.integer(100, 60000),
    "n_test": P.integer(10, 10000),
    "epochs": P.integer(1),
    "mu_t": P.positive(),
    "mu_t_list": P.list_of(P.positive(), min_len=2),
    "fk_list": P.list_of(P.nonnegative(), min_len=2),
    "mu_t_robust": P.list_of(P.positive()),
    "eps_list": P.list_of(_RADIUS, min_len=2),
    "eps_moderate": _POSITIVE_RADIUS,
    "pgd_eps_list": P.list_of(_POSITIVE_RADIUS),
    "pgd_steps": P.integer(1),
    "depths": P.list_of(lambda name, value: P.check_choice(name, value, (18, 34, 50))),
    "shake_width": P.integer(2),
    "epochs_shake": P.integer(1),
    "n_seeds": P.integer(1),
    "augment": P.choice(*AUGMENTATIONS),
    "suite_budget": P.choice("reduced", "full"),
    "suite_eps_list": P.list_of(_POSITIVE_RADIUS),
    "n_suite": P.integer(10, 10000),
    "square_queries": P.integer(1),
    "n_train_cifar": P.integer(100, 50000),
    "n_test_cifar": P.integer(10, 10000),
    "epochs_cifar": P.integer(1),
    "synth_classes": P.integer(2),
    "synth_per_class": P.integer(2),
    "synth_epochs": P.integer(1),
}


def check_parameters(values: dict[str, Any]) -> None:
    """The constraints between the chapter's parameters; a ``ValueError`` names the parameter.

    - each triplet holds 3 distinct digits (a three-class latent space to draw);
    - ``n_suite`` <= ``n_test`` (the suite grades a subset of the ten-class test digits);
    - ``eps_moderate`` is on every radius grid and ``mu_t`` on every target-mean grid that a claim reads it from;
    - ``fk_list`` holds 0 and ``fk_tuned`` (the accuracy curve's two ends the text compares).
    """
    triplets = values["triplets"]
    if any(len(t) != 3 or len(set(t)) != 3 for t in triplets):
        raise ValueError(f"triplets must be lists of 3 distinct digits (got {triplets!r})")
    P.check_int("n_suite", values["n_suite"], low=10, high=values["n_test"])
    eps = values["eps_moderate"]
    if eps not in values["eps_list"] or eps not in values["pgd_eps_list"] or eps not in values["suite_eps_list"]:
        raise ValueError(f"eps_moderate must be one of eps_list, pgd_eps_list and suite_eps_list (got {eps})")
    mu_t, mu_t_list, mu_t_robust = values["mu_t"], values["mu_t_list"], values["mu_t_robust"]
    if mu_t not in mu_t_list or mu_t not in mu_t_robust:
        raise ValueError(f"mu_t must be one of mu_t_list and of mu_t_robust (got {mu_t}, {mu_t_list}, {mu_t_robust})")
    if not {0.0, values["fk_tuned"]} <= set(values["fk_list"]):
        raise ValueError(f"fk_list must hold 0 and fk_tuned={values['fk_tuned']} (got {values['fk_list']})")
