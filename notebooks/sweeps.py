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
# # Sweeps: claims across seeds and parameters
#
# A chapter run is one draw: one seed, one setting of each parameter. A *sweep* reruns chapters over a grid of
# seeds and parameter values (`python -m helpers.sweep`, on one machine or a Ray cluster) and this page gathers
# what the grid says. For each claim it shows the share of seeds in which the claim holds (and is reproduced,
# where the chapter records a verdict) with a 95% Wilson interval, and the mean of its measured effect, where
# the chapter records one, with a 95% Student-t interval over seeds. Each swept numeric parameter becomes a curve
# with that band, for the claims and for the numbers the chapter reports.
#
# This build found {glue:text}`n_sweeps` sweep(s) with {glue:text}`n_points` point(s), {glue:text}`n_failed`
# of them failed.

# %% tags=["parameters"]
profile = "medium"  # the profile this page is built at (shown for reference only: each sweep names its own)
sweeps_dir = ""  # folder holding <sweep>/summary.json; empty: results/sweeps

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from myst_nb import glue

from helpers.core import plots
from helpers.core.params import check_profile
from helpers.sweep.summary import claims_frame, load_summaries

check_profile(profile)
if not isinstance(sweeps_dir, str):
    raise ValueError(f"sweeps_dir must be a folder path as a string, or empty for results/sweeps (got {sweeps_dir!r})")
plots.use_style()
summaries = load_summaries(sweeps_dir or None)
glue("n_sweeps", str(len(summaries)), display=False)
glue("n_points", str(sum(len(s["points"]) for s in summaries)), display=False)
glue("n_failed", str(sum(s["counts"]["failed"] for s in summaries)), display=False)

# %% [markdown]
# ## How to run a sweep
#
# On one machine, Ray starts locally and runs one point per core (one per GPU where there are GPUs):
#
# ```bash
# make sweep NB=00_primer PROFILE=small SEEDS=0-4 ARGS="-p eps 0.05,0.1,0.2"
# .venv/bin/python -m helpers.sweep 00_primer --profile small --seeds 0-4 -p eps 0.05,0.1,0.2 --workers 2
# ```
#
# On a cluster, start Ray on every node (`ray start --head` on one, `ray start --address <head>:6379` on the
# others) and pass the head's address: `--address <head>:6379`. Rerunning a command skips the points already done.

# %% [markdown]
# ## What the sweeps found

# %% tags=["remove-input"]
if not summaries:
    display(
        Markdown(
            "No sweep has been run in this build: `results/sweeps/` holds no `summary.json`. "
            "Run one of the commands above, then rebuild this page."
        )
    )
for s in summaries:
    c = s["counts"]
    grid = "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in s["grid"].items()) or "no swept parameter"
    display(
        Markdown(
            f"**Sweep `{s['name']}`** ({s['started'][:10]}): {', '.join(s['chapters'])} at "
            f"{', '.join(s['profiles'])}, seeds {', '.join(map(str, s['seeds']))}, {grid}. "
            f"{c['done']} point(s) done, {c['failed']} failed, in {s['wall_time_s']:.0f} s on Ray ({s['address']}); "
            f"the latest invocation reused {c['skipped']} point(s) done before."
        )
    )
    table = claims_frame(s)
    if len(table):
        display(table.style.hide(axis="index").set_properties(**{"text-align": "left", "white-space": "normal"}))
    failed = [p for p in s["points"] if p["status"] == "failed"]
    for p in failed:
        display(Markdown(f"Failed: `{p['id']}` after {p['attempts']} attempt(s): `{p['error']}` (log `{p['log']}`)"))

# %% [markdown]
# ## Swept parameters as curves
#
# Left: each claim's effect (or, for a claim without a recorded effect, the share of seeds in which it holds)
# against the swept parameter, with its 95% band over seeds. Right: the chapter's reported numbers that change
# with the parameter, with the same band. A band from a single seed is only that seed's own interval.

# %% tags=["remove-input"]
shown = 0
for s in summaries:
    panels: dict[tuple, dict[str, list]] = {}
    for line in s["curves"]:
        key = (line["chapter"], line["profile"], line["parameter"], tuple(sorted(line["fixed"].items())))
        panels.setdefault(key, {"claim": [], "number": []})[line["kind"]].append(line)
    for (chapter, prof, param, fixed), kinds in panels.items():
        varying = [ln for ln in kinds["number"] if len({round(pt["mean"], 12) for pt in ln["points"]}) > 1][:6]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        for ax, lines, ylabel in (
            (axes[0], kinds["claim"], "effect, or share of seeds holding"),
            (axes[1], varying, "value (mean over seeds)"),
        ):
            for ln in lines:
                xs = [pt["value"] for pt in ln["points"]]
                ax.plot(xs, [pt["mean"] for pt in ln["points"]], marker="o", label=ln["key"])
                ax.fill_between(xs, [pt["lo"] for pt in ln["points"]], [pt["hi"] for pt in ln["points"]], alpha=0.2)
            ax.set(xlabel=param, ylabel=ylabel)
            if lines:
                ax.legend(fontsize=8)
        extra = ", ".join(f"{k}={v}" for k, v in fixed)
        fig.suptitle(f"{s['name']}: {chapter} at {prof}{', ' + extra if extra else ''}")
        plots.show(fig, f"{s['name']}-{chapter}-{prof}-{param}-{shown}", "sweeps")
        shown += 1
if not shown:
    display(Markdown("No sweep in this build varies a numeric parameter over two or more values, so no curve."))
