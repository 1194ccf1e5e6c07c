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
# # Primer: adversarial examples on MNIST
#
# **Run:** profile {glue:text}`run_profile` · device {glue:text}`run_device` · seed {glue:text}`run_seed` ·
# wall time {glue:text}`run_wall_time`
#
# This chapter fixes the notation and the tools that every later chapter uses. We train a small convolutional
# network on MNIST, then attack it with the two workhorses of the field: the one-step *fast gradient sign
# method* (FGSM) of {cite:t}`goodfellow2015explaining` and the iterated *projected gradient descent* (PGD) of
# {cite:t}`madry2018towards`, in the $\ell_\infty$ and $\ell_2$ geometries. A random perturbation of the same
# size is the control: adversarial examples are not just noise.

# %% tags=["parameters"]
profile = "medium"  # small (make test, make book: minutes on 2 cores) | medium (these defaults) | full (GPU)
seed = 0  # seed for the data subsets, the initialisation and the random baselines
device = "auto"  # auto | cpu | cuda | mps
n_train = 12000  # training images, a stratified subset of MNIST's 60,000
n_test = 1000  # test images evaluated and attacked, a stratified subset of the 10,000
epochs = 2  # passes over the training subset
batch_size = 128  # images per optimisation step
lr = 1e-3  # Adam learning rate
width = 32  # channels of the first convolution (the second has twice as many)
eps_list = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]  # l-inf radii, in [0, 1] pixel units
l2_eps_list = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]  # l2 radii, in [0, 1] pixel units (image norm ~ 9)
eps = 0.1  # l-inf radius of the headline comparison and of the example images
attack = "pgd"  # attack drawn in the example images: fgsm | pgd | pgd_l2 | fgm_l2 | noise
pgd_steps = 20  # PGD iterations
pgd_step_ratio = 2.5  # PGD step alpha = pgd_step_ratio * eps / pgd_steps (Madry et al.'s rule)
suite_budget = "reduced"  # evaluation suite: reduced (PGD-20, APGD-25, 3 targets) | full (PGD-50, APGD-100, 9)
n_suite = 500  # test images graded by the suite and the steps curve (the first n_suite of the test subset)

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from helpers import claims, experiment
from helpers.core import attacks, data, evaluate, models, suite, training
from helpers.core import params as P

# Every parameter's valid range, checked before any compute: a bad value stops here with a message naming it.
RULES = {
    "n_train": P.integer(100, 60000),
    "n_test": P.integer(10, 10000),
    "epochs": P.integer(1),
    "batch_size": P.integer(1),
    "lr": P.positive(),
    "width": P.integer(1),
    "eps_list": P.list_of(P.nonnegative(), min_len=2),
    "l2_eps_list": P.list_of(P.nonnegative(), min_len=2),
    "eps": P.real(0.0, 1.0, low_open=True),
    "attack": P.choice("fgsm", "pgd", "pgd_l2", "fgm_l2", "noise"),
    "pgd_steps": P.integer(1),
    "pgd_step_ratio": P.positive(),
    "suite_budget": P.choice("reduced", "full"),
    "n_suite": P.integer(10),
}
run = experiment.start(
    "00_primer", "Primer", globals(), RULES, check=lambda v: P.check_int("n_suite", v["n_suite"], high=v["n_test"])
)
dev = run.dev
# %% [markdown]
# ## Notation
#
# An image is a tensor $x \in [0,1]^{C\times H\times W}$ with label $y$; the classifier $f_\theta$ maps it to
# logits, and $\ell(f_\theta(x), y)$ is the cross-entropy. Every model in this book normalizes its input
# itself (the first layer subtracts the dataset mean and divides by the standard deviation), so perturbation
# budgets are always in *pixel units* of $[0,1]$.
#
# - **Threat model.** The attacker knows the model (*white box*) and may add $\delta$ with
#   $\|\delta\|_p \le \varepsilon$, keeping $x+\delta \in [0,1]$. We use $p=\infty$ (every pixel moves by at
#   most $\varepsilon$) and $p=2$ (the total energy of the change is at most $\varepsilon$).
# - **FGSM** takes one step of size $\varepsilon$ along the steepest ascent direction of the loss:
#   $x' = \mathrm{clip}_{[0,1]}\big(x + \varepsilon\,\mathrm{sign}\,\nabla_x \ell\big)$ for $\ell_\infty$,
#   and $x + \varepsilon\,\nabla_x\ell/\|\nabla_x\ell\|_2$ for $\ell_2$ (the *fast gradient method*, FGM).
# - **PGD** repeats $k$ (*steps*) smaller steps of size $\alpha$ and projects back onto the
#   $\varepsilon$-ball around $x$ after each:
#   $x^{t+1} = \Pi_{B_\varepsilon(x)\cap[0,1]^d}\big(x^t + \alpha\, s(\nabla_x \ell(f_\theta(x^t), y))\big)$,
#   with $s=\mathrm{sign}$ for $\ell_\infty$ and $s(g) = g/\|g\|_2$ for $\ell_2$.
# - **Robust accuracy** at $\varepsilon$ is the accuracy on the attacked test images. It is an *upper bound*
#   on the true worst case: a stronger attack can only lower it.
# - **EOT** (expectation over transformation) averages gradients over the random draws of a randomized
#   model; later chapters use it whenever a defence is random.
#
# In code, `helpers.core.attacks.fgsm(model, x, y, eps, norm=...)` and
# `helpers.core.attacks.pgd(model, x, y, eps, alpha, steps, norm=...)` implement these, and the model's mode is set
# by the caller with `helpers.core.attacks.eval_mode(model)`.

# %% [markdown]
# ## Data and model
#
# We use a stratified subset of {glue:text}`n_train` MNIST training digits and {glue:text}`n_test` test
# digits, and a two-stage convolutional network with {glue:text}`n_params` parameters.

# %%
train_data = data.load_subset("mnist", "train", n_train, seed)
test_data = data.load_subset("mnist", "test", n_test, seed)
train_loader = data.Loader(train_data, batch_size, shuffle=True, seed=seed, device=dev)
test_loader = data.Loader(test_data, 500, device=dev)

model = models.build("small_cnn", "mnist", width=width).to(dev)
optimizer = torch.optim.Adam(model.parameters(), lr=lr)
config = {"model": "small_cnn", "width": width, "n_train": n_train, "epochs": epochs, "batch_size": batch_size}
history = run.trained(
    "small_cnn",
    {**config, "lr": lr, "seed": seed},
    lambda ckpt: training.fit(
        model, train_loader, optimizer=optimizer, epochs=epochs, val=test_loader, checkpoint=ckpt, seed=seed,
        desc="primer",
    ),
)  # fmt: skip
pd.DataFrame(history).round(4)

# %% tags=["remove-cell"]
clean_acc = history[-1]["val_acc"]
run.glue("n_train", f"{n_train:,}")
run.glue("n_test", f"{n_test:,}")
run.glue("n_params", f"{models.count_parameters(model):,}")
run.glue("clean_acc", clean_acc, "{:.1%}")

# %% [markdown]
# After training, the clean test accuracy is {glue:text}`clean_acc`.
#
# ## Accuracy against the perturbation budget
#
# For each radius we attack every test image and measure the accuracy. PGD uses
# $\alpha = 2.5\,\varepsilon/k$ with $k$ = {glue:text}`pgd_steps` steps, enough to cross the ball and come back.


# %%
def pgd_attack(e: float, name: str = "pgd") -> attacks.AttackFn:
    """PGD (``"pgd"``: l-inf, ``"pgd_l2"``) at radius ``e`` with the chapter's steps and step rule."""
    return attacks.make_attack(name, e, alpha=pgd_step_ratio * e / pgd_steps, steps=pgd_steps)


noise_gen = torch.Generator().manual_seed(seed)
linf = {
    "uniform noise": lambda e: attacks.make_attack("noise", e, generator=noise_gen),
    "FGSM": lambda e: attacks.make_attack("fgsm", e),
    "PGD": lambda e: pgd_attack(e),
}
l2 = {
    "FGM (l2)": lambda e: attacks.make_attack("fgm_l2", e),
    "PGD (l2)": lambda e: pgd_attack(e, "pgd_l2"),
}
rows, hits = [], {}  # hits: per-image correctness, for the claims' paired intervals
for norm, family, grid in (("linf", linf, eps_list), ("l2", l2, l2_eps_list)):
    for name, make in family.items():
        for e in grid:
            hits[name, e] = evaluate.scores(model, test_loader, make(e), desc=f"{name} eps={e}")
            rows.append({"norm": norm, "attack": name, "eps": e, "accuracy": hits[name, e].acc})
curves = pd.DataFrame(rows)
for norm in ("linf", "l2"):
    table = curves[curves.norm == norm].pivot(index="eps", columns="attack", values="accuracy")
    display(table.round(3).rename_axis(index=f"{norm} ε", columns=None))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, norm, label in (
    (axes[0], "linf", r"$\ell_\infty$ radius $\varepsilon$"),
    (axes[1], "l2", r"$\ell_2$ radius $\varepsilon$"),
):
    sub = curves[curves.norm == norm]
    for name, g in sub.groupby("attack", sort=False):
        ax.plot(g.eps, g.accuracy, marker="o", label=name)
    ax.set(xlabel=label, ylabel="test accuracy", ylim=(-0.02, 1.02))
    ax.legend()
axes[0].set_title("l-inf attacks")
axes[1].set_title("l2 attacks")
run.show(fig, "accuracy_vs_eps")


# %% tags=["remove-cell"]
def acc_at(attack_name: str, e: float) -> float:
    sel = curves[(curves.attack == attack_name) & np.isclose(curves.eps, e)]
    return float(sel.accuracy.iloc[0])


lin = curves[curves.norm == "linf"]
fgsm_acc = lin[lin.attack == "FGSM"].set_index("eps").accuracy
pgd_acc = lin[lin.attack == "PGD"].set_index("eps").accuracy
noise_acc = lin[lin.attack == "uniform noise"].set_index("eps").accuracy
l2c = curves[curves.norm == "l2"]
fgm2_acc = l2c[l2c.attack == "FGM (l2)"].set_index("eps").accuracy
pgd2_acc = l2c[l2c.attack == "PGD (l2)"].set_index("eps").accuracy

eps_head = eps if eps in set(eps_list) else min(eps_list, key=lambda e: abs(e - eps))
head = {name: acc_at(name, eps_head) for name in linf}
run.glue("eps_head", f"{eps_head:g}")
run.glue("pgd_steps", f"{pgd_steps}")
run.glue("acc_noise_head", head["uniform noise"], "{:.1%}")
run.glue("acc_fgsm_head", head["FGSM"], "{:.1%}")
run.glue("acc_pgd_head", head["PGD"], "{:.1%}")
run.glue("eps_max", f"{max(eps_list):g}")
run.glue("acc_pgd_max", float(pgd_acc[max(eps_list)]), "{:.1%}")
run.glue("acc_fgsm_max", float(fgsm_acc[max(eps_list)]), "{:.1%}")

# %% [markdown]
# At $\varepsilon$ = {glue:text}`eps_head`, uniform noise leaves {glue:text}`acc_noise_head` of the digits
# correctly classified, FGSM {glue:text}`acc_fgsm_head` and PGD {glue:text}`acc_pgd_head`. At
# $\varepsilon$ = {glue:text}`eps_max`, the radius of the MNIST challenge of {cite:t}`madry2018towards`, PGD
# leaves {glue:text}`acc_pgd_max` and FGSM {glue:text}`acc_fgsm_max`. Three lessons hold for every chapter:
#
# 1. **Direction, not size, is what hurts.** Noise of the same $\ell_\infty$ size barely moves the accuracy:
#    in high dimension a random direction is almost orthogonal to the loss gradient.
# 2. **Iterating helps the attacker.** PGD is never weaker than FGSM at equal $\varepsilon$; the gap measures
#    how far the loss is from linear inside the ball.
# 3. **Report a curve, not a point.** Robust accuracy depends on $\varepsilon$, the norm and the attack; a
#    number without all three means little.
#
# ## Grading robustness: why the book uses a suite of attacks
#
# An attack only gives an *upper bound* on a model's robust accuracy: whatever it fails to break may still be
# breakable. A PGD with too few steps, or steps too small to reach the radius, reports robustness the model does not
# have, and published defences have been overstated exactly this way {cite:p}`carlini2019evaluating`. So every robust
# accuracy that the book reports as a model's robustness is the per-image minimum over an *evaluation suite* at the
# same radius: our PGD with a random start and $\alpha k = 2.5\,\varepsilon$, APGD on the cross-entropy, whose step
# size adapts per image, and targeted APGD on the difference-of-logits ratio against the most likely wrong classes
# {cite:p}`croce2020reliable`, both from torchattacks {cite:p}`kim2020torchattacks`. An image counts as robust only if
# every attack leaves it correct. Where a document graded with a weaker attack, its chapter shows both numbers.
#
# The figure shows the accuracy of our network at $\varepsilon$ = {glue:text}`eps_head` on the first
# {glue:text}`n_suite` test digits against the number of attack iterations.

# %%
suite_data = test_data.subset(torch.arange(n_suite))
suite_loader = data.Loader(suite_data, 250, device=dev)
grading = suite.Suite.make(eps_head, budget=suite_budget, seed=seed)
steps_curve = pd.DataFrame(suite.steps_curve(model, suite_loader, grading))
graded = suite.grade(model, suite_loader, grading)
checks = suite.sanity_checks(model, suite_loader, graded, steps=(5, 10, 40), square_queries=300)
run.model("SmallCNN (natural training)", model, graded, dataset="mnist", test_data=suite_data, sanity=checks)

fig, ax = plt.subplots(figsize=(6, 4))
for name, col in steps_curve.items():
    ax.plot(col.index, col.to_numpy(), marker="o", label=name)
ax.axhline(graded.robust_accuracy, color="k", ls="--", lw=1, label="suite (per-image minimum)")
ax.set(xscale="log", xlabel="attack iterations", ylabel="test accuracy", title=f"ε = {eps_head:g} (l∞)")
ax.legend()
run.show(fig, "accuracy_vs_steps")
display(
    pd.DataFrame(
        {
            "accuracy": {
                "clean": graded.clean.acc,
                **{k: v.acc for k, v in graded.members.items()},
                graded.suite.name: graded.robust_accuracy,
            }
        }  # fmt: skip
    ).round(3)
)

# %% tags=["remove-cell"]
one_step = float(steps_curve["PGD"].iloc[0])
run.glue("n_suite", f"{n_suite:,}")
run.glue("pgd_one_step", one_step, "{:.1%}")
run.glue("pgd_steps_max", f"{steps_curve.index.max()}")
run.glue("pgd_at_max", float(steps_curve["PGD"].iloc[-1]), "{:.1%}")
run.glue("apgd_at_max", float(steps_curve["APGD-CE"].iloc[-1]), "{:.1%}")
run.glue("suite_acc", graded.robust_accuracy, "{:.1%}")
run.glue("suite_name", graded.suite.name)
book_pgd = evaluate.scores(model, suite_loader, pgd_attack(eps_head)).acc  # the curves' PGD, same digits
run.glue("book_pgd", book_pgd, "{:.1%}")
run.glue("suite_gap", 100 * (book_pgd - graded.robust_accuracy), "{:.1f}")
sanity = suite.sanity_table({"SmallCNN": checks})
run.glue("sanity_passed", f"{int(sanity.passed.sum())} of {len(sanity)}")

# %% [markdown]
# One PGD step leaves {glue:text}`pgd_one_step` of the digits correct; after {glue:text}`pgd_steps_max`
# iterations PGD leaves {glue:text}`pgd_at_max` and APGD {glue:text}`apgd_at_max`. The suite, {glue:text}`suite_name`,
# leaves {glue:text}`suite_acc`, against {glue:text}`book_pgd` for the {glue:text}`pgd_steps`-step PGD of the curves
# above on the same digits: a gap of {glue:text}`suite_gap` points. The sanity checks of
# {cite:t}`carlini2019evaluating` ({glue:text}`sanity_passed` passed) ask whether the attacks work at all: accuracy
# must fall to about zero at a radius that can erase the digit, more steps must never help the model, and a black-box
# attack {cite:p}`andriushchenko2020square`, which needs no gradient, must not break what the white-box suite could
# not (if it does, the gradients are misleading the attacks: *gradient masking*).

# %%
display(sanity)

# %% [markdown]
# ## What an adversarial example looks like

# %%
x, y = test_data.float(dev)
x, y = x[:8], y[:8]
e = eps if attack in ("fgsm", "pgd", "noise") else float(np.median(l2_eps_list))  # l2 attacks: a mid l2 radius
if attack.startswith("pgd"):
    example = pgd_attack(e, attack)(model, x, y)
else:
    example = attacks.make_attack(attack, e, generator=torch.Generator().manual_seed(seed))(model, x, y)
with attacks.eval_mode(model), torch.no_grad():
    pred_clean, pred_adv = model(x).argmax(1).cpu(), model(example).argmax(1).cpu()
delta = (example - x).cpu()
fig, axes = plt.subplots(3, 8, figsize=(12, 4.8))
for i in range(8):
    axes[0, i].imshow(x[i, 0].cpu(), cmap="gray", vmin=0, vmax=1)
    axes[0, i].set_title(f"label {int(y[i])}, pred {int(pred_clean[i])}", fontsize=8)
    scale = float(delta.abs().max()) or 1.0
    axes[1, i].imshow(delta[i, 0], cmap="RdBu_r", vmin=-scale, vmax=scale)
    axes[2, i].imshow(example[i, 0].cpu(), cmap="gray", vmin=0, vmax=1)
    axes[2, i].set_title(f"pred {int(pred_adv[i])}", fontsize=8, color="C3" if pred_adv[i] != y[i] else "k")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("clean")
axes[1, 0].set_ylabel("perturbation")
axes[2, 0].set_ylabel(attack)
run.show(fig, "examples")

# %% [markdown]
# The perturbation (middle row, red/blue for $\pm$) is spread over the whole image, including the black
# background the network learned to ignore on clean digits, and the digits remain obvious to a person.
#
# ## Claims
#
# Each chapter ends with the claims it checks. A claim's statement, its source and the source's numbers live in
# `notebooks/claims/00_primer.yaml`, written before any run together with the *margin* the effect must clear; the
# chapter measures the effect with a 95% interval (here a paired bootstrap over the test digits: every attack is
# scored on the same digits) and the verdict follows from where the interval lies: *reproduced* beyond the
# margin in the source's direction, *contradicted* on the other side of no effect, *inconclusive at this scale*
# otherwise. The same records go to `results/00_primer.json` and to the scorecard.
#
# PGD against FGSM at ε={glue:text}`eps_head_text`: {glue:text}`claim_pgd_at_least_fgsm`. Uniform noise against
# PGD: {glue:text}`claim_noise_barely_hurts`.

# %%
l2_pos = [e for e in l2_eps_list if e > 0]
e2 = min(l2_pos, key=lambda e: abs(e - float(np.median(l2_pos))))  # a radius of the grid, near its middle
clean_hits = hits["FGSM", 0.0] if ("FGSM", 0.0) in hits else evaluate.scores(model, test_loader)
run.glue("eps_head_text", f"{eps_head:g}")
run.claim(
    "pgd_at_least_fgsm",
    claims.paired(hits["FGSM", eps_head], hits["PGD", eps_head]),
    ours="; ".join(f"ε={e:g}: PGD {pgd_acc[e]:.1%} vs FGSM {fgsm_acc[e]:.1%}" for e in eps_list if e > 0),
    eps=eps_head,
)
run.claim(
    "pgd_l2_at_least_fgm",
    claims.paired(hits["FGM (l2)", e2], hits["PGD (l2)", e2]),
    ours="; ".join(f"ε={e:g}: PGD {pgd2_acc[e]:.1%} vs FGM {fgm2_acc[e]:.1%}" for e in l2_eps_list if e > 0),
    eps=e2,
)

# %%
drop_noise = float(clean_hits.acc - head["uniform noise"])
drop_pgd = float(clean_hits.acc - head["PGD"])
run.claim(
    "noise_barely_hurts",
    claims.bootstrap(
        lambda c, n, p: (c.mean() - n.mean()) / max(c.mean() - p.mean(), 1e-9),
        clean_hits,
        hits["uniform noise", eps_head],
        hits["PGD", eps_head],
        unit="x",
        method=f"paired bootstrap over {len(test_data)} test images",
    ),
    ours=f"clean {clean_hits.acc:.1%}; noise costs {100 * drop_noise:.1f} points, PGD {100 * drop_pgd:.1f} points",
    eps=eps_head,
)
run.claim(
    "accuracy_falls_with_eps",
    claims.mean(hits["PGD", max(eps_list)], unit="%", scale=100, what="test images"),
    ours=" → ".join(f"{a:.1%}" for a in pgd_acc.sort_index()),
    eps=max(eps_list),
)
run.verdicts()

# %%
run.finish()

# %% [markdown]
# ## Exercises
#
# The exercises reuse this chapter's trained `model` and test digits (`test_data`); each takes seconds on a
# laptop CPU at the medium profile. A coding exercise gives a function to complete and ends with a self-check
# cell, which raises an `AssertionError` with a hint until your answer agrees with `helpers`. The
# {term}`threat model`, {term}`ε <perturbation budget>` and {term}`PGD` are defined in the
# [notation and glossary](../notation.md).

# %% [markdown]
# ```{exercise} Implement the ℓ2 projection
# :label: ex-00-l2-projection
#
# $\ell_2$ PGD projects every iterate back onto the ball $\{\delta : \|\delta\|_2 \le \varepsilon\}$ around
# the clean image. Complete `project_l2(delta, eps)` for a batch `delta` of shape (B, C, H, W): each sample
# is projected on its own, without a Python loop over the batch. Why is this projection a rescaling, what
# happens to a perturbation already inside the ball, and what must happen to $\delta = 0$?
# ```


# %%
def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Project each sample of ``delta`` onto the l2 ball of radius ``eps``."""
    raise NotImplementedError("complete project_l2")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-00-l2-projection
# :class: dropdown
# ```

# %% [markdown] tags=["solution"]
# The closest point of a ball centred at 0 to a point outside it lies on the segment from 0 to that point, so
# the projection keeps the direction and shortens the vector to length $\varepsilon$: multiply by
# $\min(1, \varepsilon/\|\delta\|_2)$. Inside the ball the factor is 1 and nothing changes. The norm is taken
# over all pixels of one sample (`flatten(1)`), and a tiny constant keeps $\delta = 0$ at 0 instead of 0/0.


# %% tags=["solution"]
def project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    """Project each sample of ``delta`` onto the l2 ball of radius ``eps``."""
    norms = delta.flatten(1).norm(dim=1).view(-1, *([1] * (delta.dim() - 1)))
    return delta * torch.clamp(eps / (norms + 1e-12), max=1.0)


# %% [markdown] tags=["solution"]
# ```{solution-end}
# ```

# %% tags=["self-check"]
from helpers import exercises

exercises.check_l2_projection(project_l2)
print("project_l2 agrees with helpers.core.attacks.project")

# %% [markdown]
# ```{exercise} FGSM from scratch
# :label: ex-00-fgsm
#
# Write the $\ell_\infty$ FGSM yourself: `my_fgsm(model, x, y, eps)` returns
# $\mathrm{clip}_{[0,1]}(x + \varepsilon\,\mathrm{sign}\,\nabla_x \ell)$, where $\ell$ is the cross-entropy
# summed over the batch. Take the gradient with `torch.autograd.grad` (not `.backward()`, which would also
# fill the parameters' `.grad`), and do not modify `x`. Why does summing the loss, rather than averaging it,
# not change the result?
# ```


# %%
def my_fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """l-inf FGSM: one step of size eps along the sign of the input gradient, clipped to [0, 1]."""
    raise NotImplementedError("complete my_fgsm")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-00-fgsm
# :class: dropdown
# ```


# %% tags=["solution"]
def my_fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """l-inf FGSM: one step of size eps along the sign of the input gradient, clipped to [0, 1]."""
    x_req = x.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(x_req), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x_req)
    return (x_req.detach() + eps * grad.sign()).clamp(0.0, 1.0)


# %% [markdown] tags=["solution"]
# Each image's loss depends only on that image (the model is in eval mode), so the gradient of the sum with
# respect to image $i$ is the gradient of image $i$'s own loss; the mean would divide it by the batch size,
# and the sign ignores positive factors.
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
x_check, y_check = test_data.float(dev)
x_check, y_check = x_check[:64], y_check[:64]
exercises.check_fgsm(my_fgsm, model, x_check, y_check, eps)
print("my_fgsm agrees with helpers.core.attacks.fgsm")

# %% [markdown]
# ```{exercise} When is PGD just FGSM?
# :label: ex-00-pgd-one-step
#
# Find the arguments of `helpers.core.attacks.pgd` for which it returns exactly FGSM's images, and check it on the
# 64 digits `x_check`. Then, at $\varepsilon$ = `eps`, compare the accuracy of FGSM with that of PGD with
# 1, 5 and 20 steps ($\alpha = 2.5\,\varepsilon/k$, no random start). What do the numbers say about how
# linear the loss is inside the ball?
# ```

# %% [markdown] tags=["solution"]
# ```{solution-start} ex-00-pgd-one-step
# :class: dropdown
# ```

# %% tags=["solution"]
one_step = attacks.pgd(model, x_check, y_check, eps, alpha=eps, steps=1, random_start=False)
print("largest difference from FGSM:", float((one_step - attacks.fgsm(model, x_check, y_check, eps)).abs().max()))
with attacks.eval_mode(model), torch.no_grad():
    print(f"FGSM: {(model(attacks.fgsm(model, x_check, y_check, eps)).argmax(1) == y_check).float().mean():.1%}")
    for k in (1, 5, 20):
        adv = attacks.pgd(model, x_check, y_check, eps, alpha=2.5 * eps / k, steps=k)
        print(f"PGD, {k:2d} steps: {(model(adv).argmax(1) == y_check).float().mean():.1%}")

# %% [markdown] tags=["solution"]
# One step of size $\alpha = \varepsilon$ from the clean image (`random_start=False`) is FGSM's step, and the
# projection onto the ball changes nothing (the difference above is zero up to float rounding). With $k=1$
# and $\alpha = 2.5\varepsilon$ the step overshoots and the projection clips it back: FGSM again. More steps
# lower the accuracy when the loss curves inside the ball, since each step re-reads the gradient where the
# previous one landed; if the loss were linear in the ball, one step would already reach the worst case and
# PGD could not beat FGSM. The gap between FGSM and 20-step PGD measures that non-linearity.
#
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} Why does noise barely hurt?
# :label: ex-00-noise
#
# To first order, a perturbation $\delta$ raises the loss by $\nabla_x\ell \cdot \delta$. For
# $\delta = \varepsilon\,\mathrm{sign}(g)$, $g = \nabla_x\ell$, this is $\varepsilon\|g\|_1$; for a random
# sign vector it has mean 0 and standard deviation $\varepsilon\|g\|_2$. Compute the ratio
# $\|g\|_1/\|g\|_2$ for the 64 digits `x_check` with `helpers.core.attacks.input_gradient` and compare it with
# $\sqrt d$, $d = 784$. What does this say about the uniform-noise curve of this chapter, and about
# images with more pixels?
# ```

# %% [markdown] tags=["solution"]
# ```{solution-start} ex-00-noise
# :class: dropdown
# ```

# %% tags=["solution"]
with attacks.eval_mode(model):
    g_check = attacks.input_gradient(model, x_check, y_check).flatten(1)
ratio = g_check.abs().sum(1) / g_check.norm(dim=1).clamp_min(1e-30)
print(f"median ||g||_1 / ||g||_2 = {ratio.median():.1f}; sqrt(d) = {784**0.5:.0f}")

# %% [markdown] tags=["solution"]
# The ratio lies between 1 (all the gradient on one pixel) and $\sqrt d = 28$ (all pixels equal). The
# adversarial direction raises the loss by that factor more than a typical random sign vector of the same
# $\ell_\infty$ size, which is why the uniform-noise curve barely moves. When the gradient is spread over
# many pixels the ratio grows like $\sqrt d$, so the gap between adversarial and random perturbations widens
# for larger images: the linearity argument of Goodfellow et al. (2015).
#
# ```{solution-end}
# ```

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :list: bullet
# ```
