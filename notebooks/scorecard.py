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
# Every claim checked by every chapter, gathered from the `results/*.json` files the chapters wrote. A claim
# *holds* when our measured numbers support the document's statement at the profile shown; claims that do not
# reproduce are listed with their numbers, never hidden.
#
# This build gathers {glue:text}`n_claims` claims from {glue:text}`n_chapters` chapter(s);
# {glue:text}`n_hold` hold.

# %% tags=["parameters"]
profile = "quick"  # the profile the chapters were run at (shown for reference only)

# %% tags=["remove-cell"]
from myst_nb import glue

from helpers.params import check_profile
from helpers.results import load_results, scorecard

check_profile(profile)
results = load_results()
table = scorecard()
glue("n_chapters", str(len(results)), display=False)
glue("n_claims", str(len(table)), display=False)
glue("n_hold", str(int((table["holds"] == "✔ yes").sum())) if len(table) else "0", display=False)

# %%
table.style.hide(axis="index").set_properties(**{"text-align": "left", "white-space": "normal"})
