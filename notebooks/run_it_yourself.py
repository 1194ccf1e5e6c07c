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
# # Run it yourself
#
# Every page of this book was produced by running its chapter; you can run any of them again, at any of the
# three profiles, on a laptop or on a GPU. The table below says how long that took when we did it: one row
# per chapter and profile, one column per machine. The times are the chapters' own measurements, written to
# `results/<chapter>.json` by each run and collected by the pipeline into `book/timings.json`; nothing here
# is typed by hand. A time marked "with cached models" comes from a rerun that loaded every trained network
# from the checkpoint cache instead of training it. The file holds {glue:text}`n_timings` measurements of
# {glue:text}`n_timed_chapters` chapter(s) on {glue:text}`n_devices` machine(s); "not measured" means nobody
# has run that combination yet.

# %% tags=["parameters"]
profile = "medium"  # the profile this page was built with (shown for reference only)

# %% tags=["remove-cell"]
from myst_nb import glue

from helpers.core.io import project_root
from helpers.core.params import check_profile
from helpers.pipeline import notebook_names
from helpers.timings import load_timings, timings_table

check_profile(profile)
runs = load_timings()
table = timings_table(runs, [n for n in notebook_names(project_root()) if n[:2].isdigit()])
glue("n_timings", str(len(runs)), display=False)
glue("n_timed_chapters", str(len({r["chapter"] for r in runs})), display=False)
glue("n_devices", str(len({(r["device_type"], r["device_name"]) for r in runs})), display=False)
small_cpu = [
    r["wall_time_s"]
    for r in runs
    if r["profile"] == "small" and r["device_type"] == "cpu" and r.get("models", "trained") == "trained"
]
glue("n_small_timed", str(len(small_cpu)), display=False)
glue("small_total", f"{sum(small_cpu) / 60:.0f} min" if small_cpu else "not measured", display=False)

# %% tags=["remove-input"]
table.style.hide(axis="index").set_properties(**{"text-align": "left", "white-space": "nowrap"})

# %% [markdown]
# At the small profile, training included, the {glue:text}`n_small_timed` chapter(s) timed on a CPU took
# {glue:text}`small_total` together (added over the CPUs above, if several). The profiles:
# `small` (the default of `make book`, and the run `make test` checks) fits six minutes per chapter on two CPU
# cores, `medium` (the parameter cells' defaults) twenty minutes, or a few minutes on one GPU, and `full` is the
# document's own scale, meant for one GPU.
#
# ## Three ways to run a chapter
#
# **In the browser.** Each chapter page opens with a *Teaching edition* note and has a launch button (the
# rocket at the top of the page): both open the chapter's *student notebook* in Colab or on Binder. A student
# notebook is the chapter with the solutions of its exercises removed and the self-checks kept; its first cell
# installs the book's Python package. It runs the medium profile; on Colab pick a GPU runtime to go faster.
#
# **On your machine.** With Python 3.10 or newer and `make`:
#
# ```bash
# make chapter NB=00_primer PROFILE=medium      # one chapter; PROFILE=small or full for the other profiles
# make book                                     # every chapter, then the book in _build/html
# ```
#
# Your run rewrites `results/<chapter>.json` and adds your machine's time to `book/timings.json`, so the
# next build of this page shows it. To change a parameter, pass it to the pipeline:
# `python -m helpers.pipeline run 00_primer --profile medium -p eps 0.2`.
#
# **Without Jupyter** (a GPU server): `python -m helpers.pipeline script 04_regnet --profile full` runs the
# chapter as a plain Python program and writes the same results file.
