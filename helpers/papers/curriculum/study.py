"""The chapter's experiment bound to one run: its CIFAR-10 subsets, every trained configuration and every score.

A :class:`Study` is made once per chapter run from the run record (:func:`helpers.experiment.start` returns it;
anything with ``params``, ``seed``, ``dev``, ``trained``, ``scored`` and ``model`` will do):

- :meth:`Study.train` trains (or loads) one of the document's configurations, an architecture x a training
  scheme x the optimiser, activation, augmentation, defence and dropout, with the run's train-or-load cache:
  the configuration names the checkpoint, and a configuration asked for twice is trained once.
- The scores are the document's measurements and the book's: natural accuracy, the PGD battery (the
  document's Fig. 1 and Table 1), one PGD attack (Table 2, Fig. 4) and the strong suite's grade
  (:mod:`helpers.core.suite`), each computed once per model with the run's score-once cache. Every score
  starts from ``torch.manual_seed(seed)`` and seeded attack generators, so it does not depend on what was
  scored before it. Randomized models (PNI, RSE, test-time noise) are attacked through their single-pass
  member, with EOT where asked, and every accuracy of theirs is a mean over ``MIN_DRAWS`` noise draws.

Images are (B, 3, 32, 32) in [0, 1]; radii and steps are in [0, 1] pixel units; accuracies are fractions.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from helpers.core import attacks, augment, data, evaluate, suite, training
from helpers.core.models.noise import is_randomized, with_input_noise
from helpers.core.params import check_choice
from helpers.papers.curriculum.defenses import Ensemble, has_rse
from helpers.papers.curriculum.nets import OPTIMIZERS, SCHEMES, build, make_optimizer
from helpers.papers.curriculum.rank import effective_rank, principal_directions
from helpers.papers.curriculum.schedule import curriculum_adversary, fixed_adversary, schedule

LOADERS = ("test", "battery", "fig4", "suite")  # the test images each score runs on (see Study.loaders)
EVAL_BATCH = 250  # test images per evaluation batch


def se_difference(n: int) -> float:
    """Standard error of the difference of two independent accuracies near 50% on ``n`` images (a fraction):
    ``sqrt(2) * 0.5 / sqrt(n)``, the largest it can be (a Bernoulli variance is at most 1/4)."""
    return float(np.sqrt(2) * (0.5 / np.sqrt(n)))


def fmt_list(values: Any) -> str:
    """``[0.01, 0.03]`` as ``"0.01, 0.03"`` (for labels and the prose)."""
    return ", ".join(f"{v:g}" for v in values)


def model_key(model: nn.Module) -> str:
    """The name under which the run caches a model's scores (set by :meth:`Study.train` and friends)."""
    key = getattr(model, "study_key", None)
    if key is None:
        raise ValueError("model must come from Study.train or Study.with_test_noise (it has no study_key)")
    return key


class Study:
    """The chapter's data, models and scores for one run (see the module's docstring)."""

    def __init__(self, run: Any, train_data: data.TensorData, test_data: data.TensorData) -> None:
        p = self.p = run.params
        self.run, self.seed, self.dev = run, run.seed, run.dev
        self.train_data, self.test_data = train_data, test_data
        self.battery_data = test_data.subset(torch.arange(p["n_battery"]))
        self.suite_data = test_data.subset(torch.arange(p["n_suite"]))
        self.nes_data = test_data.subset(torch.arange(p["n_nes"]))
        self.loaders = {
            "test": data.Loader(test_data, EVAL_BATCH, device=self.dev),
            "battery": data.Loader(self.battery_data, EVAL_BATCH, device=self.dev),
            "fig4": data.Loader(test_data.subset(torch.arange(p["n_fig4"])), EVAL_BATCH, device=self.dev),
            "suite": data.Loader(self.suite_data, EVAL_BATCH, device=self.dev),
        }
        self.lowrank_init: dict[str, torch.Tensor] = {}  # basis and mean of the low-rank projection (Sec. 5)
        self.seconds = {"grade": 0.0, "sanity": 0.0}  # time spent in the suite and in its sanity checks
        self.sanity: dict[str, dict] = {}  # the sanity checks of every recorded model, by name
        self.n_graded = 0
        eps, delta = fmt_list(p["battery_eps"]), fmt_list(p["battery_delta"])
        self.suite_name = suite.Suite.make(p["train_eps"], budget=p["suite_budget"]).name  # deterministic models
        self.battery_name = f"PGD-{p['battery_steps']}, ε ∈ {{{eps}}}, δ ∈ {{{delta}}}"
        self.doc_attack = f"PGD-{p['eval_steps']}, δ={p['train_delta']:g}, ε={p['train_eps']:g}"  # Table 2's

    @classmethod
    def cifar10(cls, run: Any) -> Study:
        """The chapter's subsets: ``n_train`` training and ``n_test`` test images, stratified, from the run's seed.
        The battery, the suite, Fig. 4 and NES use the first ``n_battery``, ``n_suite``, ``n_fig4``, ``n_nes``."""
        p = run.params
        train = data.load_subset("cifar10", "train", p["n_train"], run.seed)
        return cls(run, train, data.load_subset("cifar10", "test", p["n_test"], run.seed))

    # ------------------------------------------------------------ training
    def shape(self, arch: str) -> tuple[int, int, int]:
        """``(width, depth, dim)`` of an architecture of the chapter at the run's sizes (0: unused)."""
        p = self.p
        sizes = {
            "net": (p["width_net"], 0, 0),
            "bignet": (p["width_big"], 0, 0),
            "wrn": (p["wrn_width"], p["wrn_depth"], 0),
            "vit_small": (1, *p["vit_small"]),
            "vit_large": (1, *p["vit_large"]),
        }
        return sizes[check_choice("arch", arch, tuple(sizes))]

    def config(
        self, arch: str, scheme: str, *, opt: str, activation: str, aug: str, defense: str, drop: float, epochs: int
    ) -> dict[str, Any]:
        """Everything that changes a trained model (its hash names the checkpoint)."""
        p = self.p
        width, depth, dim = self.shape(arch)
        return {
            "arch": arch, "width": width, "depth": depth, "dim": dim, "scheme": scheme, "opt": opt,
            "lr": p["sgd_lr"] if opt == "sgd" else p["adamw_lr"], "activation": activation, "aug": aug,
            "defense": defense, "dropout": drop, "epochs": epochs, "batch_size": p["batch_size"],
            "ratio": p["attacked_ratio"], "iter_scale": p["iter_scale"], "seed": self.seed, "n_train": p["n_train"],
            "fixed": [p["train_eps"], p["train_delta"], p["train_steps"]], "strong_eps": p["strong_eps"],
            "pni_alpha": p["pni_alpha"], "rse": [p["sigma_init"], p["sigma_inner"]], "n_rank": p["n_rank"],
        }  # fmt: skip

    def adversary(self, scheme: str, epochs: int) -> training.Adversary | None:
        """The training adversary of a scheme, on ``attacked_ratio`` of each batch: none ("natural"), PGD at
        ``train_eps`` ("fixed"), PGD at ``strong_eps`` with the curriculum's final iteration count and step
        2.5 eps / iterations ("strong"), or the document's curriculum ("curriculum")."""
        p, gen = self.p, torch.Generator().manual_seed(self.seed)
        ratio = p["attacked_ratio"]
        if check_choice("scheme", scheme, SCHEMES) == "natural":
            return None
        if scheme == "fixed":
            return fixed_adversary(p["train_eps"], p["train_delta"], p["train_steps"], fraction=ratio, generator=gen)
        if scheme == "strong":
            steps, eps = schedule(1.0, iter_scale=p["iter_scale"])[1], p["strong_eps"]
            return fixed_adversary(eps, 2.5 * eps / steps, steps, fraction=ratio, generator=gen)
        return curriculum_adversary(epochs, fraction=ratio, iter_scale=p["iter_scale"], generator=gen)

    def train(
        self,
        arch: str,
        scheme: str,
        *,
        opt: str = "adamw",
        activation: str = "gelu",
        aug: str = "none",
        defense: str = "none",
        drop: float = 0.0,
        epochs: int | None = None,
    ) -> tuple[nn.Module, list[dict]]:
        """Train (or load) one configuration; returns ``(model in eval mode, per-epoch history)``.

        ``arch``: "net", "bignet", "wrn", "vit_small" or "vit_large" at the run's sizes; ``scheme``: see
        :meth:`adversary`; ``opt``: "sgd" (momentum 0.9, weight decay 5e-4) or "adamw" (weight decay 0.01);
        ``aug``: a :func:`helpers.core.augment.make` pipeline; ``defense``: see
        :func:`~helpers.papers.curriculum.nets.build` ("lowrank" needs :meth:`measure_rank` first);
        ``epochs``: default the run's ``epochs``.
        """
        p = self.p
        epochs = epochs or p["epochs"]
        check_choice("opt", opt, OPTIMIZERS)
        cfg = self.config(
            arch, scheme, opt=opt, activation=activation, aug=aug, defense=defense, drop=drop, epochs=epochs
        )
        tag = f"{arch}-{scheme}-{opt}-{activation}-{aug}-{defense}" + (f"-drop{drop:g}" if drop else "")

        def fit(ckpt: Any) -> tuple[nn.Module, list[dict]]:
            torch.manual_seed(self.seed)  # the initial weights: the same for every configuration of an arch
            width, depth, dim = self.shape(arch)
            extra = dict(self.lowrank_init) if defense == "lowrank" else {}
            model = build(
                "vit" if arch.startswith("vit") else arch, width=width, depth=depth or 16, dim=dim or 128,
                activation=activation, dropout=drop, defense=defense, pni_alpha=p["pni_alpha"],
                sigma_init=p["sigma_init"], sigma_inner=p["sigma_inner"], **extra,
            ).to(self.dev)  # fmt: skip
            optimizer = make_optimizer(opt, model, cfg["lr"], 5e-4 if opt == "sgd" else 0.01)
            adversary = self.adversary(scheme, epochs)
            loader = data.Loader(
                self.train_data,
                p["batch_size"],
                shuffle=True,
                seed=self.seed,
                device=self.dev,
                augment=augment.make(aug),
            )
            history = training.fit(
                model,
                loader,
                optimizer=optimizer,
                epochs=epochs,
                adversary=adversary,
                seed=self.seed,
                desc=tag,
                checkpoint=ckpt,
            )
            model.eval().study_key = f"{tag}-{training.config_hash(cfg)}"
            return model, history

        return self.run.trained(tag, cfg, fit)

    def with_test_noise(self, model: nn.Module) -> nn.Module:
        """``model`` behind Gaussian input noise of std ``test_noise`` at prediction (Sec. 5), a randomized model."""
        noisy = with_input_noise(model, self.p["test_noise"])
        noisy.study_key = f"{model_key(model)}+noise{self.p['test_noise']:g}"
        return noisy

    def measure_rank(self) -> tuple[float, float, int]:
        """The effective rank of ``n_rank`` training images (another stratified subset: seed + 1), raw and centred,
        and the rank of the low-rank projection (the centred effective rank), whose initial basis (the top
        principal directions) and mean it keeps for :meth:`train` with ``defense="lowrank"``."""
        x = data.load_subset("cifar10", "train", self.p["n_rank"], self.seed + 1).float()[0]
        raw, centred = effective_rank(x), effective_rank(x, center=True)
        r = max(1, min(3071, int(round(centred))))
        self.lowrank_init["basis"], self.lowrank_init["mean"] = principal_directions(x, r)
        return raw, centred, r

    # ------------------------------------------------------------ scores (each computed once per run)
    def predictor(self, model: nn.Module) -> nn.Module:
        """What makes the prediction: RSE models average ``rse_passes`` draws (the document's ensemble)."""
        return Ensemble(model, self.p["rse_passes"]) if has_rse(model) else model

    @staticmethod
    def draws(model: nn.Module) -> int:
        """Forward passes behind each accuracy: MIN_DRAWS fresh noise draws for a randomized model, else one."""
        return evaluate.MIN_DRAWS if is_randomized(model) else 1

    def _scored(self, key: tuple, compute: Any) -> Any:
        def seeded() -> Any:
            torch.manual_seed(self.seed)  # noise draws and ensemble passes: the same whatever was scored before
            return compute()

        return self.run.scored(key, seeded)

    def natural_scores(self, model: nn.Module) -> evaluate.Scores:
        """Clean per-image correctness on the ``n_test`` test images (mean over noise draws if randomized)."""
        key = (model_key(model), "natural")
        return self._scored(
            key,
            lambda: evaluate.scores(
                self.predictor(model), self.loaders["test"], draws=self.draws(model), desc="natural"
            ),
        )

    def natural(self, model: nn.Module) -> float:
        """Natural accuracy (a fraction) on the test images."""
        return self.natural_scores(model).acc

    def grid(self, model: nn.Module, eot: int = 1) -> pd.DataFrame:
        """The document's PGD battery on the battery images: accuracy per radius (rows) and step (columns),
        ``battery_steps`` iterations from a seeded random start, ``eot`` gradient draws per step."""
        p = self.p
        return self._scored(
            (model_key(model), "battery", eot),
            lambda: evaluate.battery(
                self.predictor(model),
                self.loaders["battery"],
                p["battery_eps"],
                p["battery_delta"],
                p["battery_steps"],
                attack_model=model,
                eot_samples=eot,
                draws=self.draws(model),
                seed=self.seed,
            ),
        )

    def pgd_scores(
        self,
        model: nn.Module,
        eps: float,
        alpha: float,
        *,
        eot: int = 1,
        loader: str = "test",
        steps: int | None = None,
    ) -> evaluate.Scores:
        """Per-image correctness under one l-inf PGD attack at radius ``eps`` and step ``alpha``, ``steps``
        iterations (default ``eval_steps``) from a seeded random start, ``eot`` gradient draws per step, on the
        images of ``loader`` (one of :data:`LOADERS`): the document's attack, or one cell of its battery."""
        steps = steps or self.p["eval_steps"]
        key = (model_key(model), "pgd", eps, alpha, eot, check_choice("loader", loader, LOADERS), steps)

        def compute() -> evaluate.Scores:
            atk = attacks.make_attack(
                "pgd",
                eps,
                alpha=alpha,
                steps=steps,
                random_start=True,
                eot_samples=eot,
                generator=torch.Generator().manual_seed(self.seed),
            )
            return evaluate.scores(
                self.predictor(model), self.loaders[loader], atk, draws=self.draws(model), attack_model=model
            )

        return self._scored(key, compute)

    def cell_scores(self, model: nn.Module) -> evaluate.Scores:
        """The battery's strongest cell at ``train_eps`` (lowest accuracy over ``battery_delta``) on the suite's
        images: the document's measurement that the suite's grade is set against."""
        p = self.p
        cells = [
            self.pgd_scores(model, p["train_eps"], d, loader="suite", steps=p["battery_steps"])
            for d in p["battery_delta"]
        ]
        return min(cells, key=lambda c: c.acc)

    def graded(self, model: nn.Module) -> suite.Grade:
        """The strong suite's grade at ``train_eps`` on the suite's images (EOT and noise draws if randomized)."""
        p = self.p

        def compute() -> suite.Grade:
            s = suite.Suite.make(
                p["train_eps"],
                budget=p["suite_budget"],
                randomized=is_randomized(model),
                eot_samples=p["eot_samples"],
                seed=self.seed,
            )
            torch.manual_seed(self.seed)
            t0 = time.perf_counter()
            grade = suite.grade(self.predictor(model), self.loaders["suite"], s, attack_model=model)
            self.seconds["grade"] += time.perf_counter() - t0
            self.n_graded += 1
            return grade

        return self.run.scored((model_key(model), "suite"), compute)

    def record(self, name: str, model: nn.Module) -> dict:
        """Record a model whose robustness the chapter reports: its grade, its sanity checks (Carlini et al.
        2019) and its weights, in the run's results (``run.model``); returns the results entry."""
        p, grade = self.p, self.graded(model)
        torch.manual_seed(self.seed)
        t0 = time.perf_counter()
        checks = suite.sanity_checks(
            self.predictor(model),
            self.loaders["suite"],
            grade,
            attack_model=model,
            steps=tuple(p["sanity_steps"]),
            square_queries=p["square_queries"],
        )
        self.seconds["sanity"] += time.perf_counter() - t0
        self.sanity[name] = checks
        extra = (
            {"prediction": f"helpers.papers.curriculum.Ensemble(model, {p['rse_passes']})"} if has_rse(model) else {}
        )
        return self.run.model(name, model, grade, dataset="cifar10", test_data=self.suite_data, sanity=checks, **extra)

    def summary(self, model: nn.Module, *, suite_too: bool = False) -> dict[str, float]:
        """Natural accuracy, the battery's mean and aggregated score; with ``suite_too`` also the battery's
        strongest cell at ``train_eps`` ("cell"), the suite's robust accuracy ("suite") and the gap between them."""
        grid = self.grid(model)
        out = {
            "natural": self.natural(model),
            "battery": float(grid.to_numpy().mean()),
            "score": aggregated_score(grid),
        }
        if suite_too:
            out["cell"] = self.cell_scores(model).acc
            out["suite"] = self.graded(model).robust_accuracy
            out["gap"] = out["cell"] - out["suite"]
        return out

    def summaries(self, models: Mapping[str, nn.Module], suite_too: bool | Collection[str] = False) -> pd.DataFrame:
        """:meth:`summary` of named models, one row each; ``suite_too``: for all, or for the names listed."""
        on = (lambda k: suite_too) if isinstance(suite_too, bool) else (lambda k: k in suite_too)
        return pd.DataFrame({k: self.summary(m, suite_too=on(k)) for k, m in models.items()}).T

    def scaled(self, table: pd.DataFrame) -> pd.DataFrame:
        """A :meth:`summaries` table for display: accuracies in %, every robust accuracy labelled with its attack."""
        eps = self.p["train_eps"]
        labels = {
            "natural": "natural (%)",
            "battery": f"battery mean (%), document's battery {self.battery_name}",
            "score": "aggregated score (document's battery)",
            "cell": f"battery's strongest δ at ε={eps:g} (%, suite images)",
            "suite": f"robust (%), suite {self.suite_name}",
            "gap": "gap: battery − suite (pts)",
        }
        out = table.copy()
        for c in ("natural", "battery", "cell", "suite", "gap"):
            if c in out:
                out[c] = 100 * out[c]
        return out.rename(columns=labels).round(1)


def aggregated_score(grid: pd.DataFrame) -> float:
    """The document's "aggregated attacked score": the sum over the battery of the accuracies, in %."""
    return float(100 * grid.to_numpy().sum())
