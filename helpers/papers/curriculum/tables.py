"""The chapter's tables and measurements beyond one model's scores: the schedule, Table 2, what the document's
attacks overstate, Fig. 4's radius curves, Sec. 5's attacked models and the NES black-box attack (Fig. 5).

Each function takes the run's :class:`~helpers.papers.curriculum.study.Study` (whose scores are computed once
per run) and named models, and returns tables whose accuracies are fractions (display tables: strings in %).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from helpers.core import attacks, evaluate, suite
from helpers.core.models import count_parameters
from helpers.core.models.noise import is_randomized
from helpers.papers.curriculum.nets import build
from helpers.papers.curriculum.schedule import schedule
from helpers.papers.curriculum.study import Study, fmt_list

# The document's Table 2 (BigNet, PGD-trained for 10 epochs, attacked by PGD at eps 0.03, step 0.008), in %.
DOC_TABLE2 = {
    "natural": {"BigNet": 53.32, "BigNet-PNI": 51.66, "BigNet-RSE": 49.41},
    "attacked": {"BigNet": 31.15, "BigNet-PNI": 31.07, "BigNet-RSE": 32.50},
}
DOC_TABLE1 = [136, 169, 159]  # the document's aggregated scores: no augmentation, flip, the full pipeline


def pm(s: evaluate.Scores | suite.Grade) -> str:
    """An accuracy in % for a table: "41.2 ± 1.3" (mean ± spread between noise draws) when it has draws."""
    s = s.robust if isinstance(s, suite.Grade) else s
    return f"{100 * s.acc:.1f} ± {100 * s.spread:.1f}" if s.draws > 1 else f"{100 * s.acc:.1f}"


def schedule_table(epochs: int, iter_scale: float) -> pd.DataFrame:
    """The curriculum epoch by epoch: ``t`` = elapsed epochs / ``epochs``, the radius and the PGD iterations."""
    rows = []
    for e in range(epochs):
        eps, iters = schedule(e / epochs, iter_scale=iter_scale)
        rows.append({"epoch": e + 1, "t": e / epochs, "ε": eps, "iterations": iters})
    return pd.DataFrame(rows).set_index("epoch")


def document_sizes() -> pd.Series:
    """Parameter counts of Net, BigNet and WRN-16-10 at the document's sizes (builds them: draws initial weights)."""
    sizes = {"Net": ("net", 6, 16), "BigNet": ("bignet", 12, 16), "WRN-16-10": ("wrn", 160, 16)}
    counts = {k: count_parameters(build(a, width=w, depth=d)) for k, (a, w, d) in sizes.items()}
    return pd.Series(counts, name="parameters at the document's sizes")


@dataclass
class Table2:
    """Table 2 (BigNet, BigNet-PNI, BigNet-RSE): per-model scores and the display table.

    ``doc``: the document's attack (PGD-``eval_steps`` at ``train_eps``, step ``train_delta``) on the test
    images; ``eot``: the same with EOT, randomized models only; ``graded``: the suite's grades; ``gap``: the
    document's attack minus the suite on the suite's images (fractions)."""

    doc: dict[str, evaluate.Scores]
    eot: dict[str, evaluate.Scores]
    graded: dict[str, suite.Grade]
    gap: dict[str, float]
    frame: pd.DataFrame


def table2(study: Study, models: Mapping[str, nn.Module]) -> Table2:
    """Table 2 for ``models`` (named as in :data:`DOC_TABLE2`), beside the document's numbers."""
    p, doc_attack = study.p, study.doc_attack
    eps, delta, eot_samples = p["train_eps"], p["train_delta"], p["eot_samples"]
    doc = {k: study.pgd_scores(m, eps, delta) for k, m in models.items()}
    eot = {k: study.pgd_scores(m, eps, delta, eot=eot_samples) for k, m in models.items() if is_randomized(m)}
    graded = {k: study.graded(m) for k, m in models.items()}
    gap = {
        k: study.pgd_scores(m, eps, delta, loader="suite").acc - graded[k].robust_accuracy for k, m in models.items()
    }
    frame = pd.DataFrame(
        {
            "natural (%)": {k: pm(study.natural_scores(m)) for k, m in models.items()},
            "natural, document (%)": DOC_TABLE2["natural"],
            f"attacked (%), the document's {doc_attack}": {k: pm(v) for k, v in doc.items()},
            "attacked, document (%)": DOC_TABLE2["attacked"],
            f"attacked (%), {doc_attack} + EOT-{eot_samples}": {k: pm(v) for k, v in eot.items()},
            "robust (%), suite": {k: pm(g) for k, g in graded.items()},
            "suite": {k: g.suite.name for k, g in graded.items()},
            f"gap: document's attack − suite (pts, first {p['n_suite']} images)": {
                k: round(100 * v, 1) for k, v in gap.items()
            },
        }
    ).fillna("")
    return Table2(doc, eot, graded, gap, frame)


def overstatement(
    study: Study, models: Mapping[str, nn.Module], table2_names: Collection[str]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Record ``models`` (:meth:`Study.record`: grade, sanity checks, weights) and set the document's number for
    each beside the suite's, on the suite's images: Table 2's attack for the models in ``table2_names``, the
    battery's strongest cell at ``train_eps`` for the others. Returns the display table and the gaps (document
    minus suite, fractions)."""
    p = study.p
    for k, m in models.items():
        study.record(k, m)
    battery = f"battery's PGD-{p['battery_steps']}, strongest δ ∈ {{{fmt_list(p['battery_delta'])}}}"
    doc = {
        k: (study.pgd_scores(m, p["train_eps"], p["train_delta"], loader="suite"), f"Table 2's {study.doc_attack}")
        if k in table2_names
        else (study.cell_scores(m), battery)
        for k, m in models.items()
    }
    gaps = {k: doc[k][0].acc - study.graded(m).robust_accuracy for k, m in models.items()}
    rows = {
        k: {
            "clean (%)": pm(study.graded(m).clean),
            "document's attack": doc[k][1],
            "document's number (%)": pm(doc[k][0]),
            "suite": study.graded(m).suite.name,
            "robust (%), suite": pm(study.graded(m)),
            "gap (pts)": round(100 * gaps[k], 1),
        }
        for k, m in models.items()
    }
    return pd.DataFrame(rows).T, gaps


def radius_curves(study: Study, models: Mapping[str, nn.Module], eot_model: str) -> pd.DataFrame:
    """Fig. 4: scores under PGD-``eval_steps`` (step 2.5 eps / steps) at each radius of ``fig4_eps`` (rows) on the
    first ``n_fig4`` test images, one column per model and one more for ``eot_model`` under EOT-PGD."""
    p = study.p
    steps, radii = p["eval_steps"], p["fig4_eps"]
    curves = {k: [study.pgd_scores(m, e, 2.5 * e / steps, loader="fig4") for e in radii] for k, m in models.items()}
    out = pd.DataFrame(curves, index=radii)
    out[f"{eot_model}, EOT-PGD"] = [
        study.pgd_scores(models[eot_model], e, 2.5 * e / steps, eot=p["eot_samples"], loader="fig4") for e in radii
    ]
    return out


def attacked_table(study: Study, models: Mapping[str, nn.Module]) -> pd.DataFrame:
    """Sec. 5: natural accuracy and the document's attack (Table 2's), with EOT for randomized models (else None),
    as :class:`~helpers.core.evaluate.Scores` per model (rows) and column."""
    p = study.p
    eps, delta, k_eot = p["train_eps"], p["train_delta"], p["eot_samples"]
    rows = {
        k: {
            "natural (%)": study.natural_scores(m),
            f"attacked (%), the document's {study.doc_attack}": study.pgd_scores(m, eps, delta),
            f"attacked (%), {study.doc_attack} + EOT-{k_eot}": study.pgd_scores(m, eps, delta, eot=k_eot)
            if is_randomized(m)
            else None,
        }
        for k, m in models.items()
    }
    return pd.DataFrame(rows).T


@dataclass
class NES:
    """Fig. 5: per-image correctness (N,) under NES at each query budget, under white-box PGD with as many
    iterations as the largest budget affords (``pgd_iters``), and the natural accuracy (a fraction)."""

    hits: dict[int, torch.Tensor]
    pgd_hits: torch.Tensor
    pgd_iters: int
    natural: float

    @property
    def acc(self) -> dict[int, float]:
        return {L: float(h.mean()) for L, h in self.hits.items()}

    @property
    def pgd_level(self) -> float:
        return float(self.pgd_hits.mean())

    def table(self) -> pd.DataFrame:
        """Accuracy (%) per budget and under PGD."""
        acc = {f"L={k}": round(100 * v, 1) for k, v in self.acc.items()} | {"PGD": round(100 * self.pgd_level, 1)}
        return pd.Series(acc, name="accuracy (%)").to_frame()


def nes_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    budgets: list[int],
    eps: float,
    delta: float,
    n_samples: int,
    sigma: float,
    seed: int,
) -> NES:
    """The NES black-box attack (Ilyas et al. 2018) on ``model`` at each query budget ``L`` per image (``L //
    n_samples`` l-inf PGD steps of size ``delta`` in the ball of radius ``eps``, directions drawn from a generator
    seeded with ``seed``), and the white-box PGD reference; ``x`` (N, 3, 32, 32) in [0, 1], ``y`` (N,)."""
    hits = {}
    with torch.no_grad():
        for L in budgets:
            gen = torch.Generator().manual_seed(seed)
            x_adv = attacks.nes_pgd(model, x, y, eps, delta, L, n_samples=n_samples, sigma=sigma, generator=gen)
            hits[L] = (model(x_adv).argmax(1) == y).float()
    pgd_iters = max(budgets) // n_samples
    x_pgd = attacks.pgd(model, x, y, eps, delta, pgd_iters)
    with torch.no_grad():
        natural = float((model(x).argmax(1) == y).float().mean())
        pgd_hits = (model(x_pgd).argmax(1) == y).float()
    return NES(hits, pgd_hits, pgd_iters, natural)
