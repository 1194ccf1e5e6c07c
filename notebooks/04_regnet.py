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
# # RegNet: Gaussian latent targets, a kurtosis term, and FGSM robustness
#
# **Run:** profile {glue:text}`run_profile` · device {glue:text}`run_device` · seed {glue:text}`run_seed` ·
# wall time {glue:text}`run_wall_time`
#
# A classifier usually ends in logits and a softmax. *RegNet* (Testa, Ali, Bianchi & Magli 2019) instead asks
# an encoder to map every input onto a Gaussian with a prescribed mean and variance in a latent space: class
# $c$ should land on $\mathcal N(\mu_T e_c, \sigma_T^2 I)$, a ball of radius about $\sigma_T$ around the point
# $\mu_T$ on axis $c$. The decision rule is the nearest target mean, and well separated, well behaved
# clusters should be hard to push across a boundary. L. Volpato's master's thesis (Politecnico di Torino, 2019),
# the document this chapter reproduces, extends RegNet from two to many classes, finds that its losses do not
# give Gaussian clusters, adds a kurtosis term, and reports that RegNet is more robust than cross-entropy
# under FGSM on MNIST and CIFAR-10. We rebuild each experiment at a scale set by the run profile, and we add a
# check the thesis did not make: whether the FGSM robustness survives an attack that cannot be fooled by
# saturated gradients.

# %% tags=["parameters"]
profile = "medium"  # small (make test, make book: minutes on 2 cores) | medium (these defaults) | full (GPU)
seed = 0  # seed of the data subsets, initialisations and attacks; the seed study adds seed+1, seed+2, ...
device = "auto"  # auto | cpu | cuda | mps
encoder = "resnet18"  # encoder of every experiment but the depth and shake-shake studies
width = 8  # first-stage channels of the ResNet encoders (64 in the thesis' ResNet-18)
batch_size = 100  # images per optimisation step (the thesis: 200)
lr = 1e-2  # initial Adam learning rate
lr_milestones = [0.75]  # fractions of training after which the lr drops 10x (thesis: 1/60, 1/12, 1/6, 1/2)
sigma_t = 1.0  # target standard deviation σT, latent units (the thesis: 1)
fk_tuned = 0.2  # kurtosis weight F_k the thesis tuned
fk_small = 0.05  # a kurtosis weight too small to matter (thesis Fig. 2.12)
fk_large = 3000.0  # a kurtosis weight large enough to collapse the classes (thesis Fig. 2.13)
# three-class latent spaces (thesis Secs. 2.1-2.4, 3.2)
width_latent = 8  # first-stage channels of the three-class encoders
n_train_latent = 1500  # training images of each three-class problem (balanced over its classes)
n_test_latent = 600  # test images whose latent codes are plotted and measured
n_seeds_gauss = 2  # training seeds of the Gaussianity comparison with and without the kurtosis term (its interval)
epochs_latent = 5  # passes over the three-class training set
mu_t_latent = [10.0, 70.0]  # target means of the latent-space figures (thesis: 10 and 70)
mu_t_moments = [5.0, 10.0, 30.0, 70.0]  # target means of the kurtosis and skewness curves (Figs. 2.16-2.17)
eps_latent = [0.0, 0.1, 0.3, 0.8]  # FGSM radii of the perturbed latent spaces, [0, 1] pixel units (Figs. 3.2-3.5)
triplets = [[0, 1, 2], [2, 3, 4]]  # MNIST digit triplets attacked in the latent space (Fig. 3.5)
# ten-class MNIST (thesis Secs. 2.5, 3.3, 3.4)
n_train = 3000  # training images, a stratified subset of MNIST's 60,000
n_test = 500  # test images for clean and attacked accuracy, a stratified subset of the 10,000
epochs = 4  # passes over the training subset
mu_t = 70.0  # the target mean of the robustness studies (the thesis: 70)
mu_t_list = [5.0, 20.0, 70.0]  # target means of the accuracy curves (Figs. 2.19-2.20; thesis: 5 to 300)
fk_list = [0.0, 0.05, 0.2, 1.0, 3000.0]  # kurtosis weights of the accuracy curve (Fig. 2.21)
mu_t_robust = [10.0, 70.0]  # target means of the RegNet robustness curves (Figs. 3.7, 3.9)
eps_list = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]  # FGSM radii, [0, 1] pixel units (the thesis: 0 to 1)
eps_moderate = 0.1  # the "moderate" radius of the robustness claims
pgd_eps_list = [0.05, 0.1, 0.2]  # PGD radii of the gradient-masking check
pgd_steps = 10  # PGD iterations (step 2.5 ε / steps, random start)
depths = [18, 34, 50]  # ResNet depths of Fig. 3.11
shake_width = 8  # channels per branch of the shake-shake encoder's first stage (the thesis: 96)
epochs_shake = 4  # passes over the training subset for the shake-shake encoders
n_seeds = 3  # training seeds of the variance study (Fig. 3.15; the thesis: 6)
augment = "affine"  # augmentation of Fig. 3.16: rotations, shear, shifts, zoom
suite_budget = "reduced"  # robustness suite: reduced (PGD-20, APGD-25, 3 targets) | full (AutoAttack's budget)
suite_eps_list = [0.1, 0.2, 0.3]  # l-inf radii at which the suite grades RegNet and cross-entropy (holds eps_moderate)
n_suite = 300  # ten-class test digits graded by the suite (a stratified subset of the n_test)
square_queries = 200  # queries of the Square attack in the sanity checks (black box vs white box)
# CIFAR-10 (thesis Sec. 3.3.3)
n_train_cifar = 3000  # CIFAR-10 training images
n_test_cifar = 500  # CIFAR-10 test images
epochs_cifar = 4  # passes over the CIFAR-10 subset
# 100 classes on a synthetic latent problem (thesis Sec. 3.5)
synth_classes = 100  # number of classes = latent dimension
synth_per_class = 20  # training points per class
synth_epochs = 10  # passes over the synthetic training set

# %% tags=["remove-cell"]
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from IPython.display import display

from helpers import claims, experiment
from helpers.core import attacks, data, evaluate
from helpers.core import suite as S
from helpers.papers import regnet
from helpers.papers.regnet import latent
from helpers.papers.regnet import plots as figures
from helpers.papers.regnet import studies as experiments

# Every parameter's range and the constraints between them live in helpers.papers.regnet.params; a bad value
# stops here with a message naming it, before any compute.
run = experiment.start(
    "04_regnet", "RegNet", globals(), regnet.PARAMETERS, check=regnet.check_parameters,
    seeds=lambda v: [v["seed"] + i for i in range(v["n_seeds"])],  # the record lists every seed of the seed study
)  # fmt: skip
dev = run.dev
BASE = regnet.LatentConfig(encoder=encoder, width=width, batch_size=batch_size, lr=lr, sigma_t=sigma_t, seed=seed)

# %% [markdown]
# ## The losses
#
# For a batch, let $\mu_{O,c}$ and $\Sigma_{O,c}$ be the mean and covariance of the latent codes of class $c$.
# RegNet's *covariance loss* is the sum over classes of the Kullback-Leibler divergence from that fitted
# Gaussian to the target $\mathcal N(\mu_T e_c, \sigma_T^2 I)$ (thesis eqs. 2.1-2.2):
#
# $$\mathcal L_{\mathrm{cov}} = \sum_c \tfrac12\Big[\log\frac{|\Sigma_T|}{|\Sigma_{O,c}|} - d
#   + \operatorname{tr}(\Sigma_T^{-1}\Sigma_{O,c})
#   + (\mu_T e_c-\mu_{O,c})^\top\Sigma_T^{-1}(\mu_T e_c-\mu_{O,c})\Big].$$
#
# The *simplified loss* (eqs. 2.3-2.4) keeps only the diagonal of $\Sigma_{O,c}$. The thesis adds a kurtosis
# term $F_k(K-3)$ (eqs. 2.5-2.7), where $K$ is the kurtosis of a class along a dimension, 3 for a Gaussian.
# A signed $K-3$ is smallest not for a Gaussian but for a two-spike distribution ($K=1$), the very shape the
# thesis complains about, so we penalise $F_k\,|K-3|$, averaged over the dimensions of each class and summed
# over classes: its minimum, 0, is Gaussianity. The decision rule is the nearest target mean, which is
# $\arg\max_c z_c$. `helpers.papers.regnet.losses.regnet_loss` computes all of this in float64 with a Cholesky
# factor and a
# small jitter ($10^{-3}\sigma_T^2 I$) on the covariance, skips classes with fewer than two samples in the
# batch, and is tested against the closed-form KL. Encoders are ResNets adapted to small images with a
# $d$-unit head, $d$ the number of classes; all are trained with Adam (learning rate {glue:text}`lr`),
# {glue:text}`batch_size` images per step.
#
# ## Three-class latent spaces
#
# The thesis first trains on three classes, so that the latent space can be drawn: the grouped classes
# {0,1,2}, {3,4,5}, {6,7,8} and the single digits 0, 1, 2. Each row below shows the test images' codes in 3-D
# and, for each dimension, the histograms of the distance to the target, one colour per class, with the target
# density in black. Gaussianity is measured as the thesis recommends: the RMSE between each histogram and the
# target density (as a fraction of its peak), averaged over classes and dimensions.

# %% tags=["remove-cell"]
run.glue("lr", f"{lr:g}")
run.glue("batch_size", f"{batch_size}")
mnist_train, mnist_test = data.load("mnist", "train"), data.load("mnist", "test")
problems = {
    name: regnet.problems.three_class(mnist_train, mnist_test, groups, n_train_latent, n_test_latent, seed, dev)
    for name, groups in (("grouped", regnet.problems.GROUPED), ("single", regnet.problems.SINGLE))
}
LAT = replace(BASE, width=width_latent, **regnet.schedule(epochs_latent, lr_milestones))
latent_rows: list[dict] = []

# %% [markdown]
# ### Simplified loss (thesis Figs. 2.2-2.6)

# %%
simp = replace(LAT, loss="simplified")
rows, fig = experiments.latent_study(
    run,
    [(f"{p} classes, simplified, μT={m:g}", p, replace(simp, mu_t=m)) for p in problems for m in mu_t_latent],
    problems,
    "latent_simplified",
    "Simplified loss: grouped and single-digit classes",
)
latent_rows += rows
run.show(fig, "latent_simplified")

# %% [markdown]
# ### Covariance loss (thesis Figs. 2.9-2.11)

# %%
cov = replace(LAT, loss="cov")
rows, fig = experiments.latent_study(
    run,
    [(f"single classes, covariance, μT={m:g}", "single", replace(cov, mu_t=m)) for m in mu_t_latent],
    problems,
    "latent_cov",
    "Covariance loss: single-digit classes",
)
latent_rows += rows
run.show(fig, "latent_cov")

# %% [markdown]
# ### The kurtosis term (thesis Figs. 2.12-2.15)
#
# Too small a weight $F_k$ changes nothing, too large a weight makes the kurtosis dominate and the classes
# collapse, and the thesis' tuned value should give more Gaussian histograms than the same loss without it.

# %%
m0 = min(mu_t_latent)
rows, fig = experiments.latent_study(
    run,
    [
        (f"covariance + kurtosis, F_k={fk:g}, μT={m0:g}", "single", replace(cov, mu_t=m0, kurtosis_weight=fk))
        for fk in (fk_small, fk_large, fk_tuned)
    ]
    + [
        (
            f"simplified + kurtosis, F_k={fk_tuned:g}, μT={m0:g}",
            "single",
            replace(simp, mu_t=m0, kurtosis_weight=fk_tuned),
        )
    ],
    problems,
    "latent_kurtosis",
    "Kurtosis term: too small, too large, tuned",
)
latent_rows += rows
run.show(fig, "latent_kurtosis")

# %% [markdown]
# ### Kurtosis and skewness against the target mean (thesis Figs. 2.16-2.17), and cross-entropy (Fig. 2.18)
#
# The thesis found that the measured kurtosis and skewness grow with $\mu_T$ even when the histograms look
# Gaussian, because a few far-off points weigh heavily in fourth and third moments; it recommends the
# histogram RMSE instead.

# %%
moments = experiments.moments(run, replace(cov, kurtosis_weight=fk_tuned), mu_t_moments, problems["single"])
ce3 = regnet.trained(run, replace(LAT, loss="ce"), problems["single"][0])
z_ce, y_ce = latent.latents(ce3, problems["single"][1])
run.show(figures.moments_figure(moments, z_ce, y_ce, problems["single"][0].classes), "moments_and_ce")
display(moments.round(3))

# %% tags=["remove-cell"]
lat = pd.DataFrame(latent_rows)
display(lat.drop(columns="cfg").set_index(["figure", "configuration"]).round(3))
# The Gaussianity comparison of the claim: the covariance loss with and without the kurtosis term at μT=m0,
# over n_seeds_gauss training seeds, measured on the training and on the test images.
gauss = experiments.gaussianity_by_seed(
    run, replace(cov, mu_t=m0), range(seed, seed + n_seeds_gauss), (0.0, fk_tuned), problems["single"]
)
display(gauss.set_index(["images", "F_k", "seed"]).sort_index().round(3))
rmse_mean = gauss.groupby(["images", "F_k"]).rmse.mean()
kurt_mean = gauss.groupby(["images", "F_k"]).kurtosis.mean()
rmse_pairs = [(split, float(rmse_mean[split, 0.0]), float(rmse_mean[split, fk_tuned])) for split in ("test", "train")]
large_row = lat[lat.cfg == replace(cov, mu_t=m0, kurtosis_weight=fk_large)].iloc[0]
run.glue("m0", f"{m0:g}")
run.glue("rmse_cov", rmse_pairs[0][1], "{:.3f}")
run.glue("rmse_kurt", rmse_pairs[0][2], "{:.3f}")
run.glue("rmse_cov_train", rmse_pairs[1][1], "{:.3f}")
run.glue("rmse_kurt_train", rmse_pairs[1][2], "{:.3f}")
run.glue("n_seeds_gauss", f"{n_seeds_gauss}")
run.glue("fk_tuned", f"{fk_tuned:g}")
run.glue("fk_large", f"{fk_large:g}")
run.glue("acc3_large", large_row.accuracy, "{:.1%}")
run.glue("kurt_lo", float(moments["kurtosis"].iloc[0]), "{:.2f}")
run.glue("kurt_hi", float(moments["kurtosis"].iloc[-1]), "{:.2f}")
run.glue("mu_lo", f"{moments.index[0]:g}")
run.glue("mu_hi", f"{moments.index[-1]:g}")

# %% [markdown]
# At $\mu_T$ = {glue:text}`m0` on the single digits, averaged over {glue:text}`n_seeds_gauss` training seeds,
# the covariance loss alone leaves a histogram RMSE of {glue:text}`rmse_cov` on the test images
# ({glue:text}`rmse_cov_train` on the training images); with the kurtosis term at $F_k$ = {glue:text}`fk_tuned`
# it is {glue:text}`rmse_kurt` ({glue:text}`rmse_kurt_train`). The reduction of the test RMSE, seed by seed,
# against the thesis' "more Gaussian" (Figs. 2.14-2.15): {glue:text}`claim_kurtosis_more_gaussian`.
# With $F_k$ = {glue:text}`fk_large` the three-class accuracy is {glue:text}`acc3_large`. The mean kurtosis of
# the kurtosis-trained latents goes from {glue:text}`kurt_lo` at $\mu_T$ = {glue:text}`mu_lo` to
# {glue:text}`kurt_hi` at $\mu_T$ = {glue:text}`mu_hi`. Cross-entropy, for comparison, spreads the classes on
# rays away from the origin: only the direction matters to a softmax, so nothing makes the clusters compact.
#
# ## Accuracy on ten-class MNIST (thesis Figs. 2.19-2.21)
#
# With all ten digits ($d=10$), {glue:text}`n_train` training and {glue:text}`n_test` test images, we train the
# four RegNet losses at several target means, and the covariance loss with kurtosis at several $F_k$.

# %%
train10 = data.load_subset("mnist", "train", n_train, seed)
test10 = data.load_subset("mnist", "test", n_test, seed)
test10_loader = data.Loader(test10, 500, device=dev)
TEN = replace(BASE, **regnet.schedule(epochs, lr_milestones))
REG = replace(TEN, loss="cov", kurtosis_weight=fk_tuned)  # RegNet: covariance loss with the tuned kurtosis term
ce_cfg = replace(TEN, loss="ce")
LOSS_VARIANTS = experiments.loss_variants(fk_tuned)
acc_ce = evaluate.accuracy(regnet.trained(run, ce_cfg, train10), test10_loader)
acc_mu = experiments.accuracy_table(
    run,
    [
        ({"loss": name, "μT": m}, replace(TEN, loss=kind, mu_t=m, kurtosis_weight=fk))
        for name, (kind, fk) in LOSS_VARIANTS.items()
        for m in mu_t_list
    ],
    train10,
    test10_loader,
)
acc_fk = experiments.accuracy_table(
    run, [({"F_k": fk}, replace(REG, mu_t=mu_t, kurtosis_weight=fk)) for fk in fk_list], train10, test10_loader
)
fig = figures.accuracy_figure(acc_mu, acc_ce, acc_fk, list(LOSS_VARIANTS), fk=fk_tuned, mu_t=mu_t)
run.show(fig, "accuracy_mu_fk")
display(acc_mu.pivot(index="μT", columns="loss", values="accuracy").assign(CE=acc_ce).round(3))

# %% tags=["remove-cell"]
acc_head = float(acc_mu[(acc_mu.loss == "covariance + kurtosis") & (acc_mu["μT"] == mu_t)].accuracy.iloc[0])
acc_fk_tuned = float(acc_fk[acc_fk.F_k == fk_tuned].accuracy.iloc[0])
acc_fk_large = float(acc_fk[acc_fk.F_k == max(fk_list)].accuracy.iloc[0])
run.glue("n_train", f"{n_train:,}")
run.glue("n_test", f"{n_test:,}")
run.glue("mu_t", f"{mu_t:g}")
run.glue("acc_ce", acc_ce, "{:.1%}")
run.glue("acc_head", acc_head, "{:.1%}")
run.glue("fk_max", f"{max(fk_list):g}")
run.glue("acc_fk_large", acc_fk_large, "{:.1%}")
run.glue("acc_fk_tuned", acc_fk_tuned, "{:.1%}")

# %% [markdown]
# Cross-entropy reaches {glue:text}`acc_ce`; the covariance loss with kurtosis at $\mu_T$ = {glue:text}`mu_t`
# reaches {glue:text}`acc_head`. RegNet minus cross-entropy, against the thesis' "comparable accuracy" (within
# 3 points): {glue:text}`claim_clean_accuracy_comparable`. Raising $F_k$ from {glue:text}`fk_tuned` to
# {glue:text}`fk_max` takes the accuracy from {glue:text}`acc_fk_tuned` to {glue:text}`acc_fk_large`; the
# thesis' collapse, tuned minus large (margin 25 points): {glue:text}`claim_large_fk_collapses`. A collapse
# would mean that the kurtosis term, which ignores where the clusters are, drowns the KL term that separates
# them.
#
# ## FGSM on RegNet
#
# FGSM (Goodfellow et al. 2015) moves every pixel by $\varepsilon$ along the sign of the input gradient of a
# loss. The thesis writes that loss as "the loss with respect to the true labels"; for both models we attack
# the cross-entropy of the outputs read as logits, what standard attack code does. Its radius runs over the
# thesis' range [0, 1] in pixel units (at $\varepsilon=1$ any image can become any other). Test accuracy uses
# the decision rule of each model (argmax). Every model here is deterministic at test time (the shake-shake
# encoder averages its branches in eval mode), so no EOT is needed.
#
# ### What the attack does (thesis Figs. 3.1-3.5)

# %%
head = regnet.trained(run, replace(REG, mu_t=mu_t), train10)
ce10 = regnet.trained(run, ce_cfg, train10)
x8, y8 = test10.float(dev)
run.show(figures.fgsm_images(head, x8[:6], y8[:6], eps_list, mu_t=mu_t), "fgsm_images")

# %%
tri_models = {}
for t in triplets:
    tr, te_loader = regnet.problems.three_class(
        mnist_train, mnist_test, [[c] for c in t], n_train_latent, n_test_latent, seed, dev
    )
    tri_models[tuple(t)] = (regnet.trained(run, replace(cov, mu_t=mu_t, kurtosis_weight=fk_tuned), tr), te_loader)
panels = [latent.latents_under_fgsm(*tri_models[tuple(t)], eps_latent) for t in triplets]
run.show(figures.latents_under_fgsm_figure(panels, triplets, eps_latent), "latent_under_fgsm")
share_rows = [
    {"digits": str(t), "ε": e, **{f"share → {t[c]}": float(s) for c, s in enumerate(latent.class_shares(z))}}
    for t, row in zip(triplets, panels, strict=True)
    for e, (z, _) in zip(eps_latent, row, strict=True)
]
shares = pd.DataFrame(share_rows).set_index(["digits", "ε"])
display(shares.round(3))

# %% tags=["remove-cell"]
top_share = shares.xs(max(eps_latent), level="ε").max(axis=1)
run.glue("eps_latent_max", f"{max(eps_latent):g}")
run.glue("top_share", float(top_share.mean()), "{:.0%}")

# %% [markdown]
# At $\varepsilon$ = {glue:text}`eps_latent_max` the most popular class takes on average {glue:text}`top_share`
# of the attacked test digits of a triplet (a third would be no preference; the thesis saw every class of a
# triplet collapse onto one digit).
#
# ### Robustness curves on MNIST (thesis Fig. 3.7) and the gradient-masking check
#
# A large $\mu_T$ makes the softmax of the outputs saturate: for a correctly classified digit the
# cross-entropy's gradient can be tiny or exactly zero in float32, and FGSM then moves along the sign of
# rounding noise. A robustness that comes from this is *gradient masking* (Athalye, Carlini & Wagner 2018),
# not robustness. So beyond the thesis we also attack both models with {glue:text}`pgd_steps`-step PGD on two
# losses, the cross-entropy and the Carlini-Wagner margin $\max_{j\ne y} z_j - z_y$, whose gradient does not
# vanish at any scale, and keep the worst case per radius.

# %%
fgsm_rows = []
for m in mu_t_robust:
    net = regnet.trained(run, replace(REG, mu_t=m), train10)
    acc = latent.fgsm_curve(run, net, test10_loader, eps_list, test="mnist", desc=f"μT={m:g}")
    fgsm_rows += latent.curve_rows(eps_list, acc, model=f"RegNet μT={m:g}")
acc = latent.fgsm_curve(run, ce10, test10_loader, eps_list, test="mnist", desc="CE")
fgsm_mnist = pd.DataFrame(fgsm_rows + latent.curve_rows(eps_list, acc, model="cross-entropy"))
head_name = f"RegNet μT={mu_t:g}"
pgd_table, worst = latent.gradient_masking_table(
    {head_name: head, "cross-entropy": ce10}, test10_loader, pgd_eps_list, steps=pgd_steps, seed=seed
)
run.show(figures.robustness_figure(fgsm_mnist, pgd_table), "robustness_mnist")
display(fgsm_mnist.pivot(index="ε", columns="model", values="accuracy").rename_axis(columns="FGSM accuracy").round(3))
display(pgd_table.pivot_table(index=["attack", "ε"], columns="model", values="accuracy").round(3))

# %% tags=["remove-cell"]
at = latent.accuracy_at  # accuracy of a model at a radius in a table of curves
fgsm_reg = at(fgsm_mnist, head_name, eps_moderate)
fgsm_ce = at(fgsm_mnist, "cross-entropy", eps_moderate)
pgd_reg = float(worst.loc[eps_moderate, head_name])
pgd_ce = float(worst.loc[eps_moderate, "cross-entropy"])
fgsm_margin_reg = at(pgd_table, head_name, eps_moderate, attack="FGSM (margin)")
run.glue("eps_moderate", f"{eps_moderate:g}")
run.glue("fgsm_reg", fgsm_reg, "{:.1%}")
run.glue("fgsm_ce", fgsm_ce, "{:.1%}")
run.glue("pgd_reg", pgd_reg, "{:.1%}")
run.glue("pgd_ce", pgd_ce, "{:.1%}")
run.glue("fgsm_margin_reg", fgsm_margin_reg, "{:.1%}")
run.glue("pgd_steps", f"{pgd_steps}")
verdict = latent.pgd_verdict(fgsm_reg - fgsm_ce, pgd_reg - pgd_ce)
run.glue("verdict", verdict)

# %% [markdown]
# At $\varepsilon$ = {glue:text}`eps_moderate`, FGSM leaves RegNet ($\mu_T$ = {glue:text}`mu_t`) with
# {glue:text}`fgsm_reg` accuracy and cross-entropy with {glue:text}`fgsm_ce`. FGSM on the margin leaves RegNet
# {glue:text}`fgsm_margin_reg`, and the worst PGD leaves {glue:text}`pgd_reg` against {glue:text}`pgd_ce` for
# cross-entropy. The book's PGD check ({glue:text}`verdict_pgd_check`): {glue:text}`verdict`. Over the whole
# grid of FGSM radii, RegNet minus cross-entropy, against the thesis' "consistently better" (Fig. 3.7):
# {glue:text}`claim_fgsm_more_robust_mnist`.
#
# ### Graded by the strong suite (beyond the thesis)
#
# FGSM is one step and PGD with {glue:text}`pgd_steps` fixed steps can stall; a robustness a reviewer would
# accept is the accuracy left when every digit must survive each of three stronger attacks at the same radius
# (the primer explains why the book grades this way): PGD from a random start with enough steps to cross the
# ball, APGD-CE and the targeted APGD-T on the difference-of-logits-ratio loss (Croce & Hein 2020, as
# implemented in torchattacks). RegNet has no logits: its class scores are the latent code $z$ itself, since
# the nearest target mean $\mu_T e_c$ is the largest coordinate $z_c$ (all targets have the same norm), so the
# encoder is graded as it is. The cross-entropy of $z$ saturates at a large $\mu_T$, but the ratio loss of
# APGD-T does not depend on the scale of the scores, which is why it is in the suite. The thesis' FGSM stays
# beside it, on the same {glue:text}`n_suite` test digits, and so does the gap between the two.

# %%
suite_data = data.subset(test10, n_suite, seed)
suite_loader = data.Loader(suite_data, 500, device=dev)
graded_nets = {head_name: head, "cross-entropy": ce10}
grades = {
    (name, e): S.grade(net, suite_loader, S.Suite.make(e, budget=suite_budget), desc=f"suite: {name}, ε={e:g}")
    for e in suite_eps_list
    for name, net in graded_nets.items()
}
fgsm_same = {
    (name, e): evaluate.scores(net, suite_loader, lambda m, x, y, e=e: attacks.fgsm(m, x, y, e), name="FGSM").acc
    for (name, e), net in ((k, graded_nets[k[0]]) for k in grades)
}
display(experiments.suite_table(grades, fgsm_same).round(3))

# %% [markdown]
# The sanity checks of Carlini et al. (2019), "On evaluating adversarial robustness", at
# $\varepsilon$ = {glue:text}`eps_moderate`: at a radius large enough to turn any digit into another the
# accuracy must fall to about zero, more PGD steps (5, 10 and 40, a budget kept small for the chapter's time)
# must never raise it, and the black-box Square attack ({glue:text}`square_queries` queries, no gradients) must
# not break digits that the gradient attacks left standing, or the gradients are masking something.

# %%
checks = {
    name: S.sanity_checks(
        net, suite_loader, grades[name, eps_moderate], steps=(5, 10, 40), square_queries=square_queries
    )
    for name, net in graded_nets.items()
}
for name, net in graded_nets.items():
    run.model(
        f"{'RegNet muT=' + format(mu_t, 'g') if name == head_name else 'cross-entropy'} MNIST",
        net,
        grades[name, eps_moderate],
        dataset="mnist",
        test_data=suite_data,
        sanity=checks[name],
        scores="the latent code z (10 values) read as class scores: argmax z is the nearest target mean mu_T e_c"
        if name == head_name
        else "logits (the encoder's 10 outputs, trained with cross-entropy)",
        fgsm_accuracy=fgsm_same[name, eps_moderate],
    )
sanity_table = S.sanity_table(checks)
display(sanity_table)

# %% tags=["remove-cell"]
suite_reg = grades[head_name, eps_moderate].robust_accuracy
suite_ce = grades["cross-entropy", eps_moderate].robust_accuracy
n_failed = int((~sanity_table.passed).sum())
run.glue("n_suite", f"{len(suite_data)}")
run.glue("square_queries", f"{square_queries}")
run.glue("suite_name", grades[head_name, eps_moderate].suite.name)
run.glue("suite_reg", suite_reg, "{:.1%}")
run.glue("suite_ce", suite_ce, "{:.1%}")
run.glue("fgsm_same_reg", fgsm_same[head_name, eps_moderate], "{:.1%}")
run.glue("fgsm_same_ce", fgsm_same["cross-entropy", eps_moderate], "{:.1%}")
run.glue("sanity_verdict", "all pass" if n_failed == 0 else f"{n_failed} of {len(sanity_table)} fail (shown above)")
adv_fgsm_same = fgsm_same[head_name, eps_moderate] - fgsm_same["cross-entropy", eps_moderate]
suite_verdict = latent.suite_verdict(suite_reg - suite_ce, adv_fgsm_same)
run.glue("suite_verdict", suite_verdict)

# %% [markdown]
# At $\varepsilon$ = {glue:text}`eps_moderate`, on {glue:text}`n_suite` test digits, the suite
# ({glue:text}`suite_name`) leaves RegNet with {glue:text}`suite_reg` and cross-entropy with {glue:text}`suite_ce`,
# where FGSM left them {glue:text}`fgsm_same_reg` and {glue:text}`fgsm_same_ce` on the same digits. The book's
# suite check ({glue:text}`verdict_suite_more_robust_mnist`): {glue:text}`suite_verdict`. Sanity checks:
# {glue:text}`sanity_verdict`.
#
# ### Depth, shake-shake, training seeds and augmentation (thesis Figs. 3.11-3.16)
#
# The thesis then varies one thing at a time around RegNet at $\mu_T$ = {glue:text}`mu_t` with
# $F_k$ = {glue:text}`fk_tuned`: the ResNet depth, a shake-shake encoder (Gastaldi 2017) instead of a ResNet,
# the training seed, and data augmentation (rotations up to 20°, shear, shifts, zoom).

# %%
SHAKE = {"encoder": "shakeshake26", "width": shake_width, **regnet.schedule(epochs_shake, lr_milestones)}
seeds = range(seed, seed + n_seeds)
varied = experiments.variations(
    replace(REG, mu_t=mu_t), ce_cfg, depths=depths, shake=SHAKE, seeds=seeds, augment=augment
)
studies = experiments.fgsm_table(run, varied, train10, test10_loader, eps_list)
run.show(figures.studies_figure(studies, seed), "robustness_studies")
display(studies.pivot_table(index="ε", columns=["study", "model"], values="accuracy").rename_axis("FGSM ε").round(3).T)

# %% tags=["remove-cell"]
seed_tab = studies[(studies.study == "seeds") & np.isclose(studies["ε"], eps_moderate)]
reg_seeds = seed_tab[seed_tab.model.str.startswith("RegNet")].accuracy
ce_seeds = seed_tab[seed_tab.model.str.startswith("cross")].accuracy
run.glue("n_seeds", f"{n_seeds}")
run.glue("seed_reg_range", f"{reg_seeds.min():.1%} to {reg_seeds.max():.1%}")
run.glue("seed_ce_range", f"{ce_seeds.min():.1%} to {ce_seeds.max():.1%}")
shake_reg = at(studies[studies.study == "shake-shake"], "RegNet", eps_moderate)
shake_ce = at(studies[studies.study == "shake-shake"], "cross-entropy", eps_moderate)
run.glue("shake_reg", shake_reg, "{:.1%}")
run.glue("shake_ce", shake_ce, "{:.1%}")

# %% [markdown]
# Over {glue:text}`n_seeds` training seeds, FGSM at $\varepsilon$ = {glue:text}`eps_moderate` leaves RegNet
# between {glue:text}`seed_reg_range` and cross-entropy between {glue:text}`seed_ce_range`. With the
# shake-shake encoder the two are at {glue:text}`shake_reg` (RegNet) and {glue:text}`shake_ce` (cross-entropy).
#
# ### CIFAR-10 (thesis Fig. 3.9)

# %%
train_c = data.load_subset("cifar10", "train", n_train_cifar, seed)
test_c = data.load_subset("cifar10", "test", n_test_cifar, seed)
test_c_loader = data.Loader(test_c, 500, device=dev)
CIF = replace(TEN, **regnet.schedule(epochs_cifar, lr_milestones))
cifar_models = [
    ({"model": f"RegNet μT={m:g}"}, replace(CIF, loss="cov", mu_t=m, kurtosis_weight=fk_tuned)) for m in mu_t_robust
] + [({"model": "cross-entropy"}, replace(CIF, loss="ce"))]
fgsm_cifar = experiments.fgsm_table(run, cifar_models, train_c, test_c_loader, eps_list, dataset="cifar10")
run.show(figures.curves_figure(fgsm_cifar, "FGSM, CIFAR-10 (Fig. 3.9)"), "robustness_cifar10")
display(fgsm_cifar.pivot(index="ε", columns="model", values="accuracy").rename_axis(columns="FGSM accuracy").round(3))

# %% tags=["remove-cell"]
cifar_reg = at(fgsm_cifar, head_name, eps_moderate) if head_name in set(fgsm_cifar.model) else float("nan")
run.glue("cifar_clean_reg", at(fgsm_cifar, fgsm_cifar.model.iloc[0], 0.0), "{:.1%}")
run.glue("cifar_clean_ce", at(fgsm_cifar, "cross-entropy", 0.0), "{:.1%}")
run.glue("cifar_reg", cifar_reg, "{:.1%}")
run.glue("cifar_ce", at(fgsm_cifar, "cross-entropy", eps_moderate), "{:.1%}")
run.glue("n_train_cifar", f"{n_train_cifar:,}")

# %% [markdown]
# On {glue:text}`n_train_cifar` CIFAR-10 training images the first RegNet curve starts at
# {glue:text}`cifar_clean_reg` and cross-entropy at {glue:text}`cifar_clean_ce` (the thesis, with all of CIFAR-10
# and its ResNet-18, reached at best about 86%); at $\varepsilon$ = {glue:text}`eps_moderate` RegNet at
# $\mu_T$ = {glue:text}`mu_t` keeps {glue:text}`cifar_reg` and cross-entropy {glue:text}`cifar_ce`.
#
# ## One hundred classes (thesis Sec. 3.5)
#
# The thesis could not train beyond 62 classes: the loss turned NaN. With $d=100$ and 200 images per batch a
# class has about two samples, its sample covariance has rank one, and its determinant is zero: a float32
# `det` underflows and `log` returns $-\infty$. CIFAR-100 is not available offline, so we train a small MLP
# encoder on a synthetic problem with {glue:text}`synth_classes` classes and watch every step's loss, and we
# evaluate a straightforward float32 determinant form of the loss on the same batches for contrast.

# %%
synth = regnet.problems.synthetic_latent_problem(synth_classes, synth_per_class, seed=seed)
synth_test = regnet.problems.synthetic_latent_problem(synth_classes, 10, seed=seed, noise_seed=seed + 10_000)
synth_cfg = replace(BASE, loss="cov", mu_t=mu_t, kurtosis_weight=fk_tuned, batch_size=200)
synth_run = regnet.train_synthetic(synth_cfg, synth, epochs=synth_epochs, device=dev)
synth_acc = evaluate.accuracy(synth_run.model, data.Loader(synth_test, 500, device=dev))
run.show(figures.loss_figure(synth_run.step_losses, synth_classes), "hundred_classes")

# %% tags=["remove-cell"]
all_finite = synth_run.all_finite
run.glue("synth_classes", f"{synth_classes}")
run.glue("synth_steps", f"{len(synth_run.step_losses)}")
run.glue("synth_acc", synth_acc, "{:.1%}")
run.glue("naive_bad", synth_run.naive_bad, "{:.0%}")

# %% [markdown]
# Whether all {glue:text}`synth_steps` steps gave a finite loss, the book's check:
# {glue:text}`verdict_finite_at_100_classes`. The encoder reaches {glue:text}`synth_acc` on held-out points; the
# float32 determinant form is not finite on {glue:text}`naive_bad` of the same batches.
#
# ## Claims
#
# Each finding of the thesis that this chapter tests is written, in the thesis' words and with its section and
# figure, in `notebooks/claims/04_regnet.yaml`, together with the effect we measure and the *margin* it must
# clear, both fixed before any run. The chapter measures each effect with a 95% interval and the verdict follows
# from where the interval lies: *reproduced* beyond the margin in the thesis' direction, *contradicted* on the
# other side of no effect, *inconclusive at this scale* otherwise. Models compared on the same test digits get
# a paired bootstrap over the digits; the Gaussianity comparison, trained {glue:text}`n_seeds_gauss` times,
# gets a bootstrap over the training seeds. The thesis reports curves and histograms, not numbers, so there is
# no document value to place inside our intervals.
#
# - Kurtosis term, RMSE without minus with (Figs. 2.14-2.15): {glue:text}`claim_kurtosis_more_gaussian`.
# - Tuned minus too-large $F_k$, ten-class accuracy (Figs. 2.13, 2.21; margin 25 points):
#   {glue:text}`claim_large_fk_collapses`.
# - Clean accuracy, RegNet minus cross-entropy (Fig. 3.7; comparable: within ±3 points):
#   {glue:text}`claim_clean_accuracy_comparable`.
# - FGSM accuracy, RegNet minus cross-entropy, mean over the radii {glue:text}`eps_grid` (Fig. 3.7):
#   {glue:text}`claim_fgsm_more_robust_mnist`.
#
# The book adds checks the thesis did not make, listed apart and never counted as reproductions: the PGD
# gradient-masking check ({glue:text}`verdict_pgd_check`), the strong suite
# ({glue:text}`verdict_suite_more_robust_mnist`) and the finiteness of the book's own loss at
# {glue:text}`synth_classes` classes ({glue:text}`verdict_finite_at_100_classes`).

# %%
eps_pos = [e for e in eps_list if e > 0]
run.glue("eps_grid", ", ".join(f"{e:g}" for e in eps_pos))
gauss_test = gauss[gauss.images == "test"].pivot(index="seed", columns="F_k", values="rmse")
run.claim(
    "kurtosis_more_gaussian",
    claims.mean(
        (gauss_test[0.0] - gauss_test[fk_tuned]).to_numpy(), unit="% of peak", scale=100, what="training seeds"
    ),
    ours=f"μT={m0:g}, {n_seeds_gauss} seeds: "
    + "; ".join(f"{split} images: RMSE {a:.3f} without, {b:.3f} with" for split, a, b in rmse_pairs)
    + f"; mean kurtosis of the training latents {kurt_mean['train', 0.0]:.2f} without, "
    f"{kurt_mean['train', fk_tuned]:.2f} with (Gaussian: 3)",
    fk=fk_tuned,
    mu=m0,
)
large = regnet.trained(run, replace(REG, mu_t=mu_t, kurtosis_weight=max(fk_list)), train10)
clean10 = {
    name: evaluate.scores(net, test10_loader, desc=f"clean: {name}")
    for name, net in (("tuned", head), ("large", large), ("ce", ce10))
}
run.claim(
    "large_fk_collapses",
    claims.paired(clean10["tuned"], clean10["large"]),
    ours=f"μT={mu_t:g}, {len(test10)} test digits: F_k={fk_tuned:g}: {clean10['tuned'].acc:.1%}; "
    f"F_k={max(fk_list):g}: {clean10['large'].acc:.1%}",
    fk_large=max(fk_list),
    fk=fk_tuned,
)

# %%
run.claim(
    "clean_accuracy_comparable",
    claims.paired(clean10["tuned"], clean10["ce"]),
    ours=f"{len(test10)} test digits: RegNet {clean10['tuned'].acc:.1%}, cross-entropy {clean10['ce'].acc:.1%}",
    mu=mu_t,
)
fgsm_hits = {  # (radii ε > 0, digits): per-digit correctness
    name: latent.fgsm_hits(run, net, test10_loader, eps_list, test="mnist")
    for name, net in ((head_name, head), ("cross-entropy", ce10))
}
run.claim(
    "fgsm_more_robust_mnist",
    claims.paired(fgsm_hits[head_name].mean(0), fgsm_hits["cross-entropy"].mean(0)),
    ours="; ".join(
        f"ε={e:g}: RegNet {at(fgsm_mnist, head_name, e):.1%}, cross-entropy {at(fgsm_mnist, 'cross-entropy', e):.1%}"
        for e in eps_pos
    ),
    mu=mu_t,
    eps=", ".join(f"{e:g}" for e in eps_pos),
)
run.check(
    "pgd_check",
    pgd_reg > pgd_ce,
    ours=f"ε={eps_moderate:g}, worst of {pgd_steps}-step PGD: RegNet {pgd_reg:.1%}, cross-entropy {pgd_ce:.1%}; "
    f"FGSM: {fgsm_reg:.1%} vs {fgsm_ce:.1%}. {verdict}",
)

# %%
suite_effect = claims.paired(grades[head_name, eps_moderate].robust, grades["cross-entropy", eps_moderate].robust)
run.check(
    "suite_more_robust_mnist",
    suite_reg > suite_ce,
    ours=f"ε={eps_moderate:g}, {grades[head_name, eps_moderate].suite.name} on {len(suite_data)} digits: RegNet "
    f"{suite_reg:.1%}, cross-entropy {suite_ce:.1%} (RegNet minus cross-entropy {suite_effect.text()}); FGSM on "
    f"the same digits: {fgsm_same[head_name, eps_moderate]:.1%} vs {fgsm_same['cross-entropy', eps_moderate]:.1%}; "
    f"sanity checks: {n_failed} of {len(sanity_table)} fail. {suite_verdict}",
)
run.check(
    "finite_at_100_classes",
    all_finite,
    ours=f"{len(synth_run.step_losses)} steps, all finite: {all_finite}; accuracy {synth_acc:.1%}; "
    f"float32 determinant form non-finite on {synth_run.naive_bad:.0%} of the batches",
)
run.verdicts()

# %%
run.finish()

# %% [markdown]
# ## Exercises
#
# The exercises revisit the losses and the robustness of the thesis reproduced here
# {cite:p}`volpato2019regnet`, with the FGSM of {cite:t}`goodfellow2015explaining` and the gradient-masking
# lens of {cite:t}`athalye2018obfuscated`. They reuse this chapter's trained RegNet (`head`,
# $\mu_T$ = {glue:text}`mu_t`), its cross-entropy
# twin (`ce10`) and the ten-class test digits (`test10`); each takes seconds on a laptop CPU at the medium
# profile. Coding exercises end with a self-check cell that raises an `AssertionError` with a hint until
# your answer agrees with `helpers`.

# %% [markdown]
# ```{exercise} Per-class kurtosis
# :label: ex-04-kurtosis
#
# Complete `class_kurtosis(z, y, num_classes)`: for latent codes `z` (B, d) and labels `y` (B,), return the
# Pearson {term}`kurtosis` of every class along every dimension, a (num_classes, d) tensor, using the plain
# (biased) sample moments around each class's own mean. Avoid a Python loop over samples; a loop over classes
# is fine. What value do you expect for Gaussian latents, and for a class whose codes sit on two points?
# ```


# %%
def class_kurtosis(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pearson kurtosis E[(z-m)^4] / E[(z-m)^2]^2 per class and dimension, shape (num_classes, d)."""
    raise NotImplementedError("complete class_kurtosis")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-04-kurtosis
# :class: dropdown
# ```


# %% tags=["solution"]
def class_kurtosis(z: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pearson kurtosis E[(z-m)^4] / E[(z-m)^2]^2 per class and dimension, shape (num_classes, d)."""
    z = z.double()
    rows = []
    for c in range(num_classes):
        zc = z[y == c] - z[y == c].mean(0, keepdim=True)
        rows.append(zc.pow(4).mean(0) / zc.pow(2).mean(0).pow(2))
    return torch.stack(rows)


# %% [markdown] tags=["solution"]
# A Gaussian gives 3 along every dimension; codes on two points $m \pm a$ with equal weights give
# $a^4 / (a^2)^2 = 1$, the smallest value any distribution can have. Moments are computed in float64: at
# $\mu_T = 70$ fourth powers of distances grow quickly, and float32 loses digits.
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
from helpers import exercises

exercises.check_kurtosis(class_kurtosis)
print("class_kurtosis agrees with helpers.papers.regnet.losses.kurtosis")

# %% [markdown]
# ```{exercise} The margin loss
# :label: ex-04-margin
#
# The chapter's gradient-masking check attacks the Carlini-Wagner margin $\max_{j\ne y} z_j - z_y$. Complete
# `my_margin_loss(z, y)`, summed over the batch. Then explain why its input gradient cannot vanish when the
# outputs are large, while the gradient of the cross-entropy of the same outputs can be exactly zero in
# float32.
# ```


# %%
def my_margin_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin: largest wrong-class output minus true-class output, summed over the batch."""
    raise NotImplementedError("complete my_margin_loss")


# %% [markdown] tags=["solution"]
# ```{solution-start} ex-04-margin
# :class: dropdown
# ```


# %% tags=["solution"]
def my_margin_loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini-Wagner margin: largest wrong-class output minus true-class output, summed over the batch."""
    true = z.gather(1, y[:, None]).squeeze(1)
    wrong = z.masked_fill(torch.nn.functional.one_hot(y, z.shape[1]).bool(), float("-inf"))
    return (wrong.max(1).values - true).sum()


# %% [markdown] tags=["solution"]
# The margin is a difference of two outputs, so its input gradient is the difference of two rows of the
# encoder's Jacobian, whatever the size of the outputs. The cross-entropy's gradient with respect to the
# outputs is $p - e_y$, the softmax minus the one-hot label: when the true output exceeds the others by more
# than about 100 (easy at $\mu_T = 70$), $p$ rounds to exactly $e_y$ in float32 and every gradient is zero.
#
# ```{solution-end}
# ```

# %% tags=["self-check"]
exercises.check_margin_loss(my_margin_loss)
print("my_margin_loss agrees with helpers.papers.regnet.latent.margin_loss")

# %% [markdown]
# ```{exercise} How often is the gradient exactly zero?
# :label: ex-04-zero-gradients
#
# For the first 200 test digits of `test10`, compute the input gradient of the cross-entropy of the outputs
# (`helpers.core.attacks.input_gradient`, which takes a `loss_fn`) for `head` and for `ce10`, with the models in
# eval mode. What fraction of the digits get an all-zero gradient, so that FGSM leaves them unchanged?
# Repeat with the margin loss. How does this explain the FGSM curves of this chapter?
# ```

# %% [markdown] tags=["solution"]
# ```{solution-start} ex-04-zero-gradients
# :class: dropdown
# ```

# %% tags=["solution"]
x200, y200 = test10.float(dev)
x200, y200 = x200[:200], y200[:200]
for name, net in ((f"RegNet μT={mu_t:g}", head), ("cross-entropy", ce10)):
    with attacks.eval_mode(net):
        for loss_name, loss_fn in (("cross-entropy", None), ("margin", latent.margin_loss)):
            g = attacks.input_gradient(net, x200, y200, loss_fn=loss_fn).flatten(1)
            print(f"{name:>16}, {loss_name:>13} loss: {(g.abs().amax(1) == 0).float().mean():.0%} zero gradients")

# %% [markdown] tags=["solution"]
# A digit whose gradient is all zero is not moved by FGSM ($\mathrm{sign}(0) = 0$), so it counts as robust
# at every radius. At $\mu_T = 70$ the cross-entropy of RegNet's outputs saturates on confidently classified
# digits, which can round its float32 gradient to exactly zero, while the margin's gradient, a difference of
# two Jacobian rows, does not vanish. Compare the printed fractions: whatever part of RegNet's FGSM advantage
# comes from zero-gradient digits is a property of the attack, not of the model, and the chapter's PGD check
# with the margin loss measures how much of the advantage remains without it.
#
# ```{solution-end}
# ```

# %% [markdown]
# ```{exercise} Why penalise |K - 3| and not K - 3?
# :label: ex-04-two-spikes
#
# Show that the kurtosis of any distribution with finite fourth moment is at least 1, and find when it equals
# 1. Use this to explain why a kurtosis term $F_k (K - 3)$ with a sign, added to a loss that is minimised,
# pushes each class towards two spikes instead of a Gaussian. What does the chapter's $F_k |K-3|$ change?
# ```

# %% [markdown] tags=["solution"]
# ```{solution} ex-04-two-spikes
# :class: dropdown
#
# Let $u = (z - m)^2$. Then $\operatorname{Var}(u) = E[u^2] - E[u]^2 \ge 0$, so
# $E[(z-m)^4] \ge E[(z-m)^2]^2$ and $K \ge 1$, with equality exactly when $u$ is constant: $|z - m|$ takes a
# single value, i.e. $z$ sits on the two points $m \pm a$ with equal weights. Minimising $F_k (K-3)$
# therefore rewards the smallest kurtosis, the two-spike shape, which is the non-Gaussian latent the thesis
# wanted to remove. $F_k |K-3|$ is smallest, 0, at $K = 3$, the Gaussian's value, and grows on both sides.
# ```

# %% [markdown]
# ## References
#
# ```{bibliography}
# :filter: docname in docnames
# :list: bullet
# ```
