"""The tables of Campagne (2020), our scores beside the document's.

Scores are :func:`helpers.papers.photoz.metrics.photoz_metrics` dicts (bias, sigma_mad, eta as fractions); the
tables show bias ×1e-4, sigma_MAD ×1e-3 and eta in %, the document's units. The document's values are copied
from its Tables 1-3 and, where a row is described in its text only (the noise rows, PGD with 20 iterations,
fc0 = 2000), from Sections 3 and 4.3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

NONE = ("–", "–")

# Table 1 on Iref (sigma_MAD ×1e-3, eta %), by attack role (helpers.papers.photoz.threats.ROLES).
PAPER_T1 = {
    "clean": ("11", "1"),
    "noise": ("11 (unchanged)", "1 (unchanged)"),
    "noise_large": ("+50%", "×3"),
    "fgsm": ("66", "42"),
    "pgd": ("82", "59"),
    "pgd2": ("+10% over 10 it.", "+10% over 10 it."),
    "pgdl2": ("79", "57"),
}
# Table 1's transfer rows: the twins I0-I3 as a range, by the Iref attack whose galaxies they receive.
PAPER_TWINS = {"fgsm": ("63–68", "40–43"), "pgd": ("76–78", "52–55"), "pgdl2": ("77–79", "53–55")}
PAPER_CNN_FGSM = ("76", "49")
# Table 2 (clean/FGSM): bias ×1e-4, sigma_MAD ×1e-3, eta %, by the fraction f_a of FGSM samples (0 = Iref).
PAPER_T2 = {
    0.0: ("−0.3/−105", "11/66", "1/42"),
    0.05: ("−20/−40", "11/9", "1/4"),
    0.1: ("40/−25", "11/8", "1/2"),
    0.2: ("−6/23", "11/8", "1/1"),
}
# Table 3 (clean/FGSM/PGD): sigma_MAD ×1e-3, eta %; fc0 = 2000 is Section 4.3's text.
PAPER_T3 = {
    "Iref": ("11/66/82", "1/42/59"),
    "I(i4 widened)": ("15/24/25", "2/6/6"),
    "I(fc0 = 2000)": ("no better against PGD", "no better against PGD"),
}
_DOC_COLUMNS = {"sigma_mad": "σ_MAD (1e-3)", "eta": "η (%)", "sigma_doc": "σ_MAD, document", "eta_doc": "η, document"}


def table1(scores: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Table 1 on Iref: ``scores`` has one row per attack (columns model, images, bias, sigma_mad, eta), the
    images named by ``labels`` (role -> label, :func:`helpers.papers.photoz.threats.labels`)."""
    paper = {labels[role]: values for role, values in PAPER_T1.items()}
    return (
        scores.assign(bias=lambda t: t.bias * 1e4, sigma_mad=lambda t: t.sigma_mad * 1e3, eta=lambda t: t.eta * 100)
        .round(1)
        .assign(
            sigma_doc=lambda t: [paper.get(i, NONE)[0] for i in t.images],
            eta_doc=lambda t: [paper.get(i, NONE)[1] for i in t.images],
        )
        .rename(columns={"bias": "bias (1e-4)", **_DOC_COLUMNS})
    )


def paper_transfer(model: str, images: str, labels: Mapping[str, str]) -> tuple[str, str]:
    """The document's transfer value (sigma_MAD, eta) for ``model`` (a twin, or "CNN") on ``images``
    ("non perturbed" or "Iref's <label>"); the CNN is reported for FGSM only."""
    if model == "CNN":
        return PAPER_CNN_FGSM if images == f"Iref's {labels['fgsm']}" else NONE
    twin = {f"Iref's {labels[role]}": values for role, values in PAPER_TWINS.items()}
    return twin.get(images, NONE)


def transfer(scores: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Table 1's transfer rows: ``scores`` has columns model, images, bias, sigma_mad, eta (bias is dropped)."""
    paper = [paper_transfer(m, i, labels) for m, i in zip(scores.model, scores.images, strict=True)]
    return (
        scores.assign(sigma_mad=lambda t: t.sigma_mad * 1e3, eta=lambda t: t.eta * 100)
        .drop(columns="bias")
        .round(1)
        .assign(sigma_doc=[p[0] for p in paper], eta_doc=[p[1] for p in paper])
        .rename(columns=_DOC_COLUMNS)
    )


def table2(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table 2: one row per ``{"f_a", "clean": scores, "FGSM": scores}`` (each model under its own FGSM)."""
    return pd.DataFrame(
        [
            {
                "f_a": f"{r['f_a']:.0%}",
                "bias (1e-4) clean/FGSM": f"{1e4 * r['clean']['bias']:.0f}/{1e4 * r['FGSM']['bias']:.0f}",
                "σ_MAD (1e-3) clean/FGSM": f"{1e3 * r['clean']['sigma_mad']:.1f}/{1e3 * r['FGSM']['sigma_mad']:.1f}",
                "η (%) clean/FGSM": f"{100 * r['clean']['eta']:.1f}/{100 * r['FGSM']['eta']:.1f}",
                **dict(
                    zip(
                        ("bias, document", "σ_MAD, document", "η, document"),
                        PAPER_T2.get(r["f_a"], ("–", "–", "–")),
                        strict=True,
                    )
                ),
            }
            for r in rows
        ]
    )


def fgsm_trained_under_pgd(
    fa: float, clean: Mapping[str, float], pgd: Mapping[str, float], pgd_steps: int
) -> pd.DataFrame:
    """The f_a model of Algorithm 1 on clean galaxies and under its own PGD (Section 4.2: no gain over Iref)."""
    return pd.DataFrame(
        {
            f"f_a={fa:.0%} model, clean": {
                "σ_MAD (1e-3)": 1e3 * clean["sigma_mad"],
                "η (%)": 100 * clean["eta"],
                "document": "σ_MAD 11, η 1%",
            },
            f"f_a={fa:.0%} model, its own PGD {pgd_steps} it.": {
                "σ_MAD (1e-3)": 1e3 * pgd["sigma_mad"],
                "η (%)": 100 * pgd["eta"],
                "document": "no gain in robustness over Iref (Iref: 82, 59%)",
            },
        }
    ).T.round(1)


def table3(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Table 3: one row per ``{"model", "clean", "FGSM", "PGD"}`` scores (each model under its own attacks)."""
    kinds = ("clean", "FGSM", "PGD")
    return pd.DataFrame(
        [
            {
                "model": r["model"],
                "σ_MAD (1e-3) clean/FGSM/PGD": "/".join(f"{1e3 * r[k]['sigma_mad']:.1f}" for k in kinds),
                "η (%) clean/FGSM/PGD": "/".join(f"{100 * r[k]['eta']:.1f}" for k in kinds),
                "σ_MAD, document": PAPER_T3[r["model"]][0],
                "η, document": PAPER_T3[r["model"]][1],
            }
            for r in rows
        ]
    )
