"""Document 3 (BIPARO 2021: mixed l-inf/l2 adversarial training, capacity, robust overfitting, noise injection).

What only this document needs, on top of :mod:`helpers.core`:

- :mod:`.threat`: :class:`Threat` (the l-inf PGD, l2 PGD and l-inf FGSM attacks with their radii and steps),
  :func:`attacks_for` (named attack callables, EOT for randomized models), :func:`make_adversary` (natural,
  Madry-style, MAT-Rand and MAT-Max training after Araujo et al. 2020, and the document's final ``recipe``),
  :func:`step_schedule`.
- :mod:`.fitting`: :class:`Trainer` (train-or-load every network of the chapter with one procedure, through the
  run's cache) and :func:`fit_selected` (early stopping on robust validation accuracy, Rice et al. 2020, selected
  on validation data, never on the test set).
- :mod:`.grading`: :class:`Grader`, every accuracy the chapter reports, computed once per model: the document's
  attacks as it ran them and the strong suite (:mod:`helpers.core.suite`), with EOT and noise draws for
  randomized models; its tables next to the document's.
- :mod:`.report`: the numbers the prose cites, section by section, the document's own numbers and the claims'
  statistics; :mod:`.findings`: the numbers behind each claim, in words.
- :mod:`.parameters`: the chapter's parameter rules (:data:`PARAMETERS`, :func:`check_parameters`).
"""

from helpers.papers.matrand import findings
from helpers.papers.matrand.fitting import Trainer, build, fit_selected
from helpers.papers.matrand.grading import Grader, with_spread
from helpers.papers.matrand.parameters import PARAMETERS, check_parameters
from helpers.papers.matrand.report import (
    DOCUMENT,
    best_of_rest,
    glue,
    graded_numbers,
    noise_gains,
    overfit_curve,
    overfit_numbers,
    pair_mean,
    pair_min,
    parameter_counts,
    radii_around,
    rate_drops,
    recipe_gains,
    setup_numbers,
    sweep_numbers,
    table1_numbers,
    table2_numbers,
    table3_numbers,
    table4_numbers,
    table5_numbers,
    table6_numbers,
)
from helpers.papers.matrand.threat import (
    ATTACK_NAMES,
    LABELS,
    NORMS,
    TRAININGS,
    Threat,
    attacks_for,
    make_adversary,
    step_schedule,
)

__all__ = [
    "ATTACK_NAMES", "DOCUMENT", "LABELS", "NORMS", "PARAMETERS", "TRAININGS", "Grader", "Threat", "Trainer",
    "attacks_for", "best_of_rest", "build", "check_parameters", "findings", "fit_selected", "glue",
    "graded_numbers", "make_adversary", "noise_gains", "overfit_curve", "overfit_numbers", "pair_mean", "pair_min",
    "parameter_counts", "radii_around", "rate_drops", "recipe_gains", "setup_numbers", "step_schedule",
    "sweep_numbers", "table1_numbers", "table2_numbers", "table3_numbers", "table4_numbers", "table5_numbers",
    "table6_numbers", "with_spread",
]  # fmt: skip
