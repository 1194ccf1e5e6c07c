"""The photo-z study of Campagne (2020): its parameters, its simulated samples and the training of every network.

The document attacks the Inception of Pasquet et al. (2019), trains twins of it (other seeds, other training
subsets) and a different CNN to test transfer, and retrains it with Algorithm 1 (a fraction ``f_a`` of each batch
replaced by the model's own FGSM samples) and, in Table 3, with PGD samples. Everything here serves those runs:

- :data:`PARAMETERS` and :func:`check_parameters`: the chapter's parameter rules, checked before any compute.
- :class:`Samples`: the simulated galaxies of a run (a training pool, a validation split, a test set) and the
  training subset of each network (``k = 0`` is Iref, ``k >= 1`` the twins).
- :class:`Recipe`: the training recipe shared by every network (AdamW, a learning rate cut by 20% on plateaus
  of the validation loss, dihedral augmentation); :meth:`Recipe.job` gives the ``(tag, config, train)`` triple
  that a chapter's train-or-load cache (``run.trained(*recipe.job(...))``) expects.

Threat model of the training attacks: l-inf, radius ``eps`` in nanomaggies per pixel, on the five image bands
only (never on E(B-V)), unclipped (calibrated fluxes may be negative).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers.core import attacks, augment, data, models, training
from helpers.core import params as P
from helpers.papers.photoz import galaxies
from helpers.papers.photoz import model as _model  # noqa: F401 -- registers the "photoz" architecture

# The chapter's parameters (besides profile, seed and device) and their valid ranges, in the notebook's order.
PARAMETERS: dict[str, P.Rule] = {
    "n_train": P.integer(100),
    "n_val": P.integer(10),
    "n_test": P.integer(10),
    "stamp": P.integer(8),
    "width": P.positive(),
    "epochs": P.integer(1),
    "batch_size": P.integer(1),
    "lr": P.positive(),
    "adam_eps": P.positive(),
    "plateau_patience": P.integer(0),
    "n_twins": P.integer(1),
    "eps": P.real(0.0, low_open=True),
    "pgd_steps": P.integer(1),
    "l2_steps": P.integer(1),
    "l2_alpha": P.positive(),
    "noise_eps_large": P.nonnegative(),
    "fractions": P.list_of(P.fraction()),
    "table3": P.boolean(),
    "pgd_train_fraction": P.fraction(),
    "pgd_train_steps": P.integer(1),
}


def check_parameters(values: Mapping[str, Any]) -> None:
    """Constraints beyond each parameter's range: one ``seed`` (every network's seed derives from it), and
    ``stamp`` a multiple of 8 (the Inception pools three times by 2)."""
    P.check_int("seed", values["seed"], low=0)
    if values["stamp"] % 8:
        raise ValueError(f"stamp must be a multiple of 8 in [8, ∞) (got {values['stamp']})")


# What a network's training depends on besides its own spec (architecture, subset, attack): part of its cache key.
_TRAINING_KEYS = ("n_train", "width", "stamp", "epochs", "batch_size", "lr", "adam_eps", "plateau_patience", "eps")


@dataclass
class Samples:
    """The simulated galaxies of one run.

    ``pool`` holds ``n_train * 3 / 2`` training galaxies followed by ``n_val`` validation galaxies (Iref trains on
    the first ``n_train``, each twin on its own seeded subset of the training part, so the twins' data overlap
    Iref's as the document's random draws from one catalogue do); ``test`` is simulated with ``seed + 1000``, so
    it shares no galaxy with the pool. Images are (N, 5, stamp, stamp) float32 in nanomaggies.
    """

    sim: galaxies.SimConfig
    pool: galaxies.Galaxies
    test: galaxies.Galaxies
    n_train: int
    n_pool: int
    val_data: data.TensorData = field(init=False)
    test_data: data.TensorData = field(init=False)

    def __post_init__(self) -> None:
        self.val_data = self.pool.subset(torch.arange(self.n_pool, len(self.pool))).tensor_data()
        self.test_data = self.test.tensor_data()

    @classmethod
    def simulate(cls, n_train: int, n_val: int, n_test: int, stamp: int, seed: int) -> Samples:
        """Simulate (or load from the cache) the pool and the test set of a run."""
        n_pool = n_train + n_train // 2  # twins train on other (overlapping) subsets of this pool
        sim = galaxies.SimConfig(n=n_pool + n_val, stamp=stamp, seed=seed)
        pool = galaxies.simulate(sim)
        test = galaxies.simulate(galaxies.SimConfig(n=n_test, stamp=stamp, seed=seed + 1000))
        return cls(sim, pool, test, n_train, n_pool)

    @property
    def z_test(self) -> torch.Tensor:
        """The test galaxies' spectroscopic redshifts (n_test,)."""
        return self.test.z

    def training_subset(self, k: int, seed: int) -> data.TensorData:
        """Iref (``k = 0``) takes the first ``n_train`` galaxies; twin ``k`` a subset drawn with ``seed * 100 + k``
        (sorted, so the subset's order does not depend on the draw)."""
        if k == 0:
            return self.pool.subset(torch.arange(self.n_train)).tensor_data()
        g = torch.Generator().manual_seed(seed * 100 + k)
        return self.pool.subset(torch.randperm(self.n_pool, generator=g)[: self.n_train].sort().values).tensor_data()


def _tag(name: str) -> str:
    """A file-name-safe tag for a network's display name ("FGSM f_a=0.05" -> "fgsm-f_a-0.05")."""
    return re.sub(r"[^a-z0-9._]+", "-", name.lower()).strip("-")


@dataclass
class Recipe:
    """How every network of the chapter is trained; ``hp`` is the run's checked parameters (``run.params``)."""

    samples: Samples
    hp: Mapping[str, Any]
    device: torch.device

    def config(
        self, arch: str = "inception", k: int = 0, attack: str = "none", fraction: float = 0.0, steps: int = 1
    ) -> dict[str, Any]:
        """Everything that changes a network's weights: its spec, the simulation and the training parameters."""
        return {
            "arch": arch,
            "k": k,
            "attack": attack,
            "fraction": fraction,
            "steps": steps,
            "sim": self.samples.sim.key(),
            **{p: self.hp[p] for p in _TRAINING_KEYS},
            "seed": self.hp["seed"],
        }

    def train(
        self,
        checkpoint: str | Path | None,
        name: str,
        arch: str = "inception",
        k: int = 0,
        attack: str = "none",
        fraction: float = 0.0,
        steps: int = 1,
    ) -> nn.Module:
        """Train one network (resuming from ``checkpoint``) and return it in eval mode.

        - ``arch``: ``inception`` (Table A1), ``inception_i4_256`` / ``inception_fc2000`` (Section 4.3) or ``cnn``
          (Table A2), at the run's ``width`` and ``stamp``; each band is divided by its sky noise inside the
          model, so attack budgets stay in nanomaggies.
        - ``k``: the seed offset and training subset (0 = Iref, k >= 1 the twins); initialisation, batch order
          and the choice of attacked samples all derive from ``seed * 100 + k``.
        - ``attack``/``fraction``/``steps``: Algorithm 1 when ``attack`` is not "none" and ``fraction`` > 0: that
          share of each batch is replaced by the model's own FGSM (or PGD with ``steps`` iterations of
          ``eps / 10``) samples, l-inf radius ``eps``, unclipped.
        """
        hp, seed = self.hp, self.hp["seed"] * 100 + k
        torch.manual_seed(seed)  # the initialisation: the first draw after this seed, before anything else
        net = models.create(
            "photoz", arch=arch, width=hp["width"], image_size=hp["stamp"], input_scale=list(self.samples.sim.sky_sigma)
        ).to(self.device)
        adversary = None
        if attack != "none" and fraction > 0:
            attack_fn = attacks.make_attack(attack, hp["eps"], alpha=hp["eps"] / 10, steps=steps, clip=None)
            adversary = training.Adversary(attack_fn, fraction)
        opt = torch.optim.AdamW(net.parameters(), lr=hp["lr"], eps=hp["adam_eps"])
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.8, patience=hp["plateau_patience"])
        loader = data.Loader(
            self.samples.training_subset(k, hp["seed"]),
            hp["batch_size"],
            shuffle=True,
            seed=seed,
            device=self.device,
            augment=augment.Dihedral(),  # flips and quarter turns: a galaxy's redshift has no orientation
        )
        training.fit(
            net,
            loader,
            optimizer=opt,
            scheduler=sched,
            epochs=hp["epochs"],
            adversary=adversary,
            val=data.Loader(self.samples.val_data, 500, device=self.device),
            checkpoint=checkpoint,
            seed=seed,
            desc=name,
        )
        return net.eval()

    def job(self, name: str, **spec: Any) -> tuple[str, dict[str, Any], Callable[[Any], nn.Module]]:
        """``(tag, config, train)`` for a train-or-load cache: ``run.trained(*recipe.job("CNN", arch="cnn"))``.

        ``name`` labels the progress bar and, made file-name safe, the checkpoint; ``spec`` is
        :meth:`train`'s ``arch``, ``k``, ``attack``, ``fraction`` and ``steps``.
        """
        return _tag(name), self.config(**spec), lambda checkpoint: self.train(checkpoint, name, **spec)
