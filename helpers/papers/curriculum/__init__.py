"""Document 2, *Training robust neural network* (curriculum adversarial training, capacity, randomized defences,
NES): what only this document needs, on top of :mod:`helpers.core`.

- :mod:`.schedule`: the curriculum (:func:`schedule`) and the PGD adversaries of adversarial training
  (:func:`curriculum_adversary`, :func:`fixed_adversary`).
- :mod:`.defenses`: PNI (:func:`to_pni`), RSE (:func:`add_rse`, :class:`Ensemble`), spectral normalization
  and the learnable low-rank input projection (:class:`LowRankInput`).
- :mod:`.nets`: the chapter's networks, registered as the architecture "curriculum" (:func:`build`), and
  the optimisers (:func:`make_optimizer`).
- :mod:`.rank`: Roy & Vetterli's effective rank and the principal directions (Sec. 5).
- :mod:`.parameters`: the chapter's parameter rules (:data:`PARAMETERS`, :func:`check_parameters`).
- :mod:`.study`: the chapter's experiment bound to a run: data, train-or-load of every configuration, and
  every score once (:class:`Study`); :mod:`.tables`, :mod:`.figures` and :mod:`.report` turn the scores into
  the document's tables, its figures and the numbers the prose cites.

Images are (B, 3, 32, 32) in [0, 1]; every radius and step is in [0, 1] pixel units.
"""

from __future__ import annotations

from helpers.papers.curriculum import figures, report
from helpers.papers.curriculum.defenses import (
    Ensemble,
    LowRankInput,
    add_rse,
    has_rse,
    spectral_normalize,
    to_pni,
)
from helpers.papers.curriculum.nets import ARCHS, DEFENSES, OPTIMIZERS, SCHEMES, build, make_optimizer, parameter_table
from helpers.papers.curriculum.parameters import PARAMETERS, check_parameters
from helpers.papers.curriculum.rank import effective_rank, principal_directions
from helpers.papers.curriculum.schedule import curriculum_adversary, fixed_adversary, schedule
from helpers.papers.curriculum.study import Study, aggregated_score, fmt_list, model_key, se_difference
from helpers.papers.curriculum.tables import (
    NES,
    Table2,
    attacked_table,
    document_sizes,
    nes_attack,
    overstatement,
    pm,
    radius_curves,
    schedule_table,
    table2,
)

__all__ = [
    "ARCHS",
    "DEFENSES",
    "NES",
    "OPTIMIZERS",
    "PARAMETERS",
    "SCHEMES",
    "Ensemble",
    "LowRankInput",
    "Study",
    "Table2",
    "add_rse",
    "aggregated_score",
    "attacked_table",
    "build",
    "check_parameters",
    "curriculum_adversary",
    "document_sizes",
    "effective_rank",
    "figures",
    "fixed_adversary",
    "fmt_list",
    "has_rse",
    "make_optimizer",
    "model_key",
    "nes_attack",
    "overstatement",
    "parameter_table",
    "pm",
    "principal_directions",
    "radius_curves",
    "report",
    "schedule",
    "schedule_table",
    "se_difference",
    "spectral_normalize",
    "table2",
    "to_pni",
]
