"""The experiments of the RegNet chapter (Volpato 2019), each a loop over configurations that trains (or loads)
encoders for a run and measures them: three-class latent studies, moment curves, the Gaussianity comparison
over training seeds, and the strong suite's table.

``run`` is the chapter's :class:`helpers.experiment.Experiment` (train-or-load and score-once caches, device);
``problem`` is a (training set, test loader) pair from :func:`helpers.papers.regnet.problems.three_class`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from helpers.core import evaluate
from helpers.core.data import Loader, TensorData
from helpers.papers.regnet.encoders import LatentConfig, trained
from helpers.papers.regnet.gaussianity import gaussianity
from helpers.papers.regnet.latent import curve_rows, fgsm_curve, latents
from helpers.papers.regnet.plots import latent_study_figure

Problem = tuple[TensorData, Loader]


def loss_variants(fk: float) -> dict[str, tuple[str, float]]:
    """The four RegNet losses of the accuracy curves (thesis Figs. 2.19-2.20): name -> (loss kind, F_k), the
    covariance and simplified losses without and with the kurtosis term at weight ``fk``."""
    return {
        "covariance": ("cov", 0.0),
        "simplified": ("simplified", 0.0),
        "covariance + kurtosis": ("cov", fk),
        "simplified + kurtosis": ("simplified", fk),
    }


def latent_study(
    run: Any, rows: Sequence[tuple[str, str, LatentConfig]], problems: Mapping[str, Problem], figure: str, title: str
) -> tuple[list[dict[str, Any]], Any]:
    """Train each (label, problem name, configuration) of ``rows`` and measure its test latents (thesis Secs.
    2.1-2.4): the records (figure, configuration, three-class accuracy in [0, 1], the :func:`gaussianity`
    measures, cfg) and a figure with one row per configuration (:func:`plots.latent_study_figure`)."""
    records, panels = [], []
    for label, prob, cfg in rows:
        tr, te_loader = problems[prob]
        z, y = latents(trained(run, cfg, tr), te_loader)
        stats = gaussianity(z, y, cfg.mu_t, cfg.sigma_t)
        acc = float((z.argmax(1) == y).float().mean())
        records.append({"figure": figure, "configuration": label, "accuracy": acc, **stats, "cfg": cfg})
        panels.append({"label": label, "z": z, "y": y, "classes": tr.classes, "mu_t": cfg.mu_t,
                       "sigma_t": cfg.sigma_t, "rmse": stats["rmse"]})  # fmt: skip
    return records, latent_study_figure(panels, title)


def moments(run: Any, cfg: LatentConfig, mu_list: Sequence[float], problem: Problem) -> pd.DataFrame:
    """The :func:`gaussianity` measures of ``cfg`` trained at each target mean of ``mu_list`` (thesis Figs.
    2.16-2.17: kurtosis and skewness grow with mu_t), one row per mu_t, indexed by "μT"."""
    tr, te_loader = problem
    out = []
    for m in mu_list:
        z, y = latents(trained(run, dataclasses.replace(cfg, mu_t=m), tr), te_loader)
        out.append({"μT": m, **gaussianity(z, y, m, cfg.sigma_t)})
    return pd.DataFrame(out).set_index("μT")


def gaussianity_by_seed(
    run: Any, cfg: LatentConfig, seeds: Sequence[int], weights: Sequence[float], problem: Problem
) -> pd.DataFrame:
    """The Gaussianity comparison of the kurtosis claim (thesis Figs. 2.14-2.15): ``cfg`` trained with each
    kurtosis weight F_k of ``weights`` at every training seed of ``seeds``, measured on the training and on
    the test images. Rows: seed, F_k, images ("train" or "test") and the :func:`gaussianity` measures."""
    tr, te_loader = problem
    out = []
    for s in seeds:
        for fk in weights:
            model = trained(run, dataclasses.replace(cfg, kurtosis_weight=fk, seed=s), tr)
            for split, loader in (("train", Loader(tr, 500, device=run.dev)), ("test", te_loader)):
                z, y = latents(model, loader)
                out.append({"seed": s, "F_k": fk, "images": split, **gaussianity(z, y, cfg.mu_t, cfg.sigma_t)})
    return pd.DataFrame(out)


def suite_table(grades: Mapping[tuple[str, float], Any], fgsm: Mapping[tuple[str, float], float]) -> pd.DataFrame:
    """One row per (ε, model) graded by :func:`helpers.core.suite.grade` (``grades``): clean accuracy, the
    thesis' FGSM on the same digits (``fgsm``), the suite's robust accuracy, the gap FGSM minus suite in
    points, each member attack alone, and the suite's name."""
    rows = [
        {
            "model": name,
            "ε": e,
            "clean": g.clean.acc,
            "FGSM (thesis)": fgsm[name, e],
            "suite": g.robust_accuracy,
            "gap FGSM − suite (points)": 100 * (fgsm[name, e] - g.robust_accuracy),
            **{f"{m} alone": v.acc for m, v in g.members.items()},
            "attack (suite)": g.suite.name,
        }
        for (name, e), g in grades.items()
    ]
    return pd.DataFrame(rows).set_index(["ε", "model"])


def mean_by(frame: pd.DataFrame, column: str, split: str, weights: Sequence[float]) -> list[float]:
    """The mean of ``column`` over seeds on the ``split`` images at each F_k of ``weights`` (a
    :func:`gaussianity_by_seed` table)."""
    means = frame.groupby(["images", "F_k"])[column].mean()
    return [float(means[split, fk]) for fk in weights]


def variations(
    reg: LatentConfig,
    ce: LatentConfig,
    *,
    depths: Sequence[int],
    shake: Mapping[str, Any],
    seeds: Sequence[int],
    augment: str,
) -> list[tuple[dict[str, str], LatentConfig]]:
    """The one-thing-at-a-time variations around RegNet ``reg`` and cross-entropy ``ce`` (thesis Figs.
    3.11-3.16): ResNet depths, the shake-shake encoder (``shake``: its encoder, width and schedule), training
    seeds and data augmentation. Returns ({"study", "model"} labels, configuration) pairs, in drawing order."""
    out = [({"study": "depth", "model": f"ResNet-{d}"}, dataclasses.replace(reg, encoder=f"resnet{d}")) for d in depths]
    out += [
        ({"study": "depth", "model": "cross-entropy (ResNet-18)"}, ce),
        ({"study": "shake-shake", "model": "RegNet"}, dataclasses.replace(reg, **shake)),
        ({"study": "shake-shake", "model": "cross-entropy"}, dataclasses.replace(ce, **shake)),
    ]
    for s in seeds:
        out += [
            ({"study": "seeds", "model": f"RegNet seed {s}"}, dataclasses.replace(reg, seed=s)),
            ({"study": "seeds", "model": f"cross-entropy seed {s}"}, dataclasses.replace(ce, seed=s)),
        ]
    return out + [
        ({"study": "augmentation", "model": "RegNet"}, reg),
        ({"study": "augmentation", "model": f"RegNet + {augment}"}, dataclasses.replace(reg, augment=augment)),
    ]


def fgsm_table(
    run: Any,
    models: Sequence[tuple[Mapping[str, str], LatentConfig]],
    train: TensorData,
    loader: Loader,
    eps_list: Sequence[float],
    *,
    dataset: str = "mnist",
) -> pd.DataFrame:
    """FGSM accuracy curves of every (labels, configuration) of ``models`` trained (or loaded) on ``train`` and
    scored once per run on ``loader`` (:func:`helpers.papers.regnet.latent.fgsm_curve`), one model at a time.
    Long format: the labels' columns, then ε and accuracy in [0, 1]."""
    rows = []
    for labels, cfg in models:
        model = trained(run, cfg, train, dataset)
        acc = fgsm_curve(run, model, loader, eps_list, test=dataset, desc=" ".join(labels.values()))
        rows += curve_rows(eps_list, acc, **labels)
    return pd.DataFrame(rows)


def accuracy_table(
    run: Any,
    models: Sequence[tuple[Mapping[str, Any], LatentConfig]],
    train: TensorData,
    loader: Loader,
    *,
    dataset: str = "mnist",
) -> pd.DataFrame:
    """Clean test accuracy (decision rule argmax z, in [0, 1]) of every (labels, configuration) of ``models``
    trained (or loaded) on ``train``, one row per model: the labels' columns, then accuracy (thesis Figs.
    2.19-2.21)."""
    rows = []
    for labels, cfg in models:
        rows.append({**labels, "accuracy": evaluate.accuracy(trained(run, cfg, train, dataset), loader)})
    return pd.DataFrame(rows)
