"""Geometry and topology of a classifier's decision regions in input space, in one namespace.

The tools of chapter 5, after three papers by Fawzi, Moosavi-Dezfooli et al. and the report that reproduces
them (Bardusco & Carreau 2021), live in one module per concern; this module gathers their public names so that
the chapter (and its readers) can write ``G.deepfool``, ``G.connect``...:

- :mod:`~helpers.papers.cure.perturbations`: minimal l2 perturbations (DeepFool, its targeted form, the report's
  runner-up recipe, bisection refinement and the perturbation's norm).
- :mod:`~helpers.papers.cure.hessian`: Hutchinson's estimate of the input Hessian's squared Frobenius norm, and
  its leading eigenvector by power iteration.
- :mod:`~helpers.papers.cure.planes`: class maps in 2-D planes through an image, boundary curves, their
  quadratic fit and curvature.
- :mod:`~helpers.papers.cure.paths`: the path-connectedness algorithm of Fawzi et al. (2018), path statistics.
- :mod:`~helpers.papers.cure.hue`: the hue-rotation attack.

Conventions (as in :mod:`helpers.core.attacks`): images are (B, C, H, W) float in [0, 1] (normalisation is a
model layer), distances are l2 in those pixel units, gradients come from ``torch.autograd.grad`` on the input
only, inputs are never modified, and the model's mode (eval for all of this) is the caller's business. Every
attack takes ``clip`` and returns a tensor; geometry in a plane is that of the classifier on R^d (not clipped).
"""

from __future__ import annotations

from helpers.papers.cure.hessian import hessian_frobenius_sq, rademacher, top_hessian_direction
from helpers.papers.cure.hue import hue_attack, hue_flips, hue_matrix, hue_rotate, smallest_hue_angle
from helpers.papers.cure.paths import Path, connect, deviation_from_segment, path_pca, resample_path, segment_labels
from helpers.papers.cure.perturbations import (
    deepfool,
    minimal_perturbation,
    minimal_perturbation_norm,
    predict,
    push_to_class,
    runner_up_attack,
)
from helpers.papers.cure.planes import (
    QuadraticFit,
    adversarial_direction,
    boundary_curve,
    class_map,
    fit_boundary_curvature,
    orthonormal_direction,
    plane_points,
    unit_orthogonal,
)

__all__ = [
    "Path", "QuadraticFit", "adversarial_direction", "boundary_curve", "class_map", "connect", "deepfool",
    "deviation_from_segment", "fit_boundary_curvature", "hessian_frobenius_sq", "hue_attack", "hue_flips",
    "hue_matrix", "hue_rotate", "minimal_perturbation", "minimal_perturbation_norm", "orthonormal_direction",
    "path_pca", "plane_points", "predict", "push_to_class", "rademacher", "resample_path", "runner_up_attack",
    "segment_labels", "smallest_hue_angle", "top_hessian_direction", "unit_orthogonal",
]  # fmt: skip
