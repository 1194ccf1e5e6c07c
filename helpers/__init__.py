"""helpers: the tested core of the course book *Adversarial Robustness, Reproduced*.

Submodules are grouped by concern and imported explicitly (``from helpers import attacks``); importing the
package itself does no work: no device probing, no data access, no torch import.

- ``device``: device choice, seeding, autocast, channels_last, throughput timing, run metadata.
- ``data``: MNIST / CIFAR-10 as cached uint8 tensors, stratified subsets, batch iterators.
- ``augment``: batched, seeded image augmentations on tensors in [0, 1].
- ``attacks``: FGSM, PGD (l-inf / l2, EOT), uniform noise; the ``eval_mode`` context.
- ``evaluate``: per-sample scores over noise draws, accuracy, transfer (``perturb``), the PGD battery.
- ``suite``: the strong evaluation suite (PGD + APGD-CE + APGD-T, EOT) and the sanity checks.
- ``verify``: re-attack every recorded model from its checkpoint (``python -m helpers.verify``).
- ``training``: the training loop with a pluggable adversary, resumable checkpoints.
- ``models``: the architectures the chapters use (``models.resnet``: small-input ResNet-18/34/50;
  ``models.photoz``: the photo-z Inception and CNN; ``models.registry``: self-describing ``save``/``load``);
  normalization is a layer inside each model.
- ``losses``: training losses and regularizers beyond cross-entropy.
- ``geometry``: input-space geometry of classifiers (DeepFool minimal perturbations, Hutchinson Hessian norm,
  top Hessian direction, decision-boundary planes and curvature, path-connectedness of regions, hue shift).
- ``metrics``: metrics beyond accuracy (photo-z bias, sigma_MAD, outlier fraction).
- ``galaxies``: the GalSim simulator of SDSS-like ugriz cutouts for the photo-z chapter.
- ``results``: a chapter's run record (glue, claims, checks, models) and ``results/NN_name.json``.
- ``claims``: claims as data (``notebooks/claims/*.yaml``), bootstrap intervals and the three-way verdicts.
- ``scorecard``: forest plots, claims and checks tables, verdict counts per profile.
- ``plots``: the book's one figure style and a save-and-show helper.
- ``params``: parameter validation that names the parameter and its valid range.
- ``pipeline``: jupytext + papermill execution of the chapters (``python -m helpers.pipeline``).
- ``sweep``: grids of chapter runs (seeds x parameter values) as Ray tasks, and their summary
  (``python -m helpers.sweep``).
"""

__version__ = "0.1.0"
