"""Chapter 5's measurements: the tables of Bardusco & Carreau (2021) and the numbers behind its claims.

Each function takes the chapter's networks (``{"base": ..., "AT": ..., "CURE": ...}``, eval mode) and CIFAR-10
test images (N, 3, 32, 32) float in [0, 1] with labels (N,), and returns a table (``pandas.DataFrame``) or the
per-image values a claim bootstraps over. Distances are l2 in pixel units, curvatures in 1/pixel units.

- Fig. 2 / 4: :func:`boundary_curvatures` (the fitted curvature of the decision boundary in two planes per
  image), :func:`curvature_summary`, :func:`flatter_counts`; Fig. 3: :func:`region_table`.
- Table 1: :func:`hessian_norms` (Hutchinson, seeded per batch), :func:`table1`.
- The strong suite against the report's DeepFool: :func:`deepfool_accuracy`, :func:`suite_table`.
- Table 2: :func:`natural_pairs`, :func:`adversarial_pairs`, :func:`connect_pairs`, :func:`table2`.
- The claims' "ours" sentences: :func:`curvature_text`, :func:`table1_text`, :func:`paths_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

from helpers.papers.cure.hessian import hessian_frobenius_sq, top_hessian_direction
from helpers.papers.cure.paths import Path, connect
from helpers.papers.cure.perturbations import predict, push_to_class
from helpers.papers.cure.planes import (
    adversarial_direction,
    boundary_curve,
    class_map,
    fit_boundary_curvature,
    orthonormal_direction,
    unit_orthogonal,
)

Pair = tuple[int, int, int]  # (index of the first image, index of the second, the class that joins them)


def boundary_curvatures(
    nets: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    grid: torch.Tensor,
    *,
    s_max: float,
    seed: int,
    power_iters: int = 10,
) -> tuple[pd.DataFrame, dict[str, tuple[torch.Tensor, torch.Tensor, Any]]]:
    """The decision boundary's curvature near each image ``x[k]`` (images all networks classify correctly).

    For each image and network, the plane's first axis ``u`` points to the network's runner-up adversarial
    example; the second is a random direction (plane ``"random"``, the report's Fig. 2; the same for all
    networks, seeded by ``seed + 100 + k``) or the input Hessian's leading eigenvector (``"principal"``, the
    CURE paper's cut; ``power_iters`` iterations seeded by ``seed + 200 + k``), made orthogonal to ``u``. Along
    each line ``t`` of ``grid`` the boundary is located for ``s`` in [0, ``s_max``] and a parabola fitted.

    Returns a DataFrame with one row per (image, network, plane): distance to the runner-up example, signed
    curvature (NaN when fewer than 3 boundary points), points fitted ``n``; and, for the first image's random
    plane, ``{network: (class map (len(grid), len(grid)), boundary s(t), QuadraticFit)}`` for the figure.
    """
    fits, maps = [], {}
    for k in range(len(x)):
        v_dir = orthonormal_direction(x[k], generator=torch.Generator().manual_seed(seed + 100 + k))
        for name, net in nets.items():
            u_dir, dist = adversarial_direction(net, x[k], int(y[k]))
            gen = torch.Generator().manual_seed(seed + 200 + k)
            w_dir, _ = top_hessian_direction(net, x[k : k + 1], y[k : k + 1], iters=power_iters, generator=gen)
            for plane, second in (("random", v_dir), ("principal", w_dir[0])):
                second = unit_orthogonal(second, u_dir)
                s_curve = boundary_curve(net, x[k], u_dir, second, grid, s_max=s_max)
                fit = fit_boundary_curvature(grid, s_curve)
                row = {"image": k, "network": name, "plane": plane, "distance": dist}
                fits.append({**row, "curvature": fit.curvature, "n": fit.n})
                if k == 0 and plane == "random":
                    maps[name] = (class_map(net, x[k], u_dir, second, grid, grid), s_curve, fit)
    return pd.DataFrame(fits), maps


def curvature_summary(curv: pd.DataFrame) -> pd.DataFrame:
    """Per network: median |curvature| in each plane, median distance to the runner-up example (random plane's
    rows) and the number of boundaries fitted (at least 3 points), from :func:`boundary_curvatures`' rows."""
    summary = (
        curv.assign(abs_curvature=curv.curvature.abs())
        .pivot_table(index="network", columns="plane", values="abs_curvature", aggfunc="median", sort=False)
        .rename(columns=lambda c: f"median |κ|, {c} plane")
    )
    summary["median distance to the runner-up example"] = (
        curv[curv.plane == "random"].groupby("network").distance.median()
    )
    summary["boundaries fitted"] = curv.groupby("network").n.agg(lambda n: int((n >= 3).sum()))
    return summary


def flatter_counts(curv: pd.DataFrame) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
    """Per-image pairing of the curvatures: medians over a handful of images can hide a coin flip.

    Returns the |curvature| table indexed by (plane, image) with one column per network, and for each plane and
    fine-tuned network ("AT", "CURE") the share "k/n" of images (fitted for both) where its boundary is flatter
    than base's.
    """
    kappa = curv.assign(k=curv.curvature.abs()).pivot_table(index=["plane", "image"], columns="network", values="k")
    flatter = {
        (plane, name): f"{int((kappa.loc[plane][name] < kappa.loc[plane]['base']).sum())}/"
        f"{int(kappa.loc[plane][[name, 'base']].notna().all(axis=1).sum())}"
        for plane in ("random", "principal")
        for name in ("AT", "CURE")
    }
    return kappa, flatter


def region_table(maps: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Per network, from its class map of a plane centred on an image (odd grid side): the share of the plane
    in the centre's class and the number of classes seen (the report's Fig. 3)."""
    rows = []
    for name, grid in maps.items():
        centre = int(grid[grid.shape[0] // 2, grid.shape[1] // 2])
        rows.append(
            {
                "network": name,
                "share of the plane in the image's class": float((grid == centre).float().mean()),
                "classes seen": int(grid.unique().numel()),
            }
        )
    return pd.DataFrame(rows).set_index("network")


def hessian_norms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, samples: int, seed: int, batch_size: int = 50
) -> torch.Tensor:
    """Hutchinson estimates of ``||H||_F^2`` per image (N,) on the CPU, ``samples`` Rademacher probes each; the
    batch starting at image ``i`` draws its probes from a generator seeded with ``seed + i``."""
    return torch.cat(
        [
            hessian_frobenius_sq(
                model,
                x[i : i + batch_size],
                y[i : i + batch_size],
                samples=samples,
                generator=torch.Generator().manual_seed(seed + i),
            )
            for i in range(0, len(x), batch_size)
        ]
    ).cpu()


def table1(per_image: Mapping[str, Mapping[str, torch.Tensor]]) -> pd.DataFrame:
    """The report's Table 1 per network from ``{network: {"hessian": (N,), "perturbation": (N,)}}``: mean and
    median ``||H||_F^2``, mean and median minimal perturbation over the finite ones, DeepFool's failures."""
    rows = []
    for name, d in per_image.items():
        hs, norms = d["hessian"], d["perturbation"]
        finite = norms[torch.isfinite(norms)]
        rows.append(
            {
                "network": name,
                "‖H‖_F² (mean)": float(hs.mean()),
                "‖H‖_F² (median)": float(hs.median()),
                "perturbation size (mean)": float(finite.mean()),
                "perturbation size (median)": float(finite.median()),
                "DeepFool failures": int((~torch.isfinite(norms)).sum()),
            }
        )
    return pd.DataFrame(rows).set_index("network")


def deepfool_accuracy(clean_correct: torch.Tensor, norms: torch.Tensor, eps: float) -> float:
    """The report's robustness read at radius ``eps``: the share of images classified correctly
    (``clean_correct`` > 0, (N,)) whose minimal DeepFool perturbation ``norms`` (N,) exceeds ``eps``."""
    return float(((clean_correct > 0) & (norms > eps)).float().mean())


def suite_table(
    grades: Mapping[str, Any], adv_set_acc: Mapping[str, float], deepfool_acc: Mapping[str, float], eps: float
) -> pd.DataFrame:
    """Per network: clean accuracy, the report's two measures (adversarial-set accuracy, DeepFool at ``eps``),
    the suite's robust accuracy at ``eps`` (:func:`helpers.core.suite.grade` results), their gap in points and
    each suite member's accuracy alone."""
    return pd.DataFrame(
        [
            {
                "network": name,
                "clean accuracy": g.clean.acc,
                "adversarial set (report; all test images, unbounded, crafted on base)": adv_set_acc[name],
                f"DeepFool at ε={eps:g} (report's attack)": deepfool_acc[name],
                f"suite at ε={eps:g}": g.robust_accuracy,
                "gap DeepFool − suite (points)": 100 * (deepfool_acc[name] - g.robust_accuracy),
                **{f"{m} alone": v.acc for m, v in g.members.items()},
                "attack (suite)": g.suite.name,
            }
            for name, g in grades.items()
        ]
    ).set_index("network")


def natural_pairs(
    pred: torch.Tensor, y: torch.Tensor, n_classes: int, n: int, generator: torch.Generator
) -> list[Pair]:
    """Up to ``n`` pairs of correctly classified images (``pred == y``, both (N,) on the CPU) of one class, the
    classes visited in a random order (repeated until ``n`` pairs or none left), drawn from ``generator``."""
    correct = (pred == y).nonzero().flatten()
    pairs: list[Pair] = []
    for c in torch.randperm(n_classes, generator=generator).tolist() * n:
        members = correct[y[correct] == c]
        if len(members) >= 2 and len(pairs) < n:
            a, b = members[torch.randperm(len(members), generator=generator)[:2]].tolist()
            pairs.append((a, b, c))
    return pairs


def adversarial_pairs(
    pred: torch.Tensor, y: torch.Tensor, n_classes: int, n: int, generator: torch.Generator
) -> list[Pair]:
    """``n`` candidate adversarial pairs: two correctly classified images of two classes and a third class to
    push both into. Continues ``generator``'s draws after :func:`natural_pairs` in the chapter."""
    correct = (pred == y).nonzero().flatten()
    pairs: list[Pair] = []
    while len(pairs) < n:
        t_cls, ca, cb = torch.randperm(n_classes, generator=generator)[:3].tolist()
        pa, pb = correct[y[correct] == ca], correct[y[correct] == cb]
        if len(pa) and len(pb):
            a = int(pa[torch.randint(len(pa), (1,), generator=generator)])
            b = int(pb[torch.randint(len(pb), (1,), generator=generator)])
            pairs.append((a, b, t_cls))
    return pairs


def connect_pairs(
    model: nn.Module,
    x: torch.Tensor,
    pairs: Sequence[Pair],
    classes: Sequence[str],
    *,
    want: int,
    push: float | None = None,
    n_check: int,
    max_rounds: int,
    overshoot: float,
) -> tuple[pd.DataFrame, list[Path]]:
    """Connect the first ``want`` usable pairs of images of ``x`` inside one class region of ``model``.

    Natural pairs (``push=None``) are connected as they are; adversarial pairs are first pushed into the joining
    class by targeted DeepFool with overshoot ``push`` (up to 500 steps within [0, 1]), and skipped when a push
    falls short. The path search (:func:`helpers.papers.cure.paths.connect`) checks ``n_check`` points per
    segment, runs at most ``max_rounds`` rounds and pushes midpoints ``overshoot`` past the boundary.

    Returns one row per path (class, points, normalized distance, pushes, valid, the endpoints' l2 distance)
    and the paths.
    """
    rows, paths = [], []
    for a, b, c in pairs:
        if len(paths) == want:
            break
        ends = x[[a, b]]
        if push is not None:
            target = torch.tensor([c, c], device=x.device)
            ends = push_to_class(model, ends, target, overshoot=push, max_iter=500)
            if not bool((predict(model, ends) == target).all()):
                continue
        path = connect(model, ends[0], ends[1], c, n_check=n_check, max_rounds=max_rounds, overshoot=overshoot)
        paths.append(path)
        rows.append(
            {
                "class": classes[c],
                "points": path.n_points,
                "normalized distance": path.max_deviation,
                "pushes": path.pushes,
                "valid": path.valid,
                "length": float((ends[1] - ends[0]).norm()),
            }
        )
    return pd.DataFrame(rows), paths


def mean_sd(s: pd.Series, fmt: str) -> str:
    """``"mean ± sd"`` of a column (population sd), each formatted with ``fmt`` (e.g. ``"{:.1f}"``)."""
    return f"{fmt.format(s.mean())} ± {fmt.format(s.std(ddof=0))}"


def table2(nat: pd.DataFrame, adv: pd.DataFrame) -> pd.DataFrame:
    """The report's Table 2 from :func:`connect_pairs`' rows for natural and adversarial pairs."""
    return pd.DataFrame(
        {
            "pairs": [len(nat), len(adv)],
            "number of points": [mean_sd(nat.points, "{:.1f}"), mean_sd(adv.points, "{:.1f}")],
            "normalized distance": [
                mean_sd(nat["normalized distance"], "{:.2e}"),
                mean_sd(adv["normalized distance"], "{:.2e}"),
            ],
            "valid paths": [int(nat.valid.sum()), int(adv.valid.sum())],
            "straight segment suffices": [int((nat.points == 2).sum()), int((adv.points == 2).sum())],
        },
        index=["natural", "adversarial"],
    )


def curvature_text(summary: pd.DataFrame, flatter: Mapping[tuple[str, str], str], n_images: int) -> str:
    """The curvature claims' numbers in words, from :func:`curvature_summary` and :func:`flatter_counts`."""
    k, kp = summary["median |κ|, random plane"], summary["median |κ|, principal plane"]
    return (
        f"median |κ| over {n_images} images, adversarial x random plane: base {k['base']:.3g}, "
        f"AT {k['AT']:.3g}, CURE {k['CURE']:.3g} (adversarial x highest-curvature plane: base "
        f"{kp['base']:.3g}, AT {kp['AT']:.3g}, CURE {kp['CURE']:.3g}); flatter than base on "
        f"AT {flatter['random', 'AT']} and CURE {flatter['random', 'CURE']} images (random plane), "
        f"AT {flatter['principal', 'AT']} and CURE {flatter['principal', 'CURE']} (principal plane)"
    )


def table1_text(hess: Mapping[str, torch.Tensor], pert: Mapping[str, torch.Tensor]) -> str:
    """Table 1's claims' numbers in words: the means of ``||H||_F^2`` and of the perturbation per network."""
    n = len(next(iter(hess.values())))
    text = f"{n} images, means: ‖H‖_F² " + ", ".join(f"{name} {float(h.mean()):.3g}" for name, h in hess.items())
    return text + "; perturbation " + ", ".join(f"{name} {float(p.mean()):.3f}" for name, p in pert.items())


def paths_text(nat: pd.DataFrame, adv: pd.DataFrame) -> str:
    """Table 2's claims' numbers in words, from :func:`connect_pairs`' rows."""
    return (
        f"natural ({len(nat)} pairs): {mean_sd(nat.points, '{:.1f}')} points, "
        f"{mean_sd(nat['normalized distance'], '{:.1e}')}, largest {nat['normalized distance'].max():.1e}; "
        f"adversarial ({len(adv)} pairs): {mean_sd(adv.points, '{:.1f}')} points, "
        f"{mean_sd(adv['normalized distance'], '{:.1e}')}; valid paths {int(nat.valid.sum())} and "
        f"{int(adv.valid.sum())}"
    )


def suite_text(grades: Mapping[str, Any], deepfool_acc: Mapping[str, float], *, suite: str, n_images: int) -> str:
    """The suite claim's numbers in words: robust and clean accuracies, the images each fine-tuned network keeps
    and loses against base (paired), and the report's DeepFool read at the same radius."""
    robust = {name: g.robust.correct for name, g in grades.items()}
    kept = {name: int(((robust[name] > 0) & (robust["base"] == 0)).sum()) for name in ("AT", "CURE")}
    lost = {name: int(((robust[name] == 0) & (robust["base"] > 0)).sum()) for name in ("AT", "CURE")}
    return (
        f"{suite} on {n_images} images: base {grades['base'].robust_accuracy:.1%}, "
        f"AT {grades['AT'].robust_accuracy:.1%}, CURE {grades['CURE'].robust_accuracy:.1%} (images kept / lost "
        f"against base: AT {kept['AT']}/{lost['AT']}, CURE {kept['CURE']}/{lost['CURE']}); clean "
        + ", ".join(f"{n} {g.clean.acc:.1%}" for n, g in grades.items())
        + f"; the report's DeepFool at the same radius: base {deepfool_acc['base']:.1%}, AT {deepfool_acc['AT']:.1%}, "
        f"CURE {deepfool_acc['CURE']:.1%}"
    )


def hue_text(flip_rate: Sequence[float], all_rate: float, n_images: int, example: Mapping[str, Any] | None) -> str:
    """The colour claim's numbers in words: the share of images some rotation fools, per network (base, AT,
    CURE) and all three at once, and the example of Fig. 9 if there is one."""
    text = (
        f"of {n_images} images: base {flip_rate[0]:.0%}, AT {flip_rate[1]:.0%}, CURE {flip_rate[2]:.0%}, "
        f"all three at once {all_rate:.0%}"
    )
    if example:
        text += f"; example at {example['angle']:+.0f}°: {example['before']} → {example['after']}"
    return text
