"""The attacks of Campagne (2020)'s Table 1 and Section 3, on the photo-z networks.

Threat model: the five ugriz image bands are perturbed, never the reddening E(B-V); budgets are in the data's
flux unit (nanomaggies per pixel) and nothing is clipped, since calibrated fluxes may be negative. The rows:

- uniform noise U[-eps, eps] (the control) and noise ``noise_eps_large`` (ten times larger in the document);
- FGSM (one step of ``eps``, l-inf);
- PGD with ``pgd_steps`` and with twice as many iterations of ``alpha = eps / 10`` (l-inf, no random start);
- l2 PGD at the document's radius ``eps * sqrt(2 n / (e pi))`` (:func:`l2_radius`, ``n`` the pixels of one band)
  with its step ``l2_alpha`` and ``l2_steps`` iterations.
"""

from __future__ import annotations

import math

import torch

from helpers.core import attacks

# Each row of the attack table by role; the values are the row labels (:func:`labels`).
ROLES = ("clean", "noise", "noise_large", "fgsm", "pgd", "pgd2", "pgdl2")


def l2_radius(eps: float, n_pixels: int) -> float:
    """The document's l2 radius ``eps * sqrt(2 n / (e pi))``: for large ``n`` the radius of the l2 ball with
    the volume of the l-inf ball of radius ``eps`` in ``n`` dimensions (Stirling's formula)."""
    return eps * math.sqrt(2 * n_pixels / (math.e * math.pi))


def labels(eps: float, noise_eps_large: float, pgd_steps: int) -> dict[str, str]:
    """Each role's row label in the tables ("non perturbed", "uniform noise ε=0.01", "FGSM", "PGD 10 it."...)."""
    return {
        "clean": "non perturbed",
        "noise": f"uniform noise ε={eps:g}",
        "noise_large": f"uniform noise ε={noise_eps_large:g}",
        "fgsm": "FGSM",
        "pgd": f"PGD {pgd_steps} it.",
        "pgd2": f"PGD {2 * pgd_steps} it.",
        "pgdl2": "PGD l2",
    }


def table1_attacks(
    eps: float,
    noise_eps_large: float,
    pgd_steps: int,
    l2_eps: float,
    l2_alpha: float,
    l2_steps: int,
    *,
    seed: int,
) -> dict[str, attacks.AttackFn]:
    """The attacked rows of Table 1, label -> ``attack(model, x, y) -> x_adv``, in the table's order.

    Both noise rows draw from one generator seeded with ``seed``, in this order, so the noise depends only on
    the seed and on the order in which the rows are applied.
    """
    name = labels(eps, noise_eps_large, pgd_steps)
    noise_gen = torch.Generator().manual_seed(seed)
    return {
        name["noise"]: attacks.make_attack("noise", eps, generator=noise_gen, clip=None),
        name["noise_large"]: attacks.make_attack("noise", noise_eps_large, generator=noise_gen, clip=None),
        name["fgsm"]: attacks.make_attack("fgsm", eps, clip=None),
        name["pgd"]: attacks.make_attack("pgd", eps, alpha=eps / 10, steps=pgd_steps, clip=None),
        name["pgd2"]: attacks.make_attack("pgd", eps, alpha=eps / 10, steps=2 * pgd_steps, clip=None),
        name["pgdl2"]: attacks.make_attack("pgd_l2", l2_eps, alpha=l2_alpha, steps=l2_steps, clip=None),
    }
