"""helpers: the tested code of the course book *Adversarial Robustness, Reproduced*.

Three tiers, one folder each, whose imports point one way (``tests/test_architecture.py`` checks it):

``helpers/core/``: the generic core, which knows no document and no book. It imports only itself.
    ``attacks`` (FGSM, FGSM-RS, PGD l-inf/l2 with EOT, noise, NES; ``eval_mode``; one per-sample norm helper),
    ``evaluate`` (per-sample scores over noise draws, accuracy, transfer, the PGD battery), ``suite`` (the
    strong evaluation: PGD + APGD-CE + APGD-T with EOT, and the sanity checks of Carlini et al. 2019),
    ``training`` (``fit`` with a pluggable adversary, exact resume, the catastrophic-overfitting guard),
    ``data`` (MNIST / CIFAR-10 as cached uint8 tensors, stratified subsets, the loader; ``MEAN_STD``),
    ``augment``, ``models`` (the registry ``create``/``save``/``load``, ``Normalize``, the CIFAR and MNIST
    networks), ``device`` (device, seeding, autocast, run metadata), ``params`` (checks and rules that name
    the parameter and its range), ``io`` (atomic writes, the project and results folders), ``plots`` (the one
    figure style), ``progress``.

``helpers/papers/``: one module or package per document, for what only that document needs. Each imports
    the core and nothing of the book's machinery; none imports another document.
    ``photoz`` (document 1: GalSim galaxies, the Inception, photo-z metrics, the chapter's study and tables),
    ``curriculum`` (2: curriculum schedule, PNI/RSE defences, the chapter's networks and study),
    ``matrand`` (3: threats, MAT-Rand/MAT-Max adversaries, the grader, the chapter's trainer and report),
    ``regnet`` (4: Gaussian-target latent losses, encoders, Gaussianity statistics, studies, figures),
    ``cure`` (5: the CURE regularizer, minimal perturbations, Hessian, boundary planes, paths, hue attack).

``helpers/*.py`` and ``helpers/sweep/``: the book's machinery, which may import everything.
    ``experiment`` (the chapter scaffold: ``start`` validates, seeds and opens the run; ``run.trained``,
    ``run.scored``, ``run.show``), ``results`` (the run record ``Run``: glue, claims, checks, models),
    ``claims`` (claims as data, bootstrap intervals, verdicts), ``scorecard``, ``pipeline`` (jupytext +
    papermill: ``python -m helpers.pipeline``), ``timings`` (``book/timings.json``), ``student``,
    ``exercises``, ``install``, ``verify`` (re-attack every recorded model), ``gpu_check`` (``make
    gpu-check``), ``lock`` (``constraints.txt``), ``sweep`` (grids of runs on Ray).

Where code goes: if a second document could use it unchanged, the core; if it serves one document's
experiments, that document's package; if it is about the book (running, recording, teaching), the top level.
A notebook holds narrative, its parameters cell, calls and claims. Importing ``helpers`` does no work.
"""

__version__ = "0.1.0"
