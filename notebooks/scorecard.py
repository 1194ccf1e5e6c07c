# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (adv-robust)
#     language: python
#     name: adv-robust
# ---

# %% [markdown]
# # Scorecard
#
# Every claim of every chapter, gathered from the `results/*.json` files the chapters wrote. A claim is one of
# the document's own findings, in its words (the files `notebooks/claims/*.yaml` hold them, with the margin each
# effect must clear, fixed before any run). Each chapter measures the effect with a 95% interval, and the
# verdict follows from where the interval lies:
#
# - **reproduced**: beyond the margin, in the document's direction;
# - **contradicted**: entirely on the other side of no effect;
# - **inconclusive at this scale**: anything else (the interval is too wide, or it lies between no effect and
#   the margin).
#
# The diamond in each plot is the document's own effect where it gives one in the same unit; whether it lies
# inside our interval is the second criterion large replication projects report. Claims that do not reproduce
# carry their reason; checks the book adds (sanity checks, not findings of the documents) are listed apart and
# never counted.
#
# This build gathers {glue:text}`n_claims` claims from {glue:text}`n_chapters` chapters:
# {glue:text}`n_reproduced` reproduced, {glue:text}`n_inconclusive` inconclusive at this scale and
# {glue:text}`n_contradicted` contradicted; the book adds {glue:text}`n_checks` checks, of which
# {glue:text}`n_checks_pass` pass.

# %% tags=["parameters"]
profile = "medium"  # the profile the chapters were run at (shown for reference only)

# %% tags=["remove-cell"]
from IPython.display import Markdown, display
from myst_nb import glue

from helpers import scorecard
from helpers.core import plots
from helpers.core.params import check_profile
from helpers.results import load_results

check_profile(profile)
plots.use_style()
results = load_results()
records = [c for r in results for c in r["claims"]]
verdicts = [c["verdict"] for c in records if c.get("kind") == "claim"]
glue("n_chapters", str(len(results)), display=False)
glue("n_claims", str(len(verdicts)), display=False)
for v in ("reproduced", "inconclusive", "contradicted"):
    glue(f"n_{v}", str(verdicts.count(v)), display=False)
checks = [c for c in records if c.get("kind") == "check"]
glue("n_checks", str(len(checks)), display=False)
glue("n_checks_pass", str(sum(c["verdict"] == "passes" for c in checks)), display=False)

# %% [markdown]
# ## Verdicts per chapter and profile
#
# The profile this book was built at counts what its runs measured; the other profiles count the verdicts
# recorded in the claims files from measured runs (`make verdicts PROFILE=...` reruns a profile and reports any
# difference).

# %%
scorecard.counts(results).style.hide(axis="index")

# %% [markdown]
# ## Each chapter's claims

# %% tags=["remove-input"]
for r in results:
    display(Markdown(f"### {r['title']}\n\nRun: profile {r['profile']}, {r['device']}, {r['wall_time_s']:.0f} s."))
    if any(c.get("kind") == "claim" for c in r["claims"]):
        plots.show(scorecard.forest(r["claims"], r["title"]), f"forest_{r['chapter']}", "scorecard")
    style = {"text-align": "left", "white-space": "normal"}
    display(scorecard.claims_table(r["claims"]).style.hide(axis="index").set_properties(**style))
    book_checks = scorecard.checks_table(r["claims"])
    if len(book_checks):
        display(Markdown("Checks the book adds (not counted as reproductions):"))
        display(book_checks.style.hide(axis="index").set_properties(**style))
