"""How the claims are shown: a forest plot per chapter, the claims and checks tables, and the verdict counts.

Read by every chapter's last section (its own claims) and by the scorecard page (all chapters). The records
come from ``results/<chapter>.json`` (:mod:`helpers.results`), the expected verdicts and recorded runs at
other profiles from ``notebooks/claims/<chapter>.yaml`` (:mod:`helpers.claims`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import Any

from helpers.claims import VERDICTS, load, summary_text

# One colour per verdict, the same in every figure (colour-blind safe: blue, grey, vermillion).
COLOURS = {"reproduced": "#0072B2", "inconclusive": "#7f7f7f", "contradicted": "#D55E00"}
LABELS = {"reproduced": "reproduced", "inconclusive": "inconclusive at this scale", "contradicted": "contradicted"}


def _claims(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in records if c.get("kind", "claim") == "claim" and "interval" in c]


def forest(records: Iterable[Mapping[str, Any]], title: str = "") -> Any:
    """A forest plot of a chapter's claims: one row per claim, each on its own axis (units differ).

    Each row shows our effect (dot) with its 95% interval (bar), coloured by verdict; no effect (solid line);
    the margin the interval must clear (dashed); the document's own effect (diamond) where it gives one.
    """
    import matplotlib.pyplot as plt

    claims = _claims(records)
    if not claims:
        raise ValueError("records holds no claims with an interval: run the chapter first")
    height = 0.7 * len(claims) + 1.2  # inches: a row per claim, the title above, the legend below
    fig, axes = plt.subplots(len(claims), 1, figsize=(7.5, height), squeeze=False)
    fig.subplots_adjust(left=0.24, right=0.8, top=1 - 0.45 / height, bottom=0.75 / height, hspace=1.1)
    for ax, c in zip(axes[:, 0], claims, strict=True):
        lo, hi = c["interval"]
        colour = COLOURS[c["verdict"]]
        null, margin, doc = c["no_effect"], c["margin"], c.get("document_value")
        sign = -1 if c["direction"] == "less" else 1
        ax.plot([lo, hi], [0, 0], color=colour, lw=3, solid_capstyle="butt")
        ax.plot([c["effect"]], [0], "o", color=colour, ms=7)
        ax.axvline(null, color="black", lw=0.8)
        if margin:
            for m in [null - margin, null + margin] if c["direction"] == "equivalent" else [null + sign * margin]:
                ax.axvline(m, color="black", lw=0.8, ls="--")
        xs = [lo, hi, null, null + sign * margin, null - margin if c["direction"] == "equivalent" else null]
        if doc is not None:
            ax.plot([doc], [0], "D", color="black", mfc="white", ms=6)
            xs.append(doc)
        span = (max(xs) - min(xs)) or 1.0
        ax.set_xlim(min(xs) - 0.08 * span, max(xs) + 0.08 * span)
        ax.set_yticks([])
        ax.grid(False, axis="y")
        ax.set_ylabel(
            "\n".join(textwrap.wrap(c["key"].replace("_", " "), 18)), rotation=0, ha="right", va="center", fontsize=8
        )
        ax.tick_params(axis="x", labelsize=7, pad=1)
        ax.text(
            1.01,
            0.5,
            f"{LABELS[c['verdict']]}\n[{c['unit']}]",
            transform=ax.transAxes,
            fontsize=7,
            va="center",
            color=colour,
        )
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLOURS[v], lw=3, label=LABELS[v]) for v in VERDICTS]
    handles += [
        Line2D([], [], marker="D", color="black", mfc="white", ls="", label="the document's effect"),
        Line2D([], [], color="black", ls="--", label="margin"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, y=1 - 0.08 / height, fontsize=9, va="top")
    return fig


def claims_table(records: Iterable[Mapping[str, Any]], chapter: str | None = None) -> Any:
    """The document's claims with the document's numbers, ours, the effect and interval, verdict and reason."""
    import pandas as pd

    rows = [
        {
            **({"chapter": chapter} if chapter else {}),
            "claim": c["claim"],
            "document": c["paper"],
            "ours": c["ours"],
            "effect (95% CI)": summary_text(c).split(": ", 1)[1],
            "margin": f"{c['margin']:g} {c['unit']}",
            "verdict": LABELS[c["verdict"]]
            + ("" if c["verdict"] == c.get("expected") else f" (expected: {c.get('expected') or 'not recorded'})"),
            "why": c.get("reason") or "",
        }
        for c in _claims(records)
    ]
    cols = ["claim", "document", "ours", "effect (95% CI)", "margin", "verdict", "why"]
    return pd.DataFrame(rows, columns=(["chapter"] if chapter else []) + cols)


def checks_table(records: Iterable[Mapping[str, Any]], chapter: str | None = None) -> Any:
    """The checks the book adds (not reproductions): what is checked, our numbers, passes or fails."""
    import pandas as pd

    rows = [
        {
            **({"chapter": chapter} if chapter else {}),
            "check": c["claim"],
            "why it matters": c["paper"],
            "ours": c["ours"],
            "result": "✔ passes" if c["verdict"] == "passes" else "✘ fails",
        }
        for c in records
        if c.get("kind") == "check"
    ]
    return pd.DataFrame(rows, columns=(["chapter"] if chapter else []) + ["check", "why it matters", "ours", "result"])


def counts(results: Iterable[Mapping[str, Any]], profiles: tuple[str, ...] = ("small", "medium", "full")) -> Any:
    """Reproduced / inconclusive / contradicted per chapter and profile.

    The profile of each results JSON counts what that run measured; the other profiles count the verdicts
    recorded in the claims files from measured runs (``python -m helpers.claims record``); a profile with no
    measured run reads "not measured".
    """
    import pandas as pd

    rows = []
    for res in results:
        specs = load(res["chapter"])
        for profile in profiles:
            if profile == res["profile"]:
                verdicts = [c["verdict"] for c in _claims(res["claims"])]
                source = f"this build ({res['profile']})"
            else:
                rec = [(s.get("expected") or {}).get(profile) or {} for s in specs.values() if s["kind"] == "claim"]
                verdicts = [r["verdict"] for r in rec if r.get("measured")]
                source = f"recorded {max(r['measured']['date'] for r in rec if r.get('measured'))}" if verdicts else ""
            row = {"chapter": res["chapter"], "profile": profile}
            if verdicts:
                row.update({LABELS[v]: verdicts.count(v) for v in VERDICTS}, source=source)
            else:
                row.update({LABELS[v]: "" for v in VERDICTS}, source="not measured")
            rows.append(row)
    return pd.DataFrame(rows, columns=["chapter", "profile", *LABELS.values(), "source"])
