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
# # Mixed l-inf/l2 adversarial training, capacity, robust overfitting and noise
#
# **Run:** profile {glue:text}`run_profile` · device {glue:text}`run_device` · seed {glue:text}`run_seed` ·
# wall time {glue:text}`run_wall_time`
#
# The BIPARO team's report {cite:p}`biparo2021adversarial` is a tour of adversarial training on CIFAR-10
# {cite:p}`krizhevsky2009learning`: which attack to train on, with which radius, whether
# mixing $\ell_\infty$ and $\ell_2$ attacks helps (MAT-Rand, {cite:t}`araujo2020matrand`), when to stop
# ({cite:t}`rice2020overfitting`), how much capacity is needed ({cite:t}`madry2018towards`), and whether noise
# at prediction or trainable noise in the layers ({cite:t}`he2019pni`) adds robustness. It ends with a recipe
# that combines the lessons. We rebuild each of its six tables and three figures at a scale set by the run
# profile, with the same code from a laptop CPU to a GPU, and check each of its claims against our numbers.

# %% tags=["parameters"]
profile = "quick"  # run profile: quick (laptop CPU), ci (a few minutes on CPU, for the tests), full (GPU)
seed = 0  # seed of the subsets, the validation split, initialisations, attack starts and noise draws
device = "auto"  # auto | cpu | cuda | mps
n_train = 4000  # CIFAR-10 training images, a stratified subset of the 50,000 (validation split included)
n_test = 1000  # CIFAR-10 test images, a stratified subset of the 10,000
val_fraction = 0.1  # share of the training subset held out to select checkpoints (never the test set)
batch_size = 32  # images per optimisation step (the full profile: 128)
weight_decay = 5e-4  # SGD weight decay (not applied to the trainable noise scales)
eps = 0.03  # l-inf radius of training and of the attacks, [0, 1] pixel units (the document: 0.03)
alpha = 0.0125  # l-inf PGD step during training (the document: 0.0075, with more steps)
eps_l2 = 0.5  # l2 radius of l2 training and attacks, pixel units (not in the document; Maini et al.'s with 0.03)
alpha_l2 = 0.21  # l2 PGD step during training (the same step/radius ratio as alpha/eps)
train_steps = 3  # PGD iterations when crafting training examples
eval_steps = 5  # PGD iterations of the evaluation attacks (step 2.5 eps / steps, random start)
eot_samples = 4  # gradient draws averaged per attack step against randomized models (EOT)
noise_sigma = 0.03  # std of the Gaussian noise injected at prediction, pixel units (the recipe uses eps itself)
# BasicNet: Tables 1 and 4, Fig. 1
basic_width = 6  # first-convolution channels of BasicNet (6 in the course's network, 62,006 parameters)
basic_epochs = 10  # passes over the training split (the document: 40)
basic_lr = 0.05  # SGD learning rate, momentum 0.9 (small batches and few epochs need more than the full 0.01)
basic_milestones = [0.5, 0.75]  # fractions of training after which the rate drops 10x (document: 20, 30 of 40)
eps_sweep = [0.0, 0.015, 0.03, 0.045, 0.06]  # training radii of Fig. 1 (must hold eps and radii on both sides)
# ResNets and VGG: Tables 2, 3, 5, 6
wrn_width = 8  # first-stage channels of the wide ResNet-18 (64 in the document's: 11.2M parameters)
wider_width = 10  # first-stage channels of the final recipe's wider ResNet-18 (80: 17.5M parameters)
resnet20_width = 8  # first-stage channels of ResNet20 and NoiseNet20 (16: 0.27M parameters)
vgg_width = 8  # first-stage channels of VGG11 (64: 9.2M parameters)
epochs = 5  # passes over the training split (the document: 50)
lr = 0.05  # SGD learning rate, momentum 0.9 (the document's Table 3 procedure: 0.01, at its scale)
milestones = [0.6, 0.8]  # fractions of training after which the rate drops 10x (the document: 30 and 40 of 50)
mat_max = False  # also train the MAT-Max variant of Table 2 (twice the cost of MAT-Rand)
natural_fraction = 0.05  # share of natural batches in the final recipe (the document: 5%)
# Robust overfitting: Fig. 2
overfit_model = "vgg11"  # network of Fig. 2 (the document: BasicNet, which underfits at small scale)
overfit_width = 8  # its width
overfit_n_train = 300  # training images of the run (a subset of the training split)
overfit_epochs = 40  # passes over them
overfit_lr = 0.05  # initial learning rate, divided by 10 at each milestone
overfit_milestones = [0.5, 0.75]  # fractions of training after which the rate drops 10x
n_test_curve = 500  # test images of the per-epoch robust accuracy curve
curve_steps = 3  # PGD iterations of the per-epoch validation and test curves
# Grading: the strong suite (helpers.core.suite) and its sanity checks
suite_budget = "reduced"  # reduced (PGD-20, APGD-CE-25, APGD-T-25 on 3 classes) | full (AutoAttack's budget)
n_suite = 500  # test images the suite grades: a stratified part of the n_test (the document's attacks run on all)
sanity_steps = [5, 10, 40]  # PGD iterations of the "more steps never raise accuracy" check
square_queries = 300  # queries of the Square black-box check (on the images the suite leaves standing)

# %% tags=["remove-cell"]
# Validate every parameter before any compute: a bad value stops here with a message naming it.
from helpers.core import params as P

P.check_profile(profile)
P.check_int("seed", seed, low=0)
P.check_choice("device", device, ("auto", "cpu", "cuda", "mps"))
P.check_int("n_train", n_train, low=200, high=50000)
P.check_int("n_test", n_test, low=50, high=10000)
P.check_real("val_fraction", val_fraction, low=0.0, high=0.5, low_open=True)
P.check_int("batch_size", batch_size, low=2)
P.check_nonnegative("weight_decay", weight_decay)
P.check_real("eps", eps, low=0.0, high=1.0, low_open=True)
P.check_positive("alpha", alpha)
P.check_positive("eps_l2", eps_l2)
P.check_positive("alpha_l2", alpha_l2)
P.check_int("train_steps", train_steps, low=1)
P.check_int("eval_steps", eval_steps, low=1)
P.check_int("eot_samples", eot_samples, low=2)
P.check_real("noise_sigma", noise_sigma, low=0.0, high=1.0, low_open=True)
P.check_int("basic_width", basic_width, low=1)
P.check_int("basic_epochs", basic_epochs, low=2)
P.check_positive("basic_lr", basic_lr)
_frac = lambda n, v: P.check_real(n, v, low=0.0, high=1.0, low_open=True, high_open=True)  # noqa: E731
P.check_list("basic_milestones", basic_milestones, _frac)
P.check_list("eps_sweep", eps_sweep, lambda n, v: P.check_real(n, v, low=0.0, high=1.0), min_len=3)
for _name in ("wrn_width", "wider_width", "resnet20_width", "vgg_width", "overfit_width"):
    P.check_int(_name, globals()[_name], low=1)
P.check_int("epochs", epochs, low=2)
P.check_positive("lr", lr)
P.check_list("milestones", milestones, _frac)
if not isinstance(mat_max, bool):
    raise ValueError(f"mat_max must be True or False (got {mat_max!r})")
P.check_fraction("natural_fraction", natural_fraction)
P.check_choice("overfit_model", overfit_model, ("basicnet", "resnet20", "resnet18", "vgg11"))
P.check_int("overfit_n_train", overfit_n_train, low=100)
P.check_int("overfit_epochs", overfit_epochs, low=3)
P.check_positive("overfit_lr", overfit_lr)
P.check_list("overfit_milestones", overfit_milestones, _frac)
P.check_int("n_test_curve", n_test_curve, low=50, high=n_test)
P.check_int("curve_steps", curve_steps, low=1)
P.check_choice("suite_budget", suite_budget, ("reduced", "full"))
P.check_int("n_suite", n_suite, low=20, high=n_test)
P.check_list("sanity_steps", sanity_steps, lambda n, v: P.check_int(n, v, low=1), min_len=2)
P.check_int("square_queries", square_queries, low=1)
if eps not in eps_sweep or not any(e < eps for e in eps_sweep) or not any(e > eps for e in eps_sweep):
    raise ValueError(f"eps_sweep must hold eps={eps} and radii on both sides of it (got {eps_sweep})")
if wider_width <= wrn_width:
    raise ValueError(f"wider_width must exceed wrn_width={wrn_width} (got {wider_width})")
if overfit_n_train > round(n_train * (1 - val_fraction)):
    raise ValueError(f"overfit_n_train must be at most the training split, {round(n_train * (1 - val_fraction))}")

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from helpers import claims
from helpers.core import data, evaluate, models, plots, suite, training
from helpers.core.device import get_device, seed_everything
from helpers.core.models.noise import noise_parameters, noise_scales, with_input_noise
from helpers.papers import matrand
from helpers.results import Run

CHAPTER = "03_matrand_wrn"
dev = get_device(None if device == "auto" else device)
gen = seed_everything(seed)
plots.use_style()
PARAMS = [
    "n_train", "n_test", "val_fraction", "batch_size", "weight_decay", "eps", "alpha", "eps_l2", "alpha_l2",
    "train_steps", "eval_steps", "eot_samples", "noise_sigma", "basic_width", "basic_epochs", "basic_lr",
    "basic_milestones", "eps_sweep", "wrn_width", "wider_width", "resnet20_width", "vgg_width", "epochs", "lr",
    "milestones", "mat_max", "natural_fraction", "overfit_model", "overfit_width", "overfit_n_train",
    "overfit_epochs", "overfit_lr", "overfit_milestones", "n_test_curve", "curve_steps", "suite_budget", "n_suite",
    "sanity_steps", "square_queries",
]  # fmt: skip
run = Run(
    CHAPTER,
    "MAT-Rand and wide ResNets",
    profile=profile,
    seed=seed,
    device=dev,
    params={k: globals()[k] for k in PARAMS},
)
run.banner()

# %% [markdown]
# ## Set-up
#
# **Attacks.** Every budget is in $[0,1]$ pixel units (the networks normalize their input themselves). The
# $\ell_\infty$ attacks use $\varepsilon$ = {glue:text}`eps`, the document's radius. The document does not give
# its $\ell_2$ radius; we use $\varepsilon_2$ = {glue:text}`eps_l2`, the radius that {cite:t}`maini2020union`
# pair with $\ell_\infty$ radius 0.03 on CIFAR-10, also the $\ell_2$ radius of {cite:t}`rice2020overfitting`.
# Training examples are crafted with {glue:text}`train_steps`-step PGD from a random start in the ball (step
# {glue:text}`alpha` for $\ell_\infty$; the full profile uses the document's 0.0075 with more steps);
# evaluation uses {glue:text}`eval_steps`-step PGD with step $2.5\,\varepsilon/k$ and a random start, and
# FGSM (one signed step of size $\varepsilon$).
#
# **Two evaluations.** The document graded its networks with these PGD attacks, whose iteration counts it does
# not give; every table shows them as it ran them (rows named with their steps and step size), to reproduce its
# numbers. A few fixed steps stop short of what an attacker finds, so a model's *robust accuracy* in this
# chapter, and every claim about robustness, comes from the book's evaluation suite ({glue:text}`suite_budget`
# budget): per test image the worst case over PGD, APGD-CE and targeted APGD (Croce and Hein 2020, the core of
# AutoAttack) at the same radius, on {glue:text}`n_suite` of the test images (a stratified part; the rows named
# "suite" give the attacks in full). The rows "gap" give how much the document's PGD overstates the suite on
# the same images: that difference is a lesson, not a detail. Networks with noise at prediction are random: they
# are attacked with EOT (below), and each of their accuracies, natural ones included, is the mean over
# {glue:text}`n_draws` noise draws, shown with the standard deviation between draws.
#
# **Data.** A stratified subset of {glue:text}`n_train` CIFAR-10 training images, of which
# {glue:text}`n_val` are held out as a validation split for checkpoint selection, and {glue:text}`n_test`
# test images for every table. With {glue:text}`n_test` test images an accuracy near 50% has a standard error
# of {glue:text}`se_pts` points, and a difference of two of them about {glue:text}`se_diff_pts` points; on the
# suite's {glue:text}`n_suite` images, {glue:text}`se_suite_pts` and {glue:text}`se_suite_diff_pts` points. Each
# claim of the chapter carries its own 95% interval (a paired bootstrap over the same test images), judged
# against a margin fixed in its claims file before any run.
#
# **Training.** SGD with momentum 0.9 and weight decay {glue:text}`weight_decay`, batches of
# {glue:text}`batch_size`, the learning rate divided by 10 at fixed fractions of training. The attack that
# crafts a training batch runs on the model in eval mode (BatchNorm running statistics).

# %% tags=["remove-cell"]
train_all = data.load_subset("cifar10", "train", n_train, seed)
train_data, val_data = data.split_off(train_all, val_fraction, seed)
test_data = data.load_subset("cifar10", "test", n_test, seed)
curve_data = data.load_subset("cifar10", "test", n_test_curve, seed)
train_loader = data.Loader(train_data, batch_size, shuffle=True, seed=seed, device=dev)
val_loader = data.Loader(val_data, 500, device=dev)
curve_loader = data.Loader(curve_data, 500, device=dev)

train_threat = matrand.Threat(eps, alpha, eps_l2, alpha_l2, train_steps)
eval_threat = matrand.Threat(eps, 2.5 * eps / eval_steps, eps_l2, 2.5 * eps_l2 / eval_steps, eval_steps)
curve_threat = matrand.Threat(eps, 2.5 * eps / curve_steps, eps_l2, 2.5 * eps_l2 / curve_steps, curve_steps)
curve_attack = matrand.attacks_for(curve_threat)["pgd_linf"]
# Every accuracy of the tables: the document's attacks on all test images, the suite on n_suite of them.
G = matrand.Grader(eval_threat, test_data, n_suite, budget=suite_budget, eot_samples=eot_samples, device=dev, seed=seed)
ROW = G.labels()  # row labels naming each attack (deterministic networks)
ROW_R = G.labels(randomized=True)  # ... in tables with randomized networks (EOT, mean over noise draws)
SE = 0.5 / np.sqrt(n_test)  # standard error of an accuracy near 50% on the test subset
SE_DIFF = np.sqrt(2) * SE  # ... and of the difference of two such accuracies
SE_S = 0.5 / np.sqrt(n_suite)  # the same on the suite's images
SE_S_DIFF = np.sqrt(2) * SE_S
LABELS = {"natural": "natural", "pgd_linf": "l-inf PGD", "pgd_l2": "l2 PGD", "fgsm": "l-inf FGSM"}
for _k, _v in {
    "n_train": f"{len(train_all):,}",
    "n_val": f"{len(val_data):,}",
    "n_test": f"{n_test:,}",
    "eps": f"{eps:g}",
    "eps_l2": f"{eps_l2:g}",
    "alpha": f"{alpha:g}",
    "train_steps": f"{train_steps}",
    "eval_steps": f"{eval_steps}",
    "eot_samples": f"{eot_samples}",
    "weight_decay": f"{weight_decay:g}",
    "batch_size": f"{batch_size}",
    "se_pts": f"{100 * SE:.1f}",
    "se_diff_pts": f"{100 * SE_DIFF:.1f}",
    "se_suite_pts": f"{100 * SE_S:.1f}",
    "se_suite_diff_pts": f"{100 * SE_S_DIFF:.1f}",
    "suite_budget": suite_budget,
    "n_suite": f"{n_suite:,}",
    "n_draws": f"{G.draws}",
}.items():
    run.glue(_k, _v)

_models: dict[str, tuple] = {}


def train(
    arch: str,
    width: int,
    scheme: str,
    *,
    n_epochs: int,
    lr0: float,
    drops: list[float],
    eps_train: float = eps,
    train_set: data.TensorData | None = None,
    early_stop: bool = False,
    curve: bool = False,
    learning_curve: bool = False,
) -> tuple[torch.nn.Module, list[dict], dict | None]:
    """Train (or load from the checkpoint cache) one configuration; returns (model, history, selected epoch).

    ``early_stop``: robust validation every epoch, and the model returned is the epoch with the best robust
    validation accuracy (the selected epoch's dict also names the checkpoint, which holds the last epoch).
    ``curve``: record the test-set robust accuracy per epoch (for a figure only).
    ``learning_curve``: record clean validation accuracy and the noise scales per epoch.
    """
    tset = train_set if train_set is not None else train_data
    eps_train = 0.0 if scheme == "natural" else eps_train  # one natural model: Table 1's and Fig. 1's radius 0
    cfg = {
        "arch": arch, "width": width, "scheme": scheme, "epochs": n_epochs, "lr": lr0, "milestones": drops,
        "threat": train_threat.with_eps(eps_train).config(), "batch_size": batch_size, "wd": weight_decay,
        "n_train": len(tset), "n_train_all": n_train, "val_fraction": val_fraction, "seed": seed,
        "natural_fraction": natural_fraction if scheme == "recipe" else None, "early_stop": early_stop,
        "curve": [n_test_curve, curve_steps] if curve else None, "learning_curve": learning_curve,
        "val": [curve_steps] if early_stop else None,
    }  # fmt: skip
    key = training.config_hash(cfg)
    if key in _models:
        return _models[key]
    torch.manual_seed(seed)
    model = models.build(arch, "cifar10", width).to(dev)
    scales, rest = noise_parameters(model)
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if scales:
        groups.append({"params": scales, "weight_decay": 0.0})
    opt = torch.optim.SGD(groups, lr=lr0, momentum=0.9)
    sched = matrand.step_schedule(opt, n_epochs, drops)
    adversary = matrand.make_adversary(
        scheme, train_threat.with_eps(eps_train), natural_fraction=natural_fraction, seed=seed
    )
    loader = data.Loader(tset, batch_size, shuffle=True, seed=seed, device=dev)
    ckpt = training.checkpoint_path(f"{CHAPTER}-{arch}-{scheme}", cfg)
    tag = f"{arch}/{scheme}" + (f" ε={eps_train:g}" if scheme != "natural" else "")

    def log(epoch: int, row: dict) -> None:
        if adversary is not None:
            row.update({f"batches_{k}": float(v) for k, v in adversary.counts.items()})
        if scales:
            row["noise_scale"] = float(np.mean(noise_scales(model)))

    common = dict(optimizer=opt, scheduler=sched, epochs=n_epochs, adversary=adversary, seed=seed, desc=tag)
    best = None
    if early_stop:
        test_curve = (lambda m: evaluate.accuracy(m, curve_loader, curve_attack, desc="test curve")) if curve else None
        history, best = matrand.fit_selected(
            model, loader, val_loader, val_attack=curve_attack, checkpoint=ckpt, test_curve=test_curve,
            on_epoch_end=log, **common,
        )  # fmt: skip
        best["checkpoint"] = ckpt  # it also holds the last epoch's weights
    else:
        history = training.fit(
            model, loader, val=val_loader if learning_curve else None, checkpoint=ckpt, on_epoch_end=log, **common
        )
    model.eval()
    _models[key] = (model, history, best)
    return _models[key]


def side_by_side(acc: pd.DataFrame, spread: pd.DataFrame, doc: dict[str, list[float]]) -> pd.DataFrame:
    """Our table (accuracies in %, ± the spread between noise draws) next to the document's, which has numbers for
    the natural images and its own three attacks only."""
    labels = ROW_R if ROW_R["natural"] in acc.index else ROW
    theirs = pd.DataFrame(doc, index=[labels[a] for a in matrand.ATTACK_NAMES]).reindex(acc.index)
    return pd.concat({"ours": matrand.with_spread(acc, spread), "document": theirs.astype(object).fillna("")}, axis=1)


BASIC = dict(n_epochs=basic_epochs, lr0=basic_lr, drops=basic_milestones)
PROC = dict(n_epochs=epochs, lr0=lr, drops=milestones)

# %% [markdown]
# ## Table 1: BasicNet trained three ways
#
# BasicNet is the course's basic CNN (two 5x5 convolutions with max-pooling, three fully connected layers;
# {glue:text}`basic_params` parameters at width {glue:text}`basic_width`). We train it for
# {glue:text}`basic_epochs` epochs (the document: 40, the rate dropped at epochs 20 and 30) on $\ell_\infty$
# PGD, $\ell_2$ PGD or $\ell_\infty$ FGSM examples, and, as a reference the document does not show, on natural
# images; then we evaluate each on natural images, under the document's three attacks, and with the suite at
# both radii. Accuracies in %.

# %%
t1_models = {s: train("basicnet", basic_width, s, **BASIC)[0] for s in ("pgd_linf", "pgd_l2", "fgsm", "natural")}
t1, t1_sd = G.table({f"{LABELS[s]} training": m for s, m in t1_models.items()})
DOC1 = {
    "l-inf PGD training": [40.7, 27.46, 28.86, 27.96],
    "l2 PGD training": [47.7, 27.22, 32.7, 28.41],
    "l-inf FGSM training": [43.2, 24.15, 25.4, 29.34],
    "natural training": [np.nan] * 4,
}
display(side_by_side(t1, t1_sd, DOC1))

# %% tags=["remove-cell"]
run.glue("basic_params", f"{models.count_parameters(t1_models['natural']):,}")
run.glue("basic_width", f"{basic_width}")
run.glue("basic_epochs", f"{basic_epochs}")
adv_cols = ["l-inf PGD training", "l2 PGD training", "l-inf FGSM training"]
SUITE_ROWS = {"l-inf suite": ROW["suite_linf"], "l2 suite": ROW["suite_l2"]}  # robustness: the suite's
pgd_margin = {
    (col, short): float(t1.loc[row, col] - t1.loc[row, "natural training"])
    for col in ("l-inf PGD training", "l2 PGD training")
    for short, row in SUITE_ROWS.items()
}
pgd_margin_doc = {  # the same margins under the document's three attacks, as it measured them
    (col, LABELS[a]): float(t1.loc[ROW[a], col] - t1.loc[ROW[a], "natural training"])
    for col in ("l-inf PGD training", "l2 PGD training")
    for a in matrand.ATTACK_NAMES[1:]
}
l2_row = t1.loc[ROW["suite_l2"], adv_cols]
l2_row_doc = t1.loc[ROW["pgd_l2"], adv_cols]
run.glue("t1_min_margin", 100 * min(pgd_margin.values()), "{:.1f}")
run.glue("t1_min_margin_doc", 100 * min(pgd_margin_doc.values()), "{:.1f}")
run.glue("t1_nat_pgd", float(t1.loc[ROW["suite_linf"], "natural training"]), "{:.1%}")
run.glue("t1_linf_pgd", float(t1.loc[ROW["suite_linf"], "l-inf PGD training"]), "{:.1%}")
run.glue("t1_linf_pgd_doc", float(t1.loc[ROW["pgd_linf"], "l-inf PGD training"]), "{:.1%}")
run.glue("t1_linf_gap", 100 * float(t1.loc[ROW["gap_linf"], "l-inf PGD training"]), "{:+.1f}")
run.glue("t1_l2_under_l2", float(l2_row["l2 PGD training"]), "{:.1%}")
run.glue("t1_best_other_l2", float(l2_row.drop("l2 PGD training").max()), "{:.1%}")
run.glue("t1_l2_under_l2_doc", float(l2_row_doc["l2 PGD training"]), "{:.1%}")
run.glue("t1_best_other_l2_doc", float(l2_row_doc.drop("l2 PGD training").max()), "{:.1%}")
_gaps = 100 * t1.loc[[ROW["gap_linf"], ROW["gap_l2"]]].stack()
run.glue("t1_gap_range", f"from {_gaps.min():+.1f} to {_gaps.max():+.1f}")

# %% [markdown]
# Graded by the suite at $\varepsilon$ = {glue:text}`eps`, the naturally trained BasicNet keeps
# {glue:text}`t1_nat_pgd`; trained on $\ell_\infty$ PGD it keeps {glue:text}`t1_linf_pgd`, where the document's
# PGD reads {glue:text}`t1_linf_pgd_doc` ({glue:text}`t1_linf_gap` points on the same images; over the table the
# gap runs {glue:text}`t1_gap_range` points). Over the two PGD trainings and the suite at both radii, the
# smallest gain over natural training is {glue:text}`t1_min_margin` points (under the document's three attacks
# {glue:text}`t1_min_margin_doc`). Under the $\ell_2$ suite the $\ell_2$-trained network keeps
# {glue:text}`t1_l2_under_l2`, the best of the other two trainings {glue:text}`t1_best_other_l2` (under the
# document's $\ell_2$ PGD: {glue:text}`t1_l2_under_l2_doc` and {glue:text}`t1_best_other_l2_doc`). With their
# intervals over the suite's images: PGD training against natural training, the smallest of the four gains,
# {glue:text}`claim_pgd_training_robust_all_attacks`; $\ell_2$ training against the better of the other two under
# the $\ell_2$ suite, {glue:text}`claim_l2_training_best_under_l2`.
#
# ## Figure 1: the training radius
#
# The document attacks with $\ell_\infty$ PGD at $\varepsilon$ = 0.03 and trains BasicNet with $\ell_\infty$
# PGD at several radii (the PGD step scales with the radius); radius 0 is natural training. It finds the best
# training radius at the attack's, and under-training more harmful than over-training. We grade each network
# with the document's PGD and with the $\ell_\infty$ suite, both at $\varepsilon$ = {glue:text}`eps`.

# %%
sweep_models = {
    e: train("basicnet", basic_width, "pgd_linf" if e > 0 else "natural", eps_train=e, **BASIC)[0] for e in eps_sweep
}
sweep, _ = G.table(sweep_models, attacks=("natural", "pgd_linf"), norms=("linf",))
sweep = sweep.T.rename_axis("training ε")
fig, ax = plt.subplots()
ax.plot(sweep.index, sweep[ROW["suite_linf"]], marker="o", label=f"suite at ε={eps:g} (robust accuracy)")
ax.plot(sweep.index, sweep[ROW["pgd_linf"]], marker="^", ls="-.", label=f"document's {ROW['pgd_linf']}, ε={eps:g}")
ax.plot(sweep.index, sweep[ROW["natural"]], marker="s", ls="--", label="natural images")
ax.axvline(eps, color="k", lw=1, ls=":")
ax.set(xlabel="training radius ε (l-inf PGD)", ylabel="test accuracy", title="BasicNet: training radius")
ax.legend()
plots.show(fig, "fig1_training_eps", CHAPTER)
display((100 * sweep).round(1))

# %% tags=["remove-cell"]
rob = sweep[ROW["suite_linf"]]
rob_doc = sweep[ROW["pgd_linf"]]
best_eps = float(rob.idxmax())
below = max(e for e in eps_sweep if e < eps)
above_pairs = [e for e in eps_sweep if e > eps]
above = min(above_pairs, key=lambda e: abs((e - eps) - (eps - below)))  # the radius as far above as `below` is under
run.glue("sweep_best_eps", f"{best_eps:g}")
run.glue("sweep_at_eps", float(rob[eps]), "{:.1%}")
run.glue("sweep_best", float(rob.max()), "{:.1%}")
run.glue("sweep_below", f"{below:g}")
run.glue("sweep_above", f"{above:g}")
run.glue("sweep_acc_below", float(rob[below]), "{:.1%}")
run.glue("sweep_acc_above", float(rob[above]), "{:.1%}")
run.glue("sweep_best_eps_doc", f"{float(rob_doc.idxmax()):g}")
run.glue("sweep_acc_below_doc", float(rob_doc[below]), "{:.1%}")
run.glue("sweep_acc_above_doc", float(rob_doc[above]), "{:.1%}")

# %% [markdown]
# Graded by the suite at $\varepsilon$ = {glue:text}`eps`, the best training radius of the sweep is
# {glue:text}`sweep_best_eps` ({glue:text}`sweep_best`); training at the attack's radius gives
# {glue:text}`sweep_at_eps`. Training at {glue:text}`sweep_below` (under) gives {glue:text}`sweep_acc_below`,
# at {glue:text}`sweep_above` (over, as far from the attack's radius) {glue:text}`sweep_acc_above`. The
# document's PGD puts the best radius at {glue:text}`sweep_best_eps_doc` and reads {glue:text}`sweep_acc_below_doc`
# and {glue:text}`sweep_acc_above_doc` for the two. The attack's radius against the best other radius:
# {glue:text}`claim_matching_eps_best`; over-training against under-training:
# {glue:text}`claim_under_training_hurts_more`.
#
# ## Table 2: MAT-Rand against l-inf PGD training on the wide ResNet
#
# *Mixed adversarial training* (MAT, {cite:t}`araujo2020matrand`) trains on both $\ell_\infty$ and $\ell_2$
# examples. MAT-Rand draws, for each batch, $\ell_\infty$ or $\ell_2$ PGD with probability 1/2; MAT-Max crafts
# both and keeps, per image, the one with the higher loss (twice the cost). The wide ResNet-18 is a ResNet-18
# for 32x32 images (3x3 stem, no max-pool; {glue:text}`wrn_params` parameters at width
# {glue:text}`wrn_width`, 11.2M at the document's 64). All ResNets and VGG here follow the procedure the
# document gives for Table 3: learning rate {glue:text}`lr`, {glue:text}`epochs` epochs, divided by 10 at 60%
# and 80% of training.

# %%
t2_schemes = ["pgd_linf", "mat_rand"] + (["mat_max"] if mat_max else [])
t2_runs = {s: train("resnet18", wrn_width, s, **PROC) for s in t2_schemes}
T2_NAMES = {"pgd_linf": "l-inf PGD training", "mat_rand": "MAT-Rand", "mat_max": "MAT-Max"}
t2, t2_sd = G.table({T2_NAMES[s]: r[0] for s, r in t2_runs.items()})
DOC2 = {"l-inf PGD training": [79.63, 49.44, 41.48, 64.06], "MAT-Rand": [76.94, 46.52, 52.08, 61.44]}
if mat_max:
    DOC2["MAT-Max"] = [np.nan] * 4
display(side_by_side(t2, t2_sd, DOC2))
mix_hist = pd.DataFrame(t2_runs["mat_rand"][1])
mix_counts = {k: int(mix_hist[f"batches_{k}"].iloc[-1]) for k in ("pgd_linf", "pgd_l2")}
print(f"MAT-Rand batches over training: {mix_counts}")

# %% tags=["remove-cell"]
run.glue("wrn_width", f"{wrn_width}")
run.glue("wrn_params", f"{models.count_parameters(t2_runs['pgd_linf'][0]):,}")
run.glue("lr", f"{lr:g}")
run.glue("epochs", f"{epochs}")
mat_gain = {n: float(t2.loc[ROW[f"suite_{n}"], "MAT-Rand"] - t2.loc[ROW[f"suite_{n}"], "l-inf PGD training"])
            for n in ("linf", "l2")}  # fmt: skip
mat_gain_doc = {n: float(t2.loc[ROW[f"pgd_{n}"], "MAT-Rand"] - t2.loc[ROW[f"pgd_{n}"], "l-inf PGD training"])
                for n in ("linf", "l2")}  # fmt: skip
mat_gain_l2 = mat_gain["l2"]
run.glue("mat_gain_l2", 100 * mat_gain_l2, "{:+.1f}")
run.glue("mat_gap_linf", 100 * mat_gain["linf"], "{:+.1f}")
run.glue("mat_gain_l2_doc", 100 * mat_gain_doc["l2"], "{:+.1f}")
run.glue("mat_gap_linf_doc", 100 * mat_gain_doc["linf"], "{:+.1f}")
run.glue("t2_linf_gap", 100 * float(t2.loc[ROW["gap_linf"], "l-inf PGD training"]), "{:+.1f}")
run.glue("mat_share_linf", mix_counts["pgd_linf"] / max(1, sum(mix_counts.values())), "{:.0%}")

# %% [markdown]
# MAT-Rand drew $\ell_\infty$ PGD for {glue:text}`mat_share_linf` of its batches. Against $\ell_\infty$ PGD
# training it changes the robust accuracy (the suite's) by {glue:text}`mat_gain_l2` points at the $\ell_2$
# radius and by {glue:text}`mat_gap_linf` points at the $\ell_\infty$ radius; the document's PGD reads
# {glue:text}`mat_gain_l2_doc` and {glue:text}`mat_gap_linf_doc` (the document: +10.6 and -2.9). On the
# $\ell_\infty$-trained network the document's PGD stands {glue:text}`t2_linf_gap` points above the suite. With
# their intervals: at the $\ell_2$ radius {glue:text}`claim_matrand_gains_l2`; at the $\ell_\infty$ radius
# (the document's "keeping good overall results", read as a loss under 5 points)
# {glue:text}`claim_matrand_keeps_linf`.
#
# ## Figure 2: robust overfitting and early stopping
#
# {cite:t}`rice2020overfitting` found that, in adversarial training, the robust test accuracy peaks soon after
# the first learning-rate drop and then declines while the training loss keeps falling. The document saw it with
# BasicNet; overfitting needs a network that can fit its training set, which BasicNet cannot do at our smaller
# scales (it is still underfitting when training ends), so the network is a parameter of the run. We train
# {glue:text}`overfit_model` with $\ell_\infty$ PGD on {glue:text}`overfit_n_train` images for
# {glue:text}`overfit_epochs` epochs, the rate divided by 10 at the marked epochs, and measure every epoch the
# accuracy under {glue:text}`curve_steps`-step $\ell_\infty$ PGD on the validation split and on
# {glue:text}`n_test_curve` test images. These curves are training diagnostics, measured every epoch with the
# cheap attack that selects the checkpoint; they compare epochs of one run with each other, and the suite is
# not needed for that. Rice et al., like most of the literature, pick the best checkpoint on the *test* set; that
# makes the reported number an optimistic, selected maximum. We select on the held-out validation split
# instead and only then look at the test curve, which takes no part in the choice.

# %%
overfit_set = data.subset(train_data, overfit_n_train, seed)
of_model, of_hist, of_best = train(
    overfit_model,
    overfit_width,
    "pgd_linf",
    n_epochs=overfit_epochs,
    lr0=overfit_lr,
    drops=overfit_milestones,
    train_set=overfit_set,
    early_stop=True,
    curve=True,
)
of = pd.DataFrame(of_hist).set_index("epoch")
drops_at = [r["epoch"] for r, prev in zip(of_hist[1:], of_hist[:-1], strict=True) if r["lr"] < prev["lr"]]
fig, ax = plt.subplots()
ax.plot(of.index, of["train_acc"], label="training (adversarial) accuracy", color="C2")
_curve = f"l-inf PGD-{curve_steps}, step {curve_threat.alpha_linf:.3g}"  # a training diagnostic, not the suite
ax.plot(of.index, of["val_robust_acc"], marker="o", ms=3, label=f"validation, {_curve}", color="C0")
ax.plot(of.index, of["test_robust_acc"], marker="s", ms=3, label=f"test, {_curve}", color="C1")
for d in drops_at:
    ax.axvline(d - 0.5, color="k", lw=1, ls=":")
ax.axvline(of_best["epoch"], color="C0", lw=2, alpha=0.3, label="selected on validation")
ax.set(xlabel="epoch", ylabel="accuracy", title=f"Robust overfitting ({overfit_model}, l-inf PGD training)")
ax.legend(fontsize=8)
plots.show(fig, "fig2_robust_overfitting", CHAPTER)

# %% tags=["remove-cell"]
last_epoch = int(of.index.max())
first_drop = drops_at[0] if drops_at else last_epoch
after = of.loc[of.index >= first_drop, "test_robust_acc"]
of_sel_test = float(of.loc[of_best["epoch"], "test_robust_acc"])
of_last_test = float(of.loc[last_epoch, "test_robust_acc"])
# the last epoch's weights (kept in the run's checkpoint), to score both checkpoints on the same test images
of_last_model = models.build(overfit_model, "cifar10", overfit_width).to(dev)
of_last_model.load_state_dict(training.load_checkpoint(of_best["checkpoint"], map_location=dev)["model"])
of_last_model.eval()
run.glue("overfit_model", overfit_model)
run.glue("overfit_n_train", f"{overfit_n_train:,}")
run.glue("overfit_epochs", f"{overfit_epochs}")
run.glue("curve_steps", f"{curve_steps}")
run.glue("n_test_curve", f"{n_test_curve:,}")
run.glue("of_sel_epoch", f"{of_best['epoch']}")
run.glue("of_first_drop", f"{first_drop}")
run.glue("of_sel_test", of_sel_test, "{:.1%}")
run.glue("of_last_test", of_last_test, "{:.1%}")
run.glue("of_peak_test", float(after.max()), "{:.1%}")
run.glue("of_peak_epoch", f"{int(after.idxmax())}")
run.glue("of_train_last", float(of.loc[last_epoch, "train_acc"]), "{:.1%}")

# %% [markdown]
# The first drop comes at epoch {glue:text}`of_first_drop`. The validation split selects epoch
# {glue:text}`of_sel_epoch`, whose test robust accuracy is {glue:text}`of_sel_test`; the last epoch has
# {glue:text}`of_last_test` (training accuracy on adversarial batches {glue:text}`of_train_last`). The test curve
# itself peaks after the drop at epoch {glue:text}`of_peak_epoch` with {glue:text}`of_peak_test`: that is the
# number test-set selection would report. Scored again on all {glue:text}`n_test` test images with the document's
# $\ell_\infty$ PGD, the selected checkpoint against the last: {glue:text}`claim_robust_overfitting`.
#
# ## Table 3: capacity
#
# Three networks trained on a random mix of $\ell_\infty$ and $\ell_2$ PGD (MAT-Rand) with the document's
# procedure: ResNet20 {cite:p}`he2016deep` (three stages of three residual blocks), the wide ResNet-18 of
# Table 2, and VGG11 {cite:p}`simonyan2015vgg` (eight 3x3 convolutions with batch normalization, one linear
# layer). The wide ResNet is the same run as Table 2's MAT-Rand column.

# %%
t3_runs = {
    "ResNet20": train("resnet20", resnet20_width, "mat_rand", learning_curve=True, **PROC),
    "wide ResNet-18": t2_runs["mat_rand"],
    "VGG11": train("vgg11", vgg_width, "mat_rand", **PROC),
}
t3, t3_sd = G.table({k: r[0] for k, r in t3_runs.items()})
DOC3 = {
    "ResNet20": [70.01, 39.76, 48.10, 53.82],
    "wide ResNet-18": [79.94, 43.52, 54.08, 61.44],
    "VGG11": [75.16, 43.48, 52.54, 57.24],
}
display(side_by_side(t3, t3_sd, DOC3))
doc_widths = {"ResNet20": ("resnet20", 16), "wide ResNet-18": ("resnet18", 64), "VGG11": ("vgg11", 64)}
sizes = pd.DataFrame(
    {
        "parameters (ours)": [models.count_parameters(r[0]) for r in t3_runs.values()],
        "parameters (document's width)": [
            models.count_parameters(models.build(a, "cifar10", w)) for a, w in doc_widths.values()
        ],
    },
    index=list(t3_runs),
)
display(sizes)

# %% tags=["remove-cell"]
wide_vs_narrow = {
    short: float(t3.loc[row, "wide ResNet-18"] - t3.loc[row, "ResNet20"]) for short, row in SUITE_ROWS.items()
}
wide_vs_narrow_doc = {
    LABELS[a]: float(t3.loc[ROW[a], "wide ResNet-18"] - t3.loc[ROW[a], "ResNet20"]) for a in ("pgd_linf", "pgd_l2")
}
run.glue("cap_gain_linf", 100 * wide_vs_narrow["l-inf suite"], "{:+.1f}")
run.glue("cap_gain_l2", 100 * wide_vs_narrow["l2 suite"], "{:+.1f}")
run.glue("cap_gain_linf_doc", 100 * wide_vs_narrow_doc["l-inf PGD"], "{:+.1f}")
run.glue("cap_gain_l2_doc", 100 * wide_vs_narrow_doc["l2 PGD"], "{:+.1f}")
run.glue("ratio_params", f"{sizes.iloc[1, 0] / sizes.iloc[0, 0]:.0f}")

# %% [markdown]
# The wide ResNet-18 has {glue:text}`ratio_params` times the parameters of ResNet20; against it, it changes the
# robust accuracy (the suite's) by {glue:text}`cap_gain_linf` points at the $\ell_\infty$ radius and
# {glue:text}`cap_gain_l2` points at the $\ell_2$ radius (the document's PGD: {glue:text}`cap_gain_linf_doc` and
# {glue:text}`cap_gain_l2_doc`). The mean of the two, against the document's "drastically" (read as more than 3
# points): {glue:text}`claim_capacity_improves_robustness`. Wide against deep, the wide ResNet-18 against VGG11:
# {glue:text}`claim_wider_beats_deeper`.
#
# ## Table 4: noise injection at prediction
#
# A trained network can be made random at prediction: it classifies $x + \eta$ with
# $\eta \sim \mathcal N(0, \sigma^2 I)$, here $\sigma$ = {glue:text}`noise_sigma` {cite:p}`araujo2020matrand`.
# We wrap the $\ell_\infty$-PGD-trained BasicNet (Table 1) and wide ResNet (Table 2). A random defence must
# also be attacked with *expectation over transformation* (EOT, {cite:t}`athalye2018obfuscated`): each attack
# step averages the gradient over {glue:text}`eot_samples` noise draws. Without EOT, the attacker follows the
# gradient of one draw, and an apparent gain can be only a noisier attack. The columns "with noise" run the
# document's attacks as it did, without EOT; "EOT attacks" the same attacks with EOT. The suite always attacks a
# random network with EOT, so its rows are the same in both. Every accuracy of a network with noise is the mean
# over {glue:text}`n_draws` noise draws ± the standard deviation between draws.

# %%
t4_base = {"BasicNet": t1_models["pgd_linf"], "wide ResNet": t2_runs["pgd_linf"][0]}
t4_noisy = {k: with_input_noise(m, noise_sigma) for k, m in t4_base.items()}
t4_nets, t4_eot = {}, {}
for k in t4_base:
    t4_nets |= {k: t4_base[k], f"{k} with noise": t4_noisy[k], f"{k} with noise, EOT attacks": t4_noisy[k]}
    t4_eot[f"{k} with noise, EOT attacks"] = True
t4, t4_sd = G.table(t4_nets, eot=t4_eot)
DOC4 = {
    "BasicNet": [24.02, 19.71, 18.56, 19.76],
    "BasicNet with noise": [25.53, 20.78, 18.58, 20.32],
    "BasicNet with noise, EOT attacks": [np.nan] * 4,
    "wide ResNet": [79.94, 43.52, 54.08, 61.44],
    "wide ResNet with noise": [78.13, 44.04, 54.11, 61.15],
    "wide ResNet with noise, EOT attacks": [np.nan] * 4,
}
display(side_by_side(t4, t4_sd, {c: DOC4[c] for c in t4.columns}))
# the gain from noise, per network and radius: the document's PGD without and with EOT, and the suite (EOT)
gains = pd.DataFrame(
    [
        {
            "network": k,
            "radius": LABELS[f"pgd_{n}"].split()[0],
            f"gain, document's PGD-{eval_steps} without EOT": t4.loc[ROW_R[f"pgd_{n}"], f"{k} with noise"]
            - t4.loc[ROW_R[f"pgd_{n}"], k],
            "gain, the same with EOT": t4.loc[ROW_R[f"pgd_{n}"], f"{k} with noise, EOT attacks"]
            - t4.loc[ROW_R[f"pgd_{n}"], k],
            "gain, suite (EOT)": t4.loc[ROW_R[f"suite_{n}"], f"{k} with noise"] - t4.loc[ROW_R[f"suite_{n}"], k],
        }
        for k in t4_base
        for n in ("linf", "l2")
    ]
).set_index(["network", "radius"])
display((100 * gains).round(1))

# %% tags=["remove-cell"]
noise_gain, noise_gain_doc_eot, noise_gain_eot = (float(gains[c].mean()) for c in gains.columns)
run.glue("noise_sigma", f"{noise_sigma:g}")
run.glue("noise_gain", 100 * noise_gain, "{:+.1f}")
run.glue("noise_gain_doc_eot", 100 * noise_gain_doc_eot, "{:+.1f}")
run.glue("noise_gain_eot", 100 * noise_gain_eot, "{:+.1f}")
run.glue("t4_noisy_clean", matrand.with_spread(t4, t4_sd).loc[ROW_R["natural"], "wide ResNet with noise"] + "%")

# %% [markdown]
# Averaged over the two networks and the two radii, noise at prediction changes the robust accuracy by
# {glue:text}`noise_gain` points against the document's PGD, which ignores the randomness, by
# {glue:text}`noise_gain_doc_eot` points against the same PGD with EOT, and by {glue:text}`noise_gain_eot` points
# graded by the suite with EOT. On natural images the noisy wide ResNet reads {glue:text}`t4_noisy_clean` over
# the noise draws: a single draw is one sample of that spread. The suite's mean gain with its interval (over the
# test images and the noise draws): {glue:text}`claim_noise_injection_gain` (the document: +0.41 points under its
# PGD without EOT). The book's own check that EOT does not weaken the document's PGD on the noisy networks:
# {glue:text}`verdict_eot_attack_at_least_as_strong`.
#
# ## Table 5 and Figure 3: NoiseNet20
#
# Parametric noise injection (PNI, {cite:t}`he2019pni`) adds Gaussian noise to the weights of every layer,
# $\tilde w = w + \alpha\,\sigma(w)\,\eta$, with one trainable scale $\alpha$ per layer (initialised at 0.25, not
# decayed) learned during adversarial training, and keeps the noise at prediction. NoiseNet20 is ResNet20 with
# PNI on its 19 convolutions and its linear layer; both are trained like Table 3's networks. NoiseNet20 is
# random, so it is also attacked with EOT, graded by the suite with EOT, and every accuracy of it is the mean over
# {glue:text}`n_draws` noise draws.

# %%
nn20_model, nn20_hist, _ = train("noisenet20", resnet20_width, "mat_rand", learning_curve=True, **PROC)
r20_model, r20_hist, _ = t3_runs["ResNet20"]
t5_nets = {"NoiseNet20": nn20_model, "NoiseNet20, EOT attacks": nn20_model, "ResNet20": r20_model}
t5, t5_sd = G.table(t5_nets, eot={"NoiseNet20, EOT attacks": True})
DOC5 = {
    "NoiseNet20": [64.62, 41.15, 49.01, 49.51],
    "NoiseNet20, EOT attacks": [np.nan] * 4,
    "ResNet20": [70.01, 39.76, 48.10, 53.82],
}
display(side_by_side(t5, t5_sd, DOC5))
curves = pd.concat(
    {"NoiseNet20": pd.DataFrame(nn20_hist), "ResNet20": pd.DataFrame(r20_hist)}, names=["model"]
).reset_index(level=0)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for i, (name, g) in enumerate(curves.groupby("model", sort=False)):
    axes[0].plot(g.epoch, g.train_acc, marker="o", ms=3, color=f"C{i}", label=f"{name}: training (adversarial)")
    axes[0].plot(g.epoch, g.val_acc, ls="--", marker="s", ms=3, color=f"C{i}", label=f"{name}: validation (natural)")
axes[0].set(xlabel="epoch", ylabel="accuracy", title="Learning curves")
for ax in axes:
    ax.xaxis.get_major_locator().set_params(integer=True)
axes[0].legend(fontsize=8)
axes[1].plot(pd.DataFrame(nn20_hist).epoch, pd.DataFrame(nn20_hist).noise_scale, marker="o", color="C3")
axes[1].set(xlabel="epoch", ylabel="mean noise scale α", title="NoiseNet20: trained noise scales")
fig.tight_layout()
plots.show(fig, "fig3_noisenet_curves", CHAPTER)

# %% tags=["remove-cell"]
t5_txt = matrand.with_spread(t5, t5_sd)
nn20_natural = G.document(nn20_model, "natural")
nn20_flips = float(((nn20_natural.correct > 0) & (nn20_natural.correct < 1)).float().mean())
nn20_draws = nn20_natural.per_draw
run.glue("nn20_alpha_last", float(pd.DataFrame(nn20_hist).noise_scale.iloc[-1]), "{:.3f}")
run.glue("nn20_clean", t5_txt.loc[ROW_R["natural"], "NoiseNet20"] + "%")
run.glue("nn20_clean_range", f"{100 * float(nn20_draws.min()):.1f}% to {100 * float(nn20_draws.max()):.1f}%")
run.glue("nn20_flips", nn20_flips, "{:.0%}")
run.glue("r20_clean", float(t5.loc[ROW_R["natural"], "ResNet20"]), "{:.1%}")
run.glue("nn20_pgd_eot", t5_txt.loc[ROW_R["pgd_linf"], "NoiseNet20, EOT attacks"] + "%")
run.glue("nn20_pgd", t5_txt.loc[ROW_R["pgd_linf"], "NoiseNet20"] + "%")
run.glue("nn20_suite", t5_txt.loc[ROW_R["suite_linf"], "NoiseNet20"] + "%")
run.glue("r20_pgd", float(t5.loc[ROW_R["pgd_linf"], "ResNet20"]), "{:.1%}")
run.glue("r20_suite", float(t5.loc[ROW_R["suite_linf"], "ResNet20"]), "{:.1%}")
_below = t5.loc[ROW_R["suite_linf"], "NoiseNet20"] < t5.loc[ROW_R["natural"], "NoiseNet20"]
run.glue("nn20_robust_vs_clean", "below" if _below else "not below")

# %% [markdown]
# NoiseNet20 reaches {glue:text}`nn20_clean` on natural images over {glue:text}`n_draws` noise draws (single
# draws from {glue:text}`nn20_clean_range`; {glue:text}`nn20_flips` of the test images are classified correctly
# on some draws and wrongly on others), against {glue:text}`r20_clean` for ResNet20. Under the document's
# $\ell_\infty$ PGD it keeps {glue:text}`nn20_pgd`, under the same PGD with EOT {glue:text}`nn20_pgd_eot`, and
# graded by the suite with EOT {glue:text}`nn20_suite` (ResNet20: {glue:text}`r20_pgd` under the document's PGD,
# {glue:text}`r20_suite` graded by the suite). A robust accuracy read on one noise draw can land above a clean
# accuracy read on another draw; over {glue:text}`n_draws` draws the suite's robust accuracy is
# {glue:text}`nn20_robust_vs_clean` the clean accuracy. The mean trained noise scale ends at
# {glue:text}`nn20_alpha_last`. Against ResNet20, NoiseNet20's robust accuracy (mean over the two radii of the
# suite): {glue:text}`claim_noisenet_robust_gain`; its natural accuracy: {glue:text}`claim_noisenet_natural_cost`.
#
# ## Table 6: the final recipe
#
# The document's final network combines the lessons: a wider ResNet-18 (17M parameters against 11M:
# {glue:text}`wider_params` here at width {glue:text}`wider_width`), training batches that are adversarial
# 95% of the time and natural 5% of the time (drawn at random per batch, the adversarial ones split
# between $\ell_\infty$ and $\ell_2$ PGD as in MAT-Rand; after {cite:t}`wu2021wider`), early stopping on the
# robust validation accuracy, and Gaussian noise at prediction ($\sigma$ = {glue:text}`noise_sigma`). The
# baseline is Table 2's $\ell_\infty$-PGD-trained wide ResNet.

# %%
wider_model, wider_hist, wider_best = train("resnet18", wider_width, "recipe", early_stop=True, **PROC)
wider_noisy = with_input_noise(wider_model, noise_sigma)
t6_nets = {
    "wide ResNet-18 (l-inf PGD)": t2_runs["pgd_linf"][0],
    "wider ResNet-18, recipe, no noise": wider_model,
    "wider ResNet-18, recipe": wider_noisy,
    "wider ResNet-18, recipe, EOT attacks": wider_noisy,
}
t6, t6_sd = G.table(t6_nets, eot={"wider ResNet-18, recipe, EOT attacks": True})
DOC6 = {
    "wide ResNet-18 (l-inf PGD)": [79.63, 49.44, 52.48, 64.08],
    "wider ResNet-18, recipe, no noise": [np.nan] * 4,
    "wider ResNet-18, recipe": [80.37, 52.34, 56.02, 65.35],
    "wider ResNet-18, recipe, EOT attacks": [np.nan] * 4,
}
display(side_by_side(t6, t6_sd, DOC6))
wh = pd.DataFrame(wider_hist)
recipe_counts = {k: int(wh[f"batches_{k}"].iloc[-1]) for k in ("pgd_linf", "pgd_l2", "natural")}
print(f"recipe batches over training: {recipe_counts}; selected epoch {wider_best['epoch']} of {len(wh)}")

# %% tags=["remove-cell"]
run.glue("wider_width", f"{wider_width}")
run.glue("wider_params", f"{models.count_parameters(wider_model):,}")
run.glue("wider_sel_epoch", f"{wider_best['epoch']}")
run.glue("recipe_natural_share", recipe_counts["natural"] / max(1, sum(recipe_counts.values())), "{:.1%}")
recipe_gain = {
    a: float(t6.loc[ROW_R[a], "wider ResNet-18, recipe"] - t6.loc[ROW_R[a], "wide ResNet-18 (l-inf PGD)"])
    for a in ("natural", "suite_linf", "suite_l2")
}
run.glue("recipe_gain_linf", 100 * recipe_gain["suite_linf"], "{:+.1f}")
run.glue("recipe_gain_l2", 100 * recipe_gain["suite_l2"], "{:+.1f}")
run.glue("recipe_gain_nat", 100 * recipe_gain["natural"], "{:+.1f}")

# %% [markdown]
# Early stopping kept epoch {glue:text}`wider_sel_epoch`; {glue:text}`recipe_natural_share` of the training
# batches were natural. Against the baseline, the recipe (noise included, its accuracies means over the noise
# draws) changes the accuracy by {glue:text}`recipe_gain_nat` points on natural images and the robust accuracy
# graded by the suite with EOT by {glue:text}`recipe_gain_linf` points at the $\ell_\infty$ radius and
# {glue:text}`recipe_gain_l2` at the $\ell_2$ radius (the document, with its PGD and without EOT: +0.7, +2.9,
# +3.5). The smallest of the three gains, on the suite's images: {glue:text}`claim_recipe_improves`.
#
# ## The networks, graded: the document's PGD against the suite, and the sanity checks
#
# Every network whose robustness this chapter reports, with its $\ell_\infty$ robust accuracy under the
# document's PGD and graded by the suite on the same {glue:text}`n_suite` test images, and the gap between the
# two. Each is saved with its architecture and listed, with its test images, in the chapter's results file
# (`results/03_matrand_wrn.json`, `models`), so a reader can load it with `helpers.core.models.load` and attack it
# again. A grade is only as good as the attacks behind it; the checks of Carlini et al. (2019, "On evaluating
# adversarial robustness") test
# them on every network: at a large radius (l-inf 0.3) the accuracy must fall to about 0, more PGD steps
# ({glue:text}`sanity_steps`) must never raise it, and a black-box attack (Square, {glue:text}`square_queries`
# queries, on the images the suite leaves standing) must not break images the white-box attacks could not. A
# failing check is shown, never hidden: it means the suite's number is an upper bound to be read with care. The
# check's budgets are kept modest at this profile (they run on every network).

# %%
graded_nets = {
    "BasicNet, natural training": t1_models["natural"],
    "BasicNet, l-inf PGD training": t1_models["pgd_linf"],
    "BasicNet, l2 PGD training": t1_models["pgd_l2"],
    "BasicNet, l-inf FGSM training": t1_models["fgsm"],
    **{f"BasicNet, l-inf PGD training at eps {e:g}": m for e, m in sweep_models.items() if e not in (0.0, eps)},
    **{f"wide ResNet-18, {T2_NAMES[s]}": r[0] for s, r in t2_runs.items()},
    "ResNet20, MAT-Rand": r20_model,
    "VGG11, MAT-Rand": t3_runs["VGG11"][0],
    "BasicNet, l-inf PGD training, noise at prediction": t4_noisy["BasicNet"],
    "wide ResNet-18, l-inf PGD training, noise at prediction": t4_noisy["wide ResNet"],
    "NoiseNet20, MAT-Rand": nn20_model,
    "wider ResNet-18, recipe, no noise": wider_model,
    "wider ResNet-18, recipe (noise at prediction)": wider_noisy,
}
graded_summary, sanity = G.record(run, graded_nets, steps=tuple(sanity_steps), square_queries=square_queries)
display(graded_summary.style.format({c: "{:.1%}" for c in graded_summary.columns[1:4]} | {"gap (pts)": "{:+.1f}"}))
display(suite.sanity_table(sanity))

# %% tags=["remove-cell"]
_gap = graded_summary["gap (pts)"]
_failed = [f"{n}: {c}" for n, cs in sanity.items() for c, v in cs.items() if not v["passed"]]
run.glue("sanity_steps", ", ".join(str(k) for k in sorted(set(sanity_steps))))
run.glue("square_queries", f"{square_queries}")
run.glue("n_graded", f"{len(graded_nets)}")
run.glue("gap_min", float(_gap.min()), "{:+.1f}")
run.glue("gap_max", float(_gap.max()), "{:+.1f}")
run.glue("gap_max_model", str(_gap.idxmax()))
run.glue("sanity_failed", "none" if not _failed else "; ".join(_failed))

# %% [markdown]
# Over the {glue:text}`n_graded` networks the document's $\ell_\infty$ PGD stands between {glue:text}`gap_min`
# and {glue:text}`gap_max` points above the suite (largest for {glue:text}`gap_max_model`). Failed sanity checks:
# {glue:text}`sanity_failed`.
#
# ## Claims
#
# Each claim is one of the document's findings, written with its words and numbers in
# `notebooks/claims/03_matrand_wrn.yaml` together with the effect we measure and the margin it must clear, both
# fixed before any run: 0 where the document says "improves", "better" or "best"; more than 3 points for
# "drastically" (capacity) and 2 for "an important cost" (NoiseNet20's natural accuracy); a loss under 5 points
# for MAT-Rand's "keeping good overall results" under $\ell_\infty$ attacks; and, where the document names
# several gains at once ("across the board", "wide ranging"), the smallest of them. Claims about robustness use
# the suite's robust accuracies on its {glue:text}`n_suite` images; NoiseNet20's natural accuracy and the
# robust-overfitting comparison use all {glue:text}`n_test` test images (the latter under the document's
# $\ell_\infty$ PGD). Every effect has a 95% interval, a paired
# bootstrap over the same test images (and over the noise draws of the randomized networks), and the verdict
# follows from where it lies: *reproduced* beyond the margin in the document's direction, *contradicted* on the
# other side of no effect, *inconclusive at this scale* otherwise. The interval covers the test images and the
# noise draws, not training: every number is one training run per configuration (seed {glue:text}`run_seed`),
# and at small scales the training noise between runs is of the order of these effects. The check the book adds
# (EOT at least as strong) is shown apart and counts for nothing. The figure gathers the claims: our effect
# (dot) and interval (bar), no effect (solid line), the margin (dashed) and the document's own effect (diamond)
# where it gives one in the same unit.

# %%
pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
rob_of = lambda m, n: G.grade(m, n).robust  # noqa: E731  (the suite's per-image scores, memoized by G)
# statistics of (baseline, other) pairs of per-image scores on the same images, in points: the smallest or the
# mean of the gains; and one model's accuracy minus the best of the others
pair_min = lambda *s: 100 * min(a.mean() - b.mean() for b, a in zip(s[::2], s[1::2], strict=True))  # noqa: E731
pair_mean = lambda *s: 100 * np.mean([a.mean() - b.mean() for b, a in zip(s[::2], s[1::2], strict=True)])  # noqa: E731
best_of_rest = lambda a, *rest: 100 * (a.mean() - max(r.mean() for r in rest))  # noqa: E731
on_suite = f"paired bootstrap over {n_suite} test images"
on_suite_draws = f"{on_suite} and {G.draws} noise draws"
run.claim(
    "pgd_training_robust_all_attacks",
    claims.bootstrap(
        pair_min,
        *[
            s
            for t in ("pgd_linf", "pgd_l2")
            for n in ("linf", "l2")
            for s in (rob_of(t1_models["natural"], n), rob_of(t1_models[t], n))
        ],
        unit="points",
        method=on_suite,
    ),
    ours="; ".join(f"{c.split(' training')[0]} trained, {r}: {100 * v:+.1f} pts" for (c, r), v in pgd_margin.items())
    + "; the document's attacks (all test images): "
    + "; ".join(f"{c.split(' training')[0]}, {r}: {100 * v:+.1f}" for (c, r), v in pgd_margin_doc.items()),
)
run.claim(
    "l2_training_best_under_l2",
    claims.bootstrap(
        best_of_rest,
        *[rob_of(t1_models[t], "l2") for t in ("pgd_l2", "pgd_linf", "fgsm")],
        unit="points",
        method=on_suite,
    ),
    ours="l2 suite: "
    + ", ".join(f"{c.split(' training')[0]}: {pct(v)}" for c, v in l2_row.items())
    + "; the document's l2 PGD: "
    + ", ".join(f"{c.split(' training')[0]}: {pct(v)}" for c, v in l2_row_doc.items()),
)
run.claim(
    "matching_eps_best",
    claims.bootstrap(
        best_of_rest,
        *[rob_of(sweep_models[e], "linf") for e in [eps] + [e for e in eps_sweep if e != eps]],
        unit="points",
        method=on_suite,
    ),
    ours="suite: "
    + ", ".join(f"ε={e:g}: {pct(v)}" for e, v in rob.items())
    + "; the document's PGD: "
    + ", ".join(f"ε={e:g}: {pct(v)}" for e, v in rob_doc.items()),
    eps=eps,
)
run.claim(
    "under_training_hurts_more",
    claims.paired(rob_of(sweep_models[above], "linf"), rob_of(sweep_models[below], "linf")),
    ours=f"suite: ε={below:g}: {pct(rob[below])}, ε={above:g}: {pct(rob[above])}; the document's PGD: "
    f"{pct(rob_doc[below])} and {pct(rob_doc[above])}",
    above=above,
    below=below,
)
mat_runs = (t2_runs["mat_rand"][0], t2_runs["pgd_linf"][0])
mat_vs = lambda row: f"{pct(t2.loc[row, 'MAT-Rand'])} vs {pct(t2.loc[row, 'l-inf PGD training'])}"  # noqa: E731
run.claim(
    "matrand_gains_l2",
    claims.paired(*[rob_of(m, "l2") for m in mat_runs]),
    ours=f"l2 suite: {mat_vs(ROW['suite_l2'])}; the document's l2 PGD: {mat_vs(ROW['pgd_l2'])}",
)
run.claim(
    "matrand_keeps_linf",
    claims.paired(*[rob_of(m, "linf") for m in mat_runs]),
    ours=f"l-inf suite: {mat_vs(ROW['suite_linf'])}; the document's l-inf PGD: {mat_vs(ROW['pgd_linf'])}",
)
of_pair = (G.document(of_model, "pgd_linf"), G.document(of_last_model, "pgd_linf"))
run.claim(
    "robust_overfitting",
    claims.paired(*of_pair),
    ours=f"selected epoch {of_best['epoch']} of {last_epoch} (first drop at {first_drop}), the document's PGD on "
    f"{n_test} test images: {pct(of_pair[0].acc)} vs last {pct(of_pair[1].acc)}; the test curve ({n_test_curve} "
    f"images): {pct(of_sel_test)} vs {pct(of_last_test)}, peak after the drop {pct(after.max())} at epoch "
    f"{int(after.idxmax())}",
)
cap = {k: t3_runs[k][0] for k in t3_runs}
run.claim(
    "capacity_improves_robustness",
    claims.bootstrap(
        pair_mean,
        *[rob_of(cap[k], n) for n in ("linf", "l2") for k in ("ResNet20", "wide ResNet-18")],
        unit="points",
        method=on_suite,
    ),
    ours="; ".join(
        f"{a}: {pct(t3.loc[r, 'wide ResNet-18'])} vs {pct(t3.loc[r, 'ResNet20'])}" for a, r in SUITE_ROWS.items()
    )
    + f" ({sizes.iloc[1, 0]:,} vs {sizes.iloc[0, 0]:,} parameters); the document's PGD: "
    + "; ".join(f"{a} {100 * v:+.1f} pts" for a, v in wide_vs_narrow_doc.items()),
)
run.claim(
    "wider_beats_deeper",
    claims.bootstrap(
        pair_mean,
        *[rob_of(cap[k], n) for n in ("linf", "l2") for k in ("VGG11", "wide ResNet-18")],
        unit="points",
        method=on_suite,
    ),
    ours="; ".join(
        f"{a}: {pct(t3.loc[r, 'wide ResNet-18'])} vs {pct(t3.loc[r, 'VGG11'])}" for a, r in SUITE_ROWS.items()
    )
    + f" ({sizes.iloc[1, 0]:,} vs {sizes.iloc[2, 0]:,} parameters); the document's PGD: "
    + "; ".join(
        f"{LABELS[a]} {100 * float(t3.loc[ROW[a], 'wide ResNet-18'] - t3.loc[ROW[a], 'VGG11']):+.1f} pts"
        for a in ("pgd_linf", "pgd_l2")
    ),
)
run.claim(
    "noise_injection_gain",
    claims.bootstrap(
        pair_mean,
        *[rob_of(m[k], n) for k in t4_base for n in ("linf", "l2") for m in (t4_base, t4_noisy)],
        unit="points",
        method=on_suite_draws,
    ),
    ours=f"mean gain {100 * noise_gain_eot:+.2f} pts graded by the suite (EOT-{eot_samples}, {G.draws} draws); under "
    f"the document's PGD on {n_test} images {100 * noise_gain:+.2f} pts without EOT and "
    f"{100 * noise_gain_doc_eot:+.2f} pts with EOT; per network and radius (suite): "
    + ", ".join(f"{k} {r} {100 * v:+.1f}" for (k, r), v in gains["gain, suite (EOT)"].items()),
)
eot_vs_plain = claims.bootstrap(
    pair_mean,
    *[G.document(t4_noisy[k], f"pgd_{n}", eot=e) for k in t4_noisy for n in ("linf", "l2") for e in (False, True)],
    unit="points",
    method=f"paired bootstrap over {n_test} test images and {G.draws} noise draws",
)
run.check(
    "eot_attack_at_least_as_strong",
    eot_vs_plain.low <= 0,
    ours=f"accuracy under the document's PGD with EOT-{eot_samples} minus without, mean over the two noisy networks "
    f"and the two radii: {eot_vs_plain.text(2)}",
)
nn_vs = lambda a: f"{t5_txt.loc[ROW_R[a], 'NoiseNet20']}% vs {t5_txt.loc[ROW_R[a], 'ResNet20']}%"  # noqa: E731
run.claim(
    "noisenet_robust_gain",
    claims.bootstrap(
        pair_mean,
        *[rob_of(m, n) for n in ("linf", "l2") for m in (r20_model, nn20_model)],
        unit="points",
        method=on_suite_draws,
    ),
    ours=f"l-inf suite: {nn_vs('suite_linf')}; l2 suite: {nn_vs('suite_l2')}; the document's l-inf PGD (no EOT): "
    f"{nn_vs('pgd_linf')}",
)
run.claim(
    "noisenet_natural_cost",
    claims.paired(
        G.document(nn20_model, "natural"), G.document(r20_model, "natural"), what="test images and noise draws"
    ),
    ours=f"natural accuracy on {n_test} test images: NoiseNet20 {t5_txt.loc[ROW_R['natural'], 'NoiseNet20']}% over "
    f"{G.draws} noise draws, ResNet20 {t5_txt.loc[ROW_R['natural'], 'ResNet20']}%",
)
recipe_pair = (t2_runs["pgd_linf"][0], wider_noisy)
run.claim(
    "recipe_improves",
    claims.bootstrap(
        pair_min,
        *[G.grade(m, "linf").clean for m in recipe_pair],
        *[rob_of(m, n) for n in ("linf", "l2") for m in recipe_pair],
        unit="points",
        method=on_suite_draws,
    ),
    ours=f"on the suite's {n_suite} images, recipe (noise, EOT) minus baseline: natural "
    f"{100 * float(G.grade(recipe_pair[1], 'linf').clean.acc - G.grade(recipe_pair[0], 'linf').clean.acc):+.1f}, "
    f"l-inf suite {100 * recipe_gain['suite_linf']:+.1f}, l2 suite {100 * recipe_gain['suite_l2']:+.1f} pts "
    f"(natural on all {n_test} images: {100 * recipe_gain['natural']:+.1f} pts)",
)
run.verdicts()

# %%
run.finish()

# %% [markdown]
# ## Exercises
#
# The exercises return to the random starts and the mixed training of {cite:t}`araujo2020matrand`, the two
# threat models, and the checkpoint selection of {cite:t}`rice2020overfitting`. They reuse this chapter's
# radii (`eps`, `eps_l2`), its evaluation attacks (`eval_threat`), the MAT-Rand wide ResNet
# (`t2_runs["mat_rand"]`), the test images (`test_data`) and the robust-overfitting run (`of`, `of_best`);
# each takes seconds on a laptop CPU. A coding exercise gives a function to complete and ends with a self-check
# cell, which raises an `AssertionError` with a hint until your answer agrees with `helpers`.

# %% [markdown]
# ```{exercise} A uniform random start in the ℓ2 ball
# :label: ex-03-l2-start
#
# PGD starts from a random point of the ball. For $\ell_\infty$ that is a uniform draw per pixel; for $\ell_2$
# it takes more care. Complete `l2_random_start(shape, eps, generator)`: a tensor of `shape` (B, ...) whose B
# samples are independent and uniform in the $\ell_2$ ball of radius `eps` in $d$ dimensions, $d$ the number
# of entries of one sample. A Gaussian vector divided by its norm is uniform on the sphere; how must the radius
# be distributed, given that the volume within radius $r$ grows like $r^d$? What goes wrong with a radius
# uniform on $[0, \varepsilon]$, and with a uniform draw in the cube followed by the projection onto the ball?
# ```


# %%
def l2_random_start(shape: tuple[int, ...], eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """B = shape[0] independent draws, uniform in the l2 ball of radius eps in numel(shape[1:]) dimensions."""
    raise NotImplementedError("complete l2_random_start")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-03-l2-start
# :class: dropdown
# ```


# %% tags=["solution"]
def l2_random_start(shape: tuple[int, ...], eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """B = shape[0] independent draws, uniform in the l2 ball of radius eps in numel(shape[1:]) dimensions."""
    per_sample = (-1, *([1] * (len(shape) - 1)))
    direction = torch.randn(shape, generator=generator)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(per_sample)
    d = direction[0].numel()
    radius = torch.rand(shape[0], generator=generator).pow(1.0 / d).view(per_sample)
    return eps * radius * direction


r = l2_random_start((1000, 3, 32, 32), eps_l2, torch.Generator().manual_seed(seed)).flatten(1).norm(dim=1) / eps_l2
print(f"CIFAR-10 images, d = 3072: ||δ|| / ε from {r.min():.4f} to {r.max():.4f}, mean {r.mean():.4f}")

# %% [markdown] tags=["solution"]
# For a uniform point, $P(R \le r) = (r/\varepsilon)^d$, the volume ratio; inverting it, $R = \varepsilon
# U^{1/d}$ with $U$ uniform on $[0, 1]$. A radius uniform on $[0, \varepsilon]$ gives every shell the same
# mass, although the outer shells hold almost all of the volume: it crowds the draws near the centre. In
# $d = 3072$ dimensions the uniform law puts $1 - 0.999^{3072} \approx 95\%$ of the draws within 0.1% of the
# surface, as printed above: the random start is, in practice, on the sphere. The cube
# $[-\varepsilon, \varepsilon]^d$ reaches out to $\varepsilon\sqrt d$, so almost every draw in it is
# projected onto the sphere, and not uniformly: directions near the cube's diagonals are favoured.
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
from helpers import exercises

exercises.check_l2_random_start(l2_random_start)
print("l2_random_start is uniform in the l2 ball")

# %% [markdown]
# ```{exercise} MAT-Max, one image at a time
# :label: ex-03-mat-max
#
# MAT-Rand draws one attack per batch; MAT-Max crafts both the $\ell_\infty$ and the $\ell_2$ examples and
# keeps, image by image, the one with the higher cross-entropy. Complete `mat_max_pick(model, x_linf, x_l2,
# y)`, which returns that per-image choice (the $\ell_\infty$ example on a tie). Then attack the chapter's
# MAT-Rand wide ResNet on 64 test images with the two PGD attacks of `matrand.attacks_for(eval_threat)`, and
# compare its accuracy under each attack and under your pick. How often does each attack win? What does
# MAT-Max cost per batch, compared with MAT-Rand?
# ```


# %%
def mat_max_pick(model: torch.nn.Module, x_linf: torch.Tensor, x_l2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """For each image, the adversarial example (l-inf or l2) with the higher cross-entropy."""
    raise NotImplementedError("complete mat_max_pick")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-03-mat-max
# :class: dropdown
# ```


# %% tags=["solution"]
def mat_max_pick(model: torch.nn.Module, x_linf: torch.Tensor, x_l2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """For each image, the adversarial example (l-inf or l2) with the higher cross-entropy."""
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        keep_linf = ce(model(x_linf), y, reduction="none") >= ce(model(x_l2), y, reduction="none")
    return torch.where(keep_linf.view(-1, *([1] * (x_linf.dim() - 1))), x_linf, x_l2)


mat_net = t2_runs["mat_rand"][0].eval()
x_mm, y_mm = test_data.subset(torch.arange(64)).float(dev)
two = matrand.attacks_for(eval_threat, generator=torch.Generator().manual_seed(seed))
x_inf, x_two = two["pgd_linf"](mat_net, x_mm, y_mm), two["pgd_l2"](mat_net, x_mm, y_mm)
x_pick = mat_max_pick(mat_net, x_inf, x_two, y_mm)
with torch.no_grad():
    for name, xa in (("l-inf PGD", x_inf), ("l2 PGD", x_two), ("per-image pick", x_pick)):
        print(f"{name:>14}: accuracy {(mat_net(xa).argmax(1) == y_mm).float().mean():.1%}")
linf_wins = float((x_pick == x_inf).flatten(1).all(1).float().mean())
print(f"the l-inf example has the higher loss for {linf_wins:.0%} of the images")

# %% [markdown] tags=["solution"]
# The choice is per image: computing one batch-mean loss per attack and keeping the whole batch of the winner
# is a different (and weaker) adversary. MAT-Max runs both attacks on every batch, twice the attack cost of
# MAT-Rand (plus a forward pass per candidate), and each image trains on its worst case. The accuracy under the
# pick is close to the accuracy under the union of the two threat models (an image counts as robust only if
# both attacks fail), the number that matters for a network meant to resist both; it is usually at or below
# the lower of the two single-attack accuracies, though not always exactly: the higher loss is not always the
# misclassified one. Which attack wins more often depends on the radii: the two balls are not comparable
# (next exercise).
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
exercises.check_mat_max(mat_max_pick)
print("mat_max_pick keeps, per image, the candidate with the higher loss")

# %% [markdown]
# ```{exercise} Neither ball contains the other
# :label: ex-03-balls
#
# The $\ell_\infty$ ball of radius `eps` and the $\ell_2$ ball of radius `eps_l2` live in $d = 3 \times 32
# \times 32$ dimensions. Compute the $\ell_2$ length of a corner of the $\ell_\infty$ ball, the radius of the
# largest $\ell_\infty$ ball inside the $\ell_2$ ball, and how far a perturbation of the $\ell_2$ ball can move
# one pixel. Does either ball contain the other? What does this say about Table 1 and Table 2: why can
# $\ell_\infty$ training leave a network exposed to $\ell_2$ attacks, and why does training on both help?
# ```

# %% [markdown] tags=["solution"]
# ```{solution-start} ex-03-balls
# :class: dropdown
# ```

# %% tags=["solution"]
d = 3 * 32 * 32
print(f"corner of the l-inf ball: l2 length eps·√d = {eps * d**0.5:.3f} (the l2 radius is {eps_l2:g})")
print(f"largest l-inf ball inside the l2 ball: radius eps_l2/√d = {eps_l2 / d**0.5:.4f} (the l-inf radius is {eps:g})")
print(f"one pixel alone can move by eps_l2 = {eps_l2:g} in the l2 ball, {eps_l2 / eps:.0f} times eps")

# %% [markdown] tags=["solution"]
# The $\ell_\infty$ ball sits inside the $\ell_2$ ball only if its corners do, $\varepsilon\sqrt d \le
# \varepsilon_2$; the $\ell_2$ ball sits inside the $\ell_\infty$ ball only if $\varepsilon_2 \le \varepsilon$.
# With $\varepsilon < \varepsilon_2 < \varepsilon\sqrt d$, as printed for this run, neither holds: the
# $\ell_\infty$ ball holds dense perturbations (every pixel a little) that are long in $\ell_2$, and the
# $\ell_2$ ball holds sparse ones (a few pixels a lot) that are far outside the $\ell_\infty$ ball. A network
# trained on one threat model learns to ignore the perturbations of that shape, not the other: $\ell_\infty$
# training makes it insensitive to small changes everywhere, but an $\ell_2$ attack can spend its budget on the
# few pixels that matter. Training on both (MAT) covers the union of the two balls with one network; the
# capacity that the second threat model takes is why the document saw MAT-Rand lose a little under
# $\ell_\infty$ PGD while gaining much under $\ell_2$ PGD.
#
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} The optimism of selecting on the test set
# :label: ex-03-selection
#
# Fig. 2 selects the checkpoint on the validation split. Suppose one picks instead the epoch with the highest
# test robust accuracy, as much of the literature does. From `of` (one row per epoch), compare the test robust
# accuracy of that epoch with that of the epoch selected on validation (`of_best`). Then simulate: if $K$
# checkpoints all had the same true robust accuracy $p$, each measured on `n_test_curve` images, by how much
# would the best measured value exceed $p$ on average? Compare it with the gap you found.
# ```

# %% [markdown] tags=["solution"]
# ```{solution-start} ex-03-selection
# :class: dropdown
# ```

# %% tags=["solution"]
test_curve = of["test_robust_acc"]
on_val, on_test = int(of_best["epoch"]), int(test_curve.idxmax())
print(f"selected on validation: epoch {on_val}, test robust accuracy {test_curve[on_val]:.1%}")
print(f"selected on test: epoch {on_test}, test robust accuracy {test_curve.max():.1%}")
p_true, k_epochs = float(test_curve.mean()), len(test_curve)
draws = np.random.default_rng(seed).binomial(n_test_curve, p_true, size=(10000, k_epochs)) / n_test_curve
print(
    f"{k_epochs} equally good checkpoints measured on {n_test_curve} images: the best reads "
    f"{100 * (draws.max(1).mean() - p_true):+.1f} points above the truth on average"
)

# %% [markdown] tags=["solution"]
# The maximum of $K$ noisy measurements is biased upwards: with independent errors of standard deviation
# $s = \sqrt{p(1-p)/n}$, it exceeds the truth by about $s$ times the expected maximum of $K$ standard normals (about
# 1.5 for 10 checkpoints, 2.2 for 40). Test-set selection reports that maximum, so part of its advantage over
# the validation choice is measurement noise, not a better network; the validation choice is an honest estimate
# because the test set took no part in it. The simulation overstates the bias somewhat, since the checkpoints
# are measured on the same images and neighbouring epochs make correlated errors, and it ignores real
# differences between epochs (the robust overfitting itself), which the test-set pick also exploits. If the gap
# you found is of the size of the simulated bias, it says little about the epochs themselves.
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
