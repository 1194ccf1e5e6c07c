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
# # Curvature, CURE and the topology of classification regions
#
# **Run:** profile {glue:text}`run_profile` · device {glue:text}`run_device` · seed {glue:text}`run_seed` ·
# wall time {glue:text}`run_wall_time`
#
# This chapter reproduces the report of {cite:t}`bardusco2021curvature`, which revisits three papers by Fawzi,
# Moosavi-Dezfooli and co-authors. Its first half asks whether robust networks have *flat* decision
# boundaries and a *flat* loss in input space, and whether flattening them on purpose, with the curvature
# regularizer CURE of {cite:t}`moosavi2019cure`, buys robustness. Its second half follows
# {cite:t}`fawzi2018topology`: are the regions where a network predicts one class connected, and by how
# straight a path? We compare three networks: a ResNet {cite:p}`he2016deep` trained on CIFAR-10
# {cite:p}`krizhevsky2009learning`, a copy fine-tuned on adversarial examples with the report's recipe, and a
# copy fine-tuned with CURE. The report used Tiny-ImageNet; we use CIFAR-10, as the CURE paper did.

# %% tags=["parameters"]
profile = "medium"  # small (make test, make book: minutes on 2 cores) | medium (these defaults) | full (GPU)
seed = 0  # seed for the data subsets, initialisation, random plane directions and pairs
device = "auto"  # auto | cpu | cuda | mps
model_name = "resnet18"  # resnet18 | resnet34 | resnet50 (small-input ResNets of helpers.core.models)
width = 8  # channels of the first ResNet stage (64 is the standard ResNet-18)
n_train = 6000  # training images for the base network (stratified subset)
n_finetune = 3000  # training images for the adversarial and CURE fine-tuning (stratified subset)
n_test = 1000  # test images for the accuracies
epochs = 4  # base-network epochs (the report: 14)
batch_size = 128  # images per optimisation step
lr = 1e-2  # AdamW learning rate of the base network (the report: 1e-2)
lr_gamma = 0.7  # exponential learning-rate decay per epoch (the report: 0.7)
weight_decay = 5e-4  # AdamW weight decay
ft_epochs = 2  # epochs of adversarial and of CURE fine-tuning
ft_lr = 1e-3  # AdamW learning rate of both fine-tunings
at_fraction = 0.5  # share of each fine-tuning batch replaced by runner-up adversarial examples
overshoot = 0.02  # DeepFool overshoot: how far past the linearised boundary the steps go (fraction)
cure_lambda = 4.0  # weight of the CURE term (the CURE paper: 4)
cure_h = 0.6  # final CURE step h, l2 pixel units ([0, 1] images)
cure_h_start = 0.02  # CURE step h at the start of fine-tuning, l2 pixel units
cure_warmup = 0.5  # fraction of fine-tuning over which h grows linearly to cure_h
n_geom = 200  # test images for Table 1 (kept: those all three networks classify correctly)
hutchinson_samples = 8  # Rademacher probes per image for the Hessian-norm estimate
plane_extent = 1.5  # half-width of the decision-boundary planes (Fig. 2), l2 pixel units
plane_points = 41  # grid points per axis of the Fig. 2 class maps
n_curv_images = 8  # test images whose boundary curvature is fitted (Fig. 2's image is the first)
wide_extent = 12.0  # half-width of the wide random planes (Fig. 3), l2 pixel units
wide_points = 61  # grid points per axis of the Fig. 3 class maps
n_nat_pairs = 8  # natural image pairs for Table 2 (the report: 18)
n_adv_pairs = 8  # adversarial image pairs for Table 2 (the report: 30)
path_check = 32  # points checked on each path segment
path_rounds = 10  # rounds of midpoint insertion before giving up
path_overshoot = 0.5  # how far past the boundary a midpoint is pushed back into its region (fraction of the step)
hue_angles = [-150, -120, -90, -60, -45, -30, -15, 15, 30, 45, 60, 90, 120, 150, 180]  # hue rotations, degrees
n_hue = 300  # test images searched for the colour attack
suite_budget = "reduced"  # robustness suite: reduced (PGD-20, APGD-25, 3 targets) | full (AutoAttack's budget)
suite_eps = 0.1  # l2 radius of the suite, pixel units ([0, 1] images): the scale of the minimal perturbations
n_suite = 200  # test images graded by the suite (a stratified subset of the test images)
square_queries = 200  # queries of the Square attack in the sanity checks (black box vs white box)

# %% tags=["remove-cell"]
# Check every parameter before any compute (a bad value stops here with a message naming it), then pick the
# device, seed everything and open the run record (helpers.experiment).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from helpers import claims, experiment
from helpers.core import data, models
from helpers.core import suite as S
from helpers.papers.cure import chapter, study
from helpers.papers.cure import geometry as G

run = experiment.start(
    "05_cure_topology", "Curvature, CURE and topology", globals(), chapter.PARAMETERS, check=chapter.check_parameters
)
dev = run.dev

# %% [markdown]
# ## Three networks
#
# **Base.** A small-input ResNet-18 whose first stage has {glue:text}`width` channels, trained from scratch
# on {glue:text}`n_train` CIFAR-10 images with AdamW and an exponentially decaying learning rate, the
# report's optimiser and schedule.
#
# **Adversarially fine-tuned (AT).** The report builds its adversarial examples by gradient ascent on the
# pixels of a correctly classified image "until the initial second highest class probability becomes the
# first one", then fine-tunes a copy of the base network on these mixed with clean images. We take the ascent
# steps with DeepFool's step length {cite:p}`moosavi2016deepfool` (the linearised distance to the runner-up's
# boundary), so the examples sit just past that boundary, and we regenerate them against the current network
# for a share {glue:text}`at_fraction` of every batch (a `helpers.core.training.Adversary`), the rest staying clean.
#
# **CURE.** A copy of the base network fine-tuned on cross-entropy plus
# $\lambda\,\|\nabla_x\ell(x+hz)-\nabla_x\ell(x)\|_2^2$ with $z=\mathrm{sign}\,\nabla_x\ell(x)/\|\mathrm{sign}
# \,\nabla_x\ell(x)\|_2$, per example {cite:p}`moosavi2019cure`. The term is a finite difference of the
# gradient, i.e. $h^2\|Hz\|^2$ for the input Hessian $H$: it penalises curvature along the direction an
# attacker would take. It is trained by double backpropagation, with $h$ growing linearly from
# {glue:text}`cure_h_start` to {glue:text}`cure_h` (pixel units) over the first part of fine-tuning, as in the
# CURE paper, and $\lambda$ = {glue:text}`cure_lambda`. The report trained its CURE network from scratch on a
# tenth of its data and reached 7% accuracy; the CURE paper, which we follow, fine-tunes a trained network.

# %%
train_data = data.load_subset(chapter.DATASET, "train", n_train, seed)
ft_data = data.load_subset(chapter.DATASET, "train", n_finetune, seed + 1)
test_data = data.load_subset(chapter.DATASET, "test", n_test, seed)
classes = train_data.classes
train_loader = data.Loader(train_data, batch_size, shuffle=True, seed=seed, device=dev)
ft_loader = data.Loader(ft_data, batch_size, shuffle=True, seed=seed + 1, device=dev)
test_loader = data.Loader(test_data, 500, device=dev)
configs = chapter.checkpoint_configs(run.params)  # each network's checkpoint is named by its configuration's hash
base = run.trained("base", configs["base"], lambda ckpt: chapter.train_base(
    train_loader, test_loader, model_name=model_name, width=width, epochs=epochs, lr=lr, lr_gamma=lr_gamma,
    weight_decay=weight_decay, seed=seed, device=dev, checkpoint=ckpt,
))  # fmt: skip
ft = {"epochs": ft_epochs, "lr": ft_lr, "weight_decay": weight_decay, "seed": seed}
at_model = run.trained("at", configs["at"], lambda ckpt: chapter.fine_tune_adversarial(
    base, ft_loader, test_loader, fraction=at_fraction, overshoot=overshoot, checkpoint=ckpt, **ft
))  # fmt: skip
cure_model = run.trained("cure", configs["cure"], lambda ckpt: chapter.fine_tune_cure(
    base, ft_loader, test_loader, lam=cure_lambda, h=cure_h, h_start=cure_h_start, warmup=cure_warmup,
    checkpoint=ckpt, **ft,
))  # fmt: skip
nets = {"base": base, "AT": at_model, "CURE": cure_model}

# %% [markdown]
# The report measures each network on an "adversarial set": runner-up examples built against the initial
# network (for correctly classified images). We do the same on the test images.

# %%
x_test, y_test = test_data.float(dev)
adv_set = chapter.adversarial_set(base, x_test, y_test, overshoot=overshoot)
accuracy_table = chapter.accuracy_table(nets, x_test, y_test, adv_set, ft_epochs=ft_epochs)
accuracy_table.round(3)

# %% tags=["remove-cell"]
for k in ("width", "cure_h", "cure_h_start", "cure_lambda", "at_fraction"):
    run.glue(k, f"{globals()[k]:g}")
run.glue("n_train", f"{n_train:,}")
run.glue("n_params", f"{models.count_parameters(base):,}")
for name, key in (("base", "base"), ("AT", "at"), ("CURE", "cure")):
    run.glue(f"acc_{key}", accuracy_table.loc[name, "clean accuracy"], "{:.1%}")
    run.glue(f"advset_{key}", accuracy_table.loc[name, "accuracy on the adversarial set"], "{:.1%}")

# %% [markdown]
# The networks have {glue:text}`n_params` parameters. Clean test accuracy: base {glue:text}`acc_base`, AT
# {glue:text}`acc_at`, CURE {glue:text}`acc_cure`; on the adversarial set built against the base network:
# {glue:text}`advset_base`, {glue:text}`advset_at` and {glue:text}`advset_cure` (the report: about 10% for
# its base network and 30% after adversarial fine-tuning).
#
# ## Decision boundaries near an image (Fig. 2)
#
# Through a fixed test image $x$ we draw the plane $x + s\,u + t\,v$, where $u$ points from $x$ to the
# network's own runner-up adversarial example (the direction to the nearest boundary) and $v$ is a random
# unit direction orthogonal to it, the same for all three networks. Each pixel of the map is the class the
# network predicts there. Along each line of constant $t$ we locate where the prediction first changes (a
# scan, then bisection) and fit a parabola $s(t)=a t^2+bt+c$ to that boundary curve; its curvature at $t=0$,
# $\kappa = 2a/(1+b^2)^{3/2}$, in 1/pixel units, measures how curved the boundary is around the image.
#
# A random direction in a space of 3,072 dimensions sees little of the curvature: most directions are nearly
# flat. The CURE paper therefore also cuts along the direction of *highest* curvature, the leading
# eigenvector $w$ of the input Hessian of the loss (found by power iteration on Hessian-vector products). We
# fit the boundary in both planes, $(u, v)$ as in the report and $(u, w)$ as in the CURE paper, over
# {glue:text}`n_curv_images` test images that all three networks classify correctly.

# %%
all_correct = torch.stack([G.predict(n, x_test) == y_test for n in nets.values()]).all(0)
pool = all_correct.nonzero().flatten()
pick = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))]
curv_idx = pick[:n_curv_images]
t_grid = torch.linspace(-plane_extent, plane_extent, plane_points)  # the plane's grid along both axes
curv, maps = study.boundary_curvatures(nets, x_test[curv_idx], y_test[curv_idx], t_grid, s_max=plane_extent, seed=seed)
curv_summary = study.curvature_summary(curv)
curv_summary.round(4)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), sharey=True)
for ax, (name, (grid, s_curve, fit)) in zip(axes, maps.items(), strict=True):
    ax.pcolormesh(t_grid, t_grid, grid, cmap="tab10", vmin=-0.5, vmax=9.5, shading="nearest")
    ax.plot(s_curve, t_grid, color="k", lw=1.2, label="boundary")
    if not np.isnan(fit.curvature):
        ax.plot(fit(t_grid), t_grid, "w--", lw=1.5, label=f"quadratic fit, κ = {fit.curvature:.3f}")
    ax.plot(0, 0, "w*", ms=12, mec="k")
    ax.set(title=name, xlabel="s (toward the runner-up class)", xlim=(-plane_extent, plane_extent))
    ax.legend(loc="lower left", fontsize=8)
axes[0].set_ylabel("t (random direction)")
fig.suptitle(f"Class maps around a test image ({classes[int(y_test[curv_idx[0]])]}), l2 pixel units")
run.show(fig, "fig2_boundary_planes")

# %% tags=["remove-cell"]
for name, key in (("base", "base"), ("AT", "at"), ("CURE", "cure")):
    run.glue(f"kappa_{key}", float(curv_summary.loc[name, "median |κ|, random plane"]), "{:.3g}")
    run.glue(f"kappa_pc_{key}", float(curv_summary.loc[name, "median |κ|, principal plane"]), "{:.3g}")
run.glue("n_curv_images", f"{len(curv_idx)}")
# Per-image pairing: on how many images is each fine-tuned network's boundary flatter than base's? Near half
# means the medians' order is noise at this scale.
kappa_img, flatter = study.flatter_counts(curv)
for (plane, name), share in flatter.items():
    run.glue(f"flatter_{name.lower()}_{plane}", share)
run.glue("plane_image_class", classes[int(y_test[curv_idx[0]])])

# %% [markdown]
# Over {glue:text}`n_curv_images` test images, the median absolute curvature of the boundary fitted in the
# report's plane (adversarial and random direction) is {glue:text}`kappa_base` for the base network,
# {glue:text}`kappa_at` for AT and {glue:text}`kappa_cure` for CURE; in the plane of the adversarial and the
# highest-curvature direction it is {glue:text}`kappa_pc_base`, {glue:text}`kappa_pc_at` and
# {glue:text}`kappa_pc_cure`. The report shows one lemon image, with a visibly flatter boundary after
# adversarial training and with CURE. Medians over a handful of images can hide a coin flip, so we also pair
# the networks image by image: AT's boundary is flatter than base's on {glue:text}`flatter_at_random` images
# and CURE's on {glue:text}`flatter_cure_random` in the random plane, and on {glue:text}`flatter_at_principal`
# and {glue:text}`flatter_cure_principal` in the principal plane. Per image, the ratio of base's curvature to
# the fine-tuned network's, averaged geometrically over the images, gives AT
# {glue:text}`claim_flatter_boundary` and CURE {glue:text}`claim_cure_flatter_boundary` in the report's plane.
#
# ## Wider random planes (Fig. 3)
#
# The report also looks further away, in a plane through the image spanned by two random directions: a
# network that is not robust should show many small, scattered class regions, a robust one a wide region
# around the image.

# %%
i0 = int(curv_idx[0])
g_wide = torch.Generator().manual_seed(seed + 7)
v1 = G.orthonormal_direction(torch.randn(x_test[i0].shape, generator=g_wide).to(x_test), generator=g_wide)
v2 = G.orthonormal_direction(v1, generator=g_wide)
w_grid = torch.linspace(-wide_extent, wide_extent, wide_points)
wide_maps = {name: G.class_map(net, x_test[i0], v1, v2, w_grid, w_grid) for name, net in nets.items()}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), sharey=True)
for ax, (name, grid) in zip(axes, wide_maps.items(), strict=True):
    ax.pcolormesh(w_grid, w_grid, grid, cmap="tab10", vmin=-0.5, vmax=9.5, shading="nearest")
    ax.plot(0, 0, "w*", ms=12, mec="k")
    ax.set(title=name, xlabel="random direction 1")
axes[0].set_ylabel("random direction 2")
fig.suptitle("Class maps in a wide random plane through the same image (l2 pixel units)")
run.show(fig, "fig3_wide_planes")
wide_table = study.region_table(wide_maps)
wide_table.round(3)

# %% tags=["remove-cell"]
for name, key in (("base", "base"), ("AT", "at"), ("CURE", "cure")):
    run.glue(f"wide_{key}", float(wide_table.loc[name, "share of the plane in the image's class"]), "{:.0%}")
run.glue("wide_extent", f"{wide_extent:g}")

# %% [markdown]
# Within $\pm${glue:text}`wide_extent` in both random directions, the image's class covers
# {glue:text}`wide_base` of the plane for the base network, {glue:text}`wide_at` for AT and
# {glue:text}`wide_cure` for CURE. Random directions are the *easy* ones: far less curved than the adversarial
# direction {cite:p}`fawzi2018topology`, which is why these regions are much wider than the distance to the
# boundary in Fig. 2.
#
# ## Curvature of the loss and distance to the boundary (Table 1)
#
# For up to {glue:text}`n_geom` test images that all three networks classify correctly, we estimate
# $\|H\|_F^2$, the squared Frobenius norm of the Hessian of the cross-entropy with respect to the input,
# with Hutchinson's estimator $\mathbb{E}_v\|Hv\|^2$ over Rademacher probes $v$
# {cite:p}`hutchinson1989stochastic` (each $Hv$ one Hessian-vector product by double backpropagation), and
# the $\ell_2$ norm of the smallest perturbation that changes the label: DeepFool, refined by bisection along
# its direction.

# %%
# Images all three networks classify correctly, so each network's distance is to the boundary of the true
# class: margins of misclassified images would measure the networks' errors, not their robustness.
geom_idx = pick[:n_geom]
xg, yg = x_test[geom_idx], y_test[geom_idx]
per_image = {
    name: {
        "hessian": study.hessian_norms(net, xg, yg, samples=hutchinson_samples, seed=seed),
        "perturbation": G.minimal_perturbation_norm(net, xg, overshoot=overshoot),
    }
    for name, net in nets.items()
}
table1 = study.table1(per_image)
table1

# %% tags=["remove-cell"]
run.glue("n_table1", f"{len(xg)}")
run.glue("n_geom", f"{n_geom}")
for name, key in (("base", "base"), ("AT", "at"), ("CURE", "cure")):
    run.glue(f"hess_{key}", float(table1.loc[name, "‖H‖_F² (median)"]), "{:.3g}")
    run.glue(f"pert_{key}", float(table1.loc[name, "perturbation size (median)"]), "{:.3f}")

# %% [markdown]
# Over {glue:text}`n_table1` images, the median $\|H\|_F^2$ is {glue:text}`hess_base` (base),
# {glue:text}`hess_at` (AT) and {glue:text}`hess_cure` (CURE), and the median minimal perturbation
# {glue:text}`pert_base`, {glue:text}`pert_at` and {glue:text}`pert_cure`. The report's Table 1 (Tiny-ImageNet,
# its own units) has 5.5, 1.1 and 6.4·10⁻⁴ for the Hessian, and 0.67, 0.80 and 5.6 for the perturbation.
# The report compares means; as ratios of our means on the same images, with paired intervals: AT's Hessian
# norm over base's {glue:text}`claim_at_lowers_hessian`, CURE's {glue:text}`claim_cure_lowers_hessian`; CURE's
# minimal perturbation over AT's {glue:text}`claim_cure_outperforms_at`.
#
# ## Robust accuracy under a strong attack suite
#
# The report's measures of robustness are its own attacks: the accuracy on the adversarial set built against
# the base network, and the size of DeepFool's minimal perturbation. Both can flatter a network. The adversarial
# set is crafted against *another* network (for AT and CURE it is a transfer attack), and DeepFool follows the
# linearised boundary, which overestimates the distance to a curved one; a network whose gradients are
# uninformative would look robust to both. So, beyond the report, we grade the three networks the way this book
# grades any robustness claim (the primer explains why): the accuracy that is left when every image must
# survive, at an $\ell_2$ radius $\varepsilon$ = {glue:text}`suite_eps` (pixel units, the scale of the minimal
# perturbations above), each of three attacks: PGD from a random start with enough steps to cross the ball,
# APGD-CE and the targeted APGD-T (Croce & Hein 2020, as implemented in torchattacks). The networks are
# deterministic, so one forward pass per image is their accuracy. On the same {glue:text}`n_suite` test images
# we read the report's DeepFool at the same radius: an image counts as robust if it is classified correctly and
# its minimal perturbation exceeds $\varepsilon$. (The adversarial-set column is over all test images.)

# %%
suite_data = data.subset(test_data, n_suite, seed)
suite_loader = data.Loader(suite_data, 250, device=dev)
l2_suite = S.Suite.make(suite_eps, budget=suite_budget, norm="l2")
grades = {name: S.grade(net, suite_loader, l2_suite, desc=f"suite: {name}") for name, net in nets.items()}
x_suite, _ = suite_data.float(dev)
deepfool_acc = {
    name: study.deepfool_accuracy(
        grades[name].clean.correct, G.minimal_perturbation_norm(net, x_suite, overshoot=overshoot), suite_eps
    )
    for name, net in nets.items()
}
adv_set_acc = accuracy_table["accuracy on the adversarial set"]
suite_table = study.suite_table(grades, adv_set_acc, deepfool_acc, suite_eps)
suite_table.round(3)

# %% [markdown]
# A reviewer also asks whether the attacks work at all (Carlini et al. 2019, "On evaluating adversarial
# robustness"): at a radius large enough to turn any image into another class the accuracy must fall to about
# zero, more attack steps must never raise it, and a black-box attack that uses no gradient (Square,
# {glue:text}`square_queries` queries) must not break images that the gradient attacks left standing, or the
# gradients are masking something. The checks run PGD with 5, 10 and 40 steps, a budget kept small so that the
# chapter stays within its time at every profile.

# %%
checks = {
    name: S.sanity_checks(net, suite_loader, grades[name], steps=(5, 10, 40), square_queries=square_queries)
    for name, net in nets.items()
}
for name, net in nets.items():
    run.model(
        f"{name} {model_name}",
        net,
        grades[name],
        dataset=chapter.DATASET,
        test_data=suite_data,
        sanity=checks[name],
        adversarial_set_accuracy=float(adv_set_acc[name]),
        deepfool_accuracy=deepfool_acc[name],
        scores="logits",
    )
sanity_table = S.sanity_table(checks)
sanity_table

# %% tags=["remove-cell"]
run.glue("suite_eps", f"{suite_eps:g}")
run.glue("n_suite", f"{len(suite_data)}")
run.glue("suite_name", l2_suite.name)
run.glue("square_queries", f"{square_queries}")
for name, key in (("base", "base"), ("AT", "at"), ("CURE", "cure")):
    run.glue(f"suite_{key}", grades[name].robust_accuracy, "{:.1%}")
    run.glue(f"deepfool_{key}", deepfool_acc[name], "{:.1%}")
n_failed = int((~sanity_table.passed).sum())
run.glue("sanity_verdict", "all pass" if n_failed == 0 else f"{n_failed} of {len(sanity_table)} fail (shown above)")
gap_max = float(suite_table["gap DeepFool − suite (points)"].max())
run.glue(
    "deepfool_gap",
    f"DeepFool leaves up to {gap_max:.1f} points more than the suite (following the linearised boundary, it stops "
    "short of the nearest adversarial example)"
    if gap_max > 0
    else "DeepFool leaves no network more than the suite does",
)
order = sorted(grades, key=lambda n: grades[n].robust_accuracy, reverse=True)
run.glue("suite_order", " ≥ ".join(f"{n} ({grades[n].robust_accuracy:.1%})" for n in order))

# %% [markdown]
# On {glue:text}`n_suite` test images and at $\varepsilon$ = {glue:text}`suite_eps`, the suite
# ({glue:text}`suite_name`) leaves {glue:text}`suite_base` of the images to the base network,
# {glue:text}`suite_at` to AT and {glue:text}`suite_cure` to CURE; the report's DeepFool at the same radius
# leaves {glue:text}`deepfool_base`, {glue:text}`deepfool_at` and {glue:text}`deepfool_cure`:
# {glue:text}`deepfool_gap`. Ranked by the suite: {glue:text}`suite_order`. Sanity checks:
# {glue:text}`sanity_verdict`. The smaller of AT's and CURE's gains over base, paired over the same images:
# {glue:text}`claim_at_cure_raise_robust_accuracy`.
#
# ## Are classification regions path-connected? (Table 2, Figs. 5–8)
#
# {cite:t}`fawzi2018topology` connect two images of the same predicted class by a path inside that class's
# region: try the straight segment; if some point of it is classified differently, replace it by two halves
# through the midpoint, pushed back into the region by a targeted DeepFool step when it is outside, and
# recurse. The push goes {glue:text}`path_overshoot` of its length past the linearised boundary, so the new
# vertex lies inside the region rather than on its edge. We check {glue:text}`path_check` points per segment.
# A path is summarised by its number of vertices and by its largest distance to the straight segment, divided
# by the segment's length. We connect
# (i) *natural pairs*: two test images of the same class, both correctly classified; (ii) *adversarial
# pairs*: two test images of two other classes, each pushed by targeted DeepFool into the same third class.
# All on the base network.

# %%
base_pred, y_cpu = G.predict(base, x_test).cpu(), y_test.cpu()
g_pairs = torch.Generator().manual_seed(seed + 11)
nat_pairs = study.natural_pairs(base_pred, y_cpu, len(classes), n_nat_pairs, g_pairs)
# twice as many adversarial candidates: a targeted push can fail inside [0, 1]
adv_pairs = study.adversarial_pairs(base_pred, y_cpu, len(classes), 2 * n_adv_pairs, g_pairs)
path_search = {"n_check": path_check, "max_rounds": path_rounds, "overshoot": path_overshoot}
nat_df, nat_paths = study.connect_pairs(base, x_test, nat_pairs, classes, want=n_nat_pairs, **path_search)
adv_df, adv_paths = study.connect_pairs(
    base, x_test, adv_pairs, classes, want=n_adv_pairs, push=overshoot, **path_search
)
table2 = study.table2(nat_df, adv_df)
table2

# %% tags=["remove-cell"]
run.glue("path_check", f"{path_check}")
run.glue("path_overshoot", f"{path_overshoot:.0%}")
run.glue("nat_points", study.mean_sd(nat_df.points, "{:.1f}"))
run.glue("adv_points", study.mean_sd(adv_df.points, "{:.1f}"))
run.glue("nat_dev", study.mean_sd(nat_df["normalized distance"], "{:.1e}"))
run.glue("adv_dev", study.mean_sd(adv_df["normalized distance"], "{:.1e}"))
run.glue("nat_straight", f"{int((nat_df.points == 2).sum())} of {len(nat_df)}")
run.glue(
    "paths_valid",
    f"{int(nat_df.valid.sum())} of {len(nat_df)} natural, {int(adv_df.valid.sum())} of {len(adv_df)} adversarial",
)

# %% [markdown]
# Natural pairs need {glue:text}`nat_points` points with a normalized distance of {glue:text}`nat_dev`
# (the straight segment suffices for {glue:text}`nat_straight`); adversarial pairs need
# {glue:text}`adv_points` points with {glue:text}`adv_dev`. The report: 11 ± 9 points and
# (2.7 ± 2.8)·10⁻⁴ for natural pairs, 70 ± 15 points and (3.0 ± 1.0)·10⁻³ for adversarial pairs. Paths that
# stay in their region throughout: {glue:text}`paths_valid`. The natural paths' mean normalized distance, in %
# of the segment's length: {glue:text}`claim_natural_paths_straight`; adversarial over natural pairs, for the
# deviation {glue:text}`claim_adversarial_paths_harder` and for the number of points
# {glue:text}`claim_adversarial_paths_more_points`.
#
# The principal components of a path (densified evenly along its length) show its shape: the share of
# variance along the first component is 1 for a straight segment. Below, the natural and the adversarial
# path with the most vertices.


# %%
def show_path(path: G.Path, title: str, name: str) -> torch.Tensor:
    pca = G.path_pca(path.points, n_components=10)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    c = pca["coords"]
    k = c.shape[1]
    axes[0].plot(c[:, 0], c[:, 1] if k > 1 else 0 * c[:, 0], "-", lw=1)
    axes[0].plot(pca["vertices"][:, 0], pca["vertices"][:, 1] if k > 1 else 0 * pca["vertices"][:, 0], "o", ms=3)
    axes[0].set(xlabel="PC 1", ylabel="PC 2", title="second vs first component")
    axes[1].plot(c[:, 0], c[:, 2] if k > 2 else 0 * c[:, 0], "-", lw=1)
    axes[1].set(xlabel="PC 1", ylabel="PC 3", title="third vs first component")
    axes[2].bar(np.arange(1, len(pca["ratio"]) + 1), pca["ratio"].numpy())
    axes[2].set(xlabel="component", ylabel="explained variance ratio", yscale="log", title="explained variance")
    fig.suptitle(f"{title}: {path.n_points} points, normalized distance {path.max_deviation:.1e}")
    run.show(fig, name)
    return pca["ratio"]


nat_best = max(nat_paths, key=lambda p: (p.n_points, p.max_deviation))
adv_best = max(adv_paths, key=lambda p: (p.n_points, p.max_deviation))
ratio_nat = show_path(nat_best, "Natural pair (Figs. 5-6)", "fig5_6_natural_path")
ratio_adv = show_path(adv_best, "Adversarial pair (Figs. 7-8)", "fig7_8_adversarial_path")

# %% tags=["remove-cell"]
run.glue("ratio_nat", float(ratio_nat[0]), "{:.4f}")
run.glue("ratio_adv", float(ratio_adv[0]), "{:.4f}")

# %% [markdown]
# The first component explains {glue:text}`ratio_nat` of the natural path's variance and
# {glue:text}`ratio_adv` of the adversarial one's (1 for a straight segment; the report's Figs. 6 and 8 show
# the adversarial path's variance spread over more components).
#
# ## A perceptual attack: changing the colour (Fig. 9)
#
# Robustness in the $\ell_2$ sense says nothing about perturbations that are large in pixels but small to a
# person. The report turns a red pepper orange and all three networks call it an orange. We rotate the hue
# of every pixel about the grey axis of RGB space (brightness unchanged) by each of the angles
# {glue:text}`hue_list` degrees, and look for images whose prediction changes for all three networks.

# %%
x_hue, y_hue = x_test[:n_hue], y_test[:n_hue]
ok_hue = all_correct[:n_hue]
flips = G.hue_flips(nets, x_hue[ok_hue], hue_angles)  # (network, rotation, image): the rotation changes the label
best_angle = G.smallest_hue_angle(flips.all(0), hue_angles)  # per image, NaN where no rotation fools all three
flip_rate = flips.any(1).float().mean(1)  # per network: some rotation changes its prediction
all_rate = float(flips.all(0).any(0).float().mean())
hue_table = pd.DataFrame(
    {"share of images whose prediction some rotation changes": flip_rate.numpy()}, index=list(nets)
)
hue_table.loc["all three at once"] = all_rate
hue_table.round(3)

# %%
found = (~torch.isnan(best_angle)).nonzero().flatten()
hue_example = None
if len(found):
    j = int(found[best_angle[found].abs().argmin()])
    angle = float(best_angle[j])
    img = x_hue[ok_hue][j]
    shifted = G.hue_rotate(img[None], angle)[0]
    labels_before = [classes[int(G.predict(n, img[None])[0])] for n in nets.values()]
    labels_after = [classes[int(G.predict(n, shifted[None])[0])] for n in nets.values()]
    hue_example = {"angle": angle, "before": labels_before, "after": labels_after}
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.8))
    axes[0].imshow(img.permute(1, 2, 0).cpu())
    axes[0].set_title(
        "original\n" + ", ".join(f"{n}: {lab}" for n, lab in zip(nets, labels_before, strict=True)), fontsize=8
    )
    axes[1].imshow(shifted.permute(1, 2, 0).cpu())
    axes[1].set_title(
        f"hue rotated by {angle:+.0f}°\n" + ", ".join(f"{n}: {lab}" for n, lab in zip(nets, labels_after, strict=True)),
        fontsize=8,
    )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    run.show(fig, "fig9_colour_attack")

# %% tags=["remove-cell"]
run.glue("hue_list", ", ".join(f"{a:g}" for a in hue_angles))
run.glue("hue_all", all_rate, "{:.0%}")
run.glue("hue_n", f"{int(ok_hue.sum())}")
for name, key in (("base", "base"), ("AT", "at"), ("CURE", "cure")):
    run.glue(f"hue_{key}", float(hue_table.loc[name].iloc[0]), "{:.0%}")

# %% [markdown]
# Of {glue:text}`hue_n` test images that all three networks classify correctly, some hue rotation changes
# the prediction for {glue:text}`hue_base` (base), {glue:text}`hue_at` (AT) and {glue:text}`hue_cure` (CURE),
# and for all three networks at once for {glue:text}`hue_all`. The report finds the robust networks fooled as
# the base one is; the share fooled, AT's and CURE's mean minus base's, paired over the same images:
# {glue:text}`claim_colour_shift_fools_all`.
#
# ## Claims
#
# The document's findings, each with its words, its numbers and the margin our effect must clear, are in
# `notebooks/claims/05_cure_topology.yaml`, written before any run. Every effect comes with a 95% interval:
# a paired bootstrap over the test images where the networks are measured on the same images (curvature,
# Table 1, the suite, the colour attack), a bootstrap over the image pairs for the paths. The verdict follows
# from where the interval lies: *reproduced* beyond the margin in the document's direction, *contradicted* on
# the other side of no effect, *inconclusive at this scale* otherwise.
#
# - Flatter boundary after adversarial fine-tuning (Fig. 2): {glue:text}`claim_flatter_boundary`; with CURE
#   (Fig. 4): {glue:text}`claim_cure_flatter_boundary` (geometric mean of the ratios base / network of the
#   fitted curvature, per image).
# - Table 1, ratios of the means on the same images: AT's Hessian norm against base's
#   {glue:text}`claim_at_lowers_hessian`, CURE's {glue:text}`claim_cure_lowers_hessian`; the minimal
#   perturbation, the smaller of AT's and CURE's ratios to base {glue:text}`claim_at_cure_raise_perturbation`,
#   CURE against AT {glue:text}`claim_cure_outperforms_at`.
# - Robust accuracy under the suite, the smaller of AT's and CURE's gains over base:
#   {glue:text}`claim_at_cure_raise_robust_accuracy`.
# - Table 2: the natural paths' mean normalized distance, in % of the segment,
#   {glue:text}`claim_natural_paths_straight`; adversarial against natural pairs, deviation
#   {glue:text}`claim_adversarial_paths_harder` and number of points
#   {glue:text}`claim_adversarial_paths_more_points`.
# - The colour attack, share of images fooled by the robust networks minus base's:
#   {glue:text}`claim_colour_shift_fools_all`.
#
# The book adds one check, not counted as a reproduction: the suite's sanity checks
# ({glue:text}`verdict_suite_sanity_checks`).

# %%
# Fig. 2's claims: per image, the ratio of base's fitted curvature to the fine-tuned network's.
curv_ours = study.curvature_text(curv_summary, flatter, len(curv_idx))
k_rand = kappa_img.loc["random"]
for key, name in (("flatter_boundary", "AT"), ("cure_flatter_boundary", "CURE")):
    both = k_rand[["base", name]].dropna().clip(lower=1e-12)
    run.claim(
        key,
        claims.bootstrap(
            lambda d: float(np.exp(d.mean())),
            np.log(both["base"] / both[name]).to_numpy(),
            unit="x",
            method=f"bootstrap over {len(both)} test images",
        ),
        ours=curv_ours,
    )

# %%
# Table 1 on the images where DeepFool found a perturbation for all three networks.
pert = {name: d["perturbation"] for name, d in per_image.items()}
fin = torch.isfinite(pert["base"]) & torch.isfinite(pert["AT"]) & torch.isfinite(pert["CURE"])
hess = {name: d["hessian"][fin] for name, d in per_image.items()}
pert = {name: p[fin] for name, p in pert.items()}
t1_ours = study.table1_text(hess, pert)
run.claim("at_lowers_hessian", claims.ratio(hess["AT"], hess["base"]), ours=t1_ours)
run.claim("cure_lowers_hessian", claims.ratio(hess["CURE"], hess["base"]), ours=t1_ours)
run.claim(
    "at_cure_raise_perturbation",
    claims.bootstrap(
        lambda b, a, c: min(a.mean() / b.mean(), c.mean() / b.mean()),
        pert["base"],
        pert["AT"],
        pert["CURE"],
        unit="x",
        method=f"paired bootstrap over {int(fin.sum())} test images",
    ),
    ours=t1_ours,
)
run.claim("cure_outperforms_at", claims.ratio(pert["CURE"], pert["AT"]), ours=t1_ours)

# %%
run.claim(
    "at_cure_raise_robust_accuracy",
    claims.bootstrap(
        lambda b, a, c: 100 * min(a.mean() - b.mean(), c.mean() - b.mean()),
        grades["base"].robust,
        grades["AT"].robust,
        grades["CURE"].robust,
        unit="points",
        method=f"paired bootstrap over {len(suite_data)} test images",
    ),
    ours=study.suite_text(grades, deepfool_acc, suite=l2_suite.name, n_images=len(suite_data)),
    eps=suite_eps,
)

# %%
paths_ours = study.paths_text(nat_df, adv_df)
run.claim(
    "natural_paths_straight",
    claims.mean(nat_df["normalized distance"].to_numpy(), unit="%", scale=100, what="natural pairs"),
    ours=paths_ours,
)
for key, col in (("adversarial_paths_harder", "normalized distance"), ("adversarial_paths_more_points", "points")):
    run.claim(
        key,
        claims.bootstrap(
            lambda a, n: a.mean() / n.mean(),
            adv_df[col].to_numpy(),
            nat_df[col].to_numpy(),
            paired=False,
            unit="x",
            method=f"bootstrap over {len(adv_df)} adversarial and {len(nat_df)} natural pairs",
        ),
        ours=paths_ours,
    )

# %%
fooled = flips.any(1).float()  # (network, image): some rotation changes the network's label
run.claim(
    "colour_shift_fools_all",
    claims.bootstrap(
        lambda b, a, c: 100 * ((a.mean() + c.mean()) / 2 - b.mean()),
        fooled[0],
        fooled[1],
        fooled[2],
        unit="points",
        method=f"paired bootstrap over {fooled.shape[1]} test images",
    ),
    ours=study.hue_text(flip_rate, all_rate, int(ok_hue.sum()), hue_example),
)
run.check(
    "suite_sanity_checks",
    n_failed == 0,
    ours=f"{n_failed} of {len(sanity_table)} checks fail (three per network, shown in the sanity table)",
)
run.verdicts()

# %%
run.finish()

# %% [markdown]
# ## Exercises
#
# The exercises reuse this chapter's three networks (`nets["base"]`, `nets["AT"]`, `nets["CURE"]`) and test
# images (`x_test`, `y_test`); each takes seconds on a laptop CPU at the medium profile. Coding exercises end
# with a self-check cell that raises an `AssertionError` with a hint until your answer agrees with `helpers`.

# %% [markdown]
# ```{exercise} The CURE term
# :label: ex-05-cure
#
# Complete `my_cure_term(model, x, y, h)`, the regularizer of {cite:t}`moosavi2019cure` as this chapter
# trains it: with $g(x)$ the input gradient of the cross-entropy summed over the batch and
# $z = \mathrm{sign}(g(x)) / \|\mathrm{sign}(g(x))\|_2$ per sample, return the batch mean of
# $\|g(x + h z) - g(x)\|_2^2$. Use `torch.autograd.grad` (with `create_graph=True`, so that the term can be
# trained on). Why is this a finite-difference estimate of $h^2\|Hz\|_2^2$, and why should the model be in
# eval mode while it is computed?
# ```


# %%
def my_cure_term(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, h: float) -> torch.Tensor:
    """Batch mean of ||g(x + h z) - g(x)||^2, z the l2-normalised sign of the input gradient g(x)."""
    raise NotImplementedError("complete my_cure_term")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-05-cure
# :class: dropdown
# ```


# %% tags=["solution"]
def my_cure_term(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, h: float) -> torch.Tensor:
    """Batch mean of ||g(x + h z) - g(x)||^2, z the l2-normalised sign of the input gradient g(x)."""
    ce = torch.nn.functional.cross_entropy
    x0 = x.detach().requires_grad_(True)
    (g0,) = torch.autograd.grad(ce(model(x0), y, reduction="sum"), x0, create_graph=True)
    z = g0.detach().sign()
    z = z / z.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    x1 = (x.detach() + h * z).requires_grad_(True)
    (g1,) = torch.autograd.grad(ce(model(x1), y, reduction="sum"), x1, create_graph=True)
    return (g1 - g0).flatten(1).pow(2).sum(1).mean()


# %% [markdown] tags=["solution"]
# By Taylor's theorem $g(x + hz) = g(x) + h\,H(x) z + O(h^2)$, so $\|g(x+hz) - g(x)\|^2 \approx h^2\|Hz\|^2$:
# the curvature of the loss along the direction an $\ell_\infty$ attacker takes. In training mode BatchNorm
# normalises with the batch's statistics, so one image's gradient would depend on the other images of the
# batch; in eval mode each image's term is its own, as the definition needs.
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
from helpers import exercises

exercises.check_cure_term(my_cure_term, nets["base"], x_test[:16], y_test[:16], cure_h)
print("my_cure_term agrees with helpers.papers.cure.losses.cure_regularizer")

# %% [markdown]
# ```{exercise} Labels along a segment
# :label: ex-05-segment
#
# Complete `segment_labels(model, x0, x1, n)`: the labels the model predicts at $n$ evenly spaced points
# $x_0 + a(x_1 - x_0)$, $a \in [0, 1]$, both ends included. Then take two test images of the same class that
# the base network classifies correctly and count the label changes along their segment for each of the three
# networks. If the straight segment leaves the class, does that show that the class region is not
# connected?
# ```


# %%
def segment_labels(model: torch.nn.Module, x0: torch.Tensor, x1: torch.Tensor, n: int) -> torch.Tensor:
    """Predicted labels at n evenly spaced points from x0 to x1 inclusive, shape (n,)."""
    raise NotImplementedError("complete segment_labels")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-05-segment
# :class: dropdown
# ```


# %% tags=["solution"]
def segment_labels(model: torch.nn.Module, x0: torch.Tensor, x1: torch.Tensor, n: int) -> torch.Tensor:
    """Predicted labels at n evenly spaced points from x0 to x1 inclusive, shape (n,)."""
    a = torch.linspace(0, 1, n, device=x0.device).view(-1, 1, 1, 1)
    with torch.no_grad():
        return model(x0[None] + a * (x1 - x0)[None]).argmax(1).cpu()


ok = (G.predict(nets["base"], x_test) == y_test).cpu()
same = [i for i in range(len(y_test)) if ok[i] and y_test[i] == y_test[0] and i > 0]
i0, i1 = (0, same[0]) if ok[0] and same else (1, 2)
for name, net in nets.items():
    labels = segment_labels(net, x_test[i0], x_test[i1], 64)
    print(f"{name:>4}: {int((labels[1:] != labels[:-1]).sum())} label changes; labels {labels.unique().tolist()}")

# %% [markdown] tags=["solution"]
# A segment that leaves the class shows only that the region is not *convex*. A region is connected if some
# path, possibly curved, joins the two images inside it; this chapter's path search bends the segment back
# into the region by inserting pushed midpoints, and finds such paths for most pairs, as
# {cite:t}`fawzi2018topology` reported. A check at finitely many points cannot prove a path exists either:
# the region could leave and re-enter between two checked points, which is why the chapter checks
# {glue:text}`path_check` points per piece.
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
exercises.check_segment_labels(segment_labels, nets["base"], x_test[0], x_test[1])
print("segment_labels agrees with helpers.papers.cure.geometry.segment_labels")

# %% [markdown]
# ```{exercise} How noisy is the Hutchinson estimate?
# :label: ex-05-hutchinson
#
# `helpers.papers.cure.geometry.hessian_frobenius_sq` estimates $\|H\|_F^2$ from Rademacher probes. For two test images
# and each network, draw 16 independent one-probe estimates (a batch holding 16 copies of an image gets 16
# independent probes in a single call, since the network is in eval mode). How large is the spread (standard
# deviation over mean) of a one-probe estimate, and how does it shrink with the number of probes? Is the
# chapter's `hutchinson_samples` probes per image enough to compare the networks?
# ```

# %% [markdown] tags=["solution"]
# ```{solution-start} ex-05-hutchinson
# :class: dropdown
# ```

# %% tags=["solution"]
copies, labels = x_test[:2].repeat_interleave(16, 0), y_test[:2].repeat_interleave(16, 0)
for name, net in nets.items():
    est = G.hessian_frobenius_sq(net, copies, labels, samples=1, generator=torch.Generator().manual_seed(seed))
    est = est.view(2, 16)  # 16 one-probe estimates for each of the two images
    spread = est.std(1) / est.mean(1)
    print(
        f"{name:>4}: ||H||_F^2 ≈ {', '.join(f'{v:.3g}' for v in est.mean(1).tolist())} (16 probes); "
        f"one-probe spread {', '.join(f'{v:.2f}' for v in spread.tolist())}; "
        f"with {hutchinson_samples} probes {', '.join(f'{v:.2f}' for v in (spread / hutchinson_samples**0.5).tolist())}"
    )


# %% [markdown] tags=["solution"]
# The estimate is an average of independent draws, so its relative spread shrinks like $1/\sqrt{S}$ with $S$
# probes: a quarter of the one-probe spread at 16 probes, about a third at 8. Compare that with the ratio of
# the networks' Hessian norms in Table 1: when they differ by much more than the spread (CURE's aim is orders
# of magnitude), a handful of probes per image, averaged over many images, is enough to rank them; resolving a
# small difference between two similar networks would need many more probes.
#
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} Robust, but flat?
# :label: ex-05-flat
#
# CURE makes the loss nearly flat around the data, and adversarial fine-tuning raises the minimal
# perturbation. Give two reasons why a small Hessian norm at the test images does not by itself certify
# robustness at a radius $\varepsilon$, and name an attack this chapter's numbers would need before you trust
# CURE's robustness.
# ```

# %% [markdown] tags=["solution"]
# ```{solution} ex-05-flat
# :class: dropdown
#
# First, the Hessian is local: a small $\|H\|_F$ at $x$ says the loss is nearly linear *near* $x$, not across
# the whole ball of radius $\varepsilon$, and a ReLU network's curvature can change abruptly between linear
# pieces. Second, a flat loss can still be steep: a linear loss with a large gradient is flat and easy to
# attack, so curvature must come with a small gradient norm or a large margin. A flat region can also come
# from saturated outputs, which starve gradient attacks (gradient masking). Before trusting the numbers one
# would run multi-step PGD with random restarts and a margin loss, or a minimal-perturbation attack such as
# DeepFool from several starts, and check that accuracy keeps falling as $\varepsilon$ grows.
# ```

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :list: bullet
# ```
