"""The frontier: what each chapter's main model reaches at a profile against its document, and how well its
training step uses the CPU (issue 18).

    .venv/bin/python benchmarks/frontier.py [--results results]

Reads the chapters' ``results/<chapter>.json`` (a run at the profile to judge, ``small`` after ``make test``)
and prints, per chapter's main model:

- the profile and the chapter's wall time;
- its clean accuracy and its robust accuracy under the document's own attack (like for like; where the chapter
  does not record that attack, the nearest recorded one, named), each beside the document's number and as a
  ratio ours / document (issue 18's goal for chapters 2 and 3: at least 0.8 on both), and the strong suite's
  robust accuracy beside them; chapter 1 compares sigma_MAD (lower is better: the ratio is document / ours);
- the training step's throughput: images per second of one forward + backward + SGD step of the model's own
  architecture (rebuilt from the chapter's recorded checkpoint) at the profile's batch size, its FLOP rate
  (``torch.utils.flop_counter``) and that rate as a fraction of a single 3x3 convolution's measured rate on the
  same machine (fp32, 64 -> 64 channels, 32 x 32, forward + backward);
- the speed-up of that step under bf16 autocast (fp32 time / bf16 time) where the CPU's probe says bf16 runs
  faster (``helpers.core.device.cpu_bf16_speedup``): per network, since small convolutions can lose.

The document values are the documents' own (``../shared/seeds``), with their table or section.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from helpers.core import models
from helpers.core.data import cache_dir

Spec = dict[str, Any]


def _model(results: dict, name: str) -> dict:
    return next(m for m in results["models"] if m["name"] == name)


# Per chapter: the main model, how to read ours from the results JSON, the document's numbers and their source.
MAIN: dict[str, Spec] = {
    "01_photoz": {
        "model": "Iref (the photo-z Inception)",
        "metric": "sigma_MAD x1e-3, clean test galaxies (lower is better)",
        "ours": lambda r: {"clean": float(r["numbers"]["smad_clean"])},
        "document": {"clean": 11.0},
        "source": "document 1, Table 1 (Iref, clean)",
        "lower_is_better": True,
        "batch": None,  # no recorded checkpoint: the chapter records sigma_MAD, not a graded classifier
    },
    "02_curriculum_rse": {
        "model": "BigNet, PGD training ε=0.03 (Table 2)",
        "metric": "CIFAR-10 accuracy",
        "ours": lambda r: {
            "clean": _model(r, "BigNet, PGD training ε=0.03 (Table 2)")["clean_accuracy"],
            "robust": _model(r, "BigNet, PGD training ε=0.03 (Table 2)")["members"]["pgd"],
            "suite": _model(r, "BigNet, PGD training ε=0.03 (Table 2)")["robust_accuracy"],
        },
        "robust_attack": "PGD-20 at ε=0.03 (the suite's PGD member; the document's PGD, ε=0.03, step 0.008, is no "
        "stronger, so the ratio errs low)",
        "document": {"clean": 0.5332, "robust": 0.3115},
        "source": "document 2, Table 2 (BigNet after 10 epochs of PGD training)",
        "batch": ("02_curriculum_rse", "batch_size"),
    },
    "03_matrand_wrn": {
        "model": "BasicNet, l-inf PGD training",
        "metric": "CIFAR-10 accuracy",
        "ours": lambda r: {
            "clean": _model(r, "BasicNet, l-inf PGD training")["clean_accuracy"],
            "robust": _model(r, "BasicNet, l-inf PGD training")["document_accuracy"],
            "suite": _model(r, "BasicNet, l-inf PGD training")["robust_accuracy"],
        },
        "robust_attack": "the document's l-inf PGD at ε=0.03 (as the chapter runs it)",
        "document": {"clean": 0.407, "robust": 0.2746},
        "source": "document 3, Table 1 (BasicNet, l-inf PGD training, 40 epochs)",
        "batch": ("03_matrand_wrn", "batch_size"),
    },
    "04_regnet": {
        "model": "RegNet on CIFAR-10 (ResNet-18 encoder)",
        "metric": "CIFAR-10 clean accuracy",
        "ours": lambda r: {"clean": float(r["numbers"]["cifar_clean_reg"])},
        "document": {"clean": 0.86},
        "source": "document 4, Sec. 3.3.3, Fig. 3.9 ('around 86%' at ε = 0)",
        "checkpoint_model": "RegNet muT=70 MNIST",  # the chapter's recorded (MNIST) model, for the step's rate
        "batch": ("04_regnet", "batch_size"),
    },
    "05_cure_topology": {
        "model": "base resnet18",
        "metric": "clean accuracy (ours CIFAR-10; the report's Tiny ImageNet, 200 classes: not like for like)",
        "ours": lambda r: {"clean": float(r["numbers"]["acc_base"])},
        "document": {"clean": 0.37},
        "source": "document 5, Sec. 2 ('about 37% accuracy on the validation set', Tiny ImageNet)",
        "checkpoint_model": "base resnet18",
        "batch": ("05_cure_topology", "batch_size"),
    },
}


def conv_rate(seconds: float = 2.0) -> float:
    """FLOP/s of one fp32 3x3 convolution (64 -> 64 channels, 32 x 32, batch 128), forward + backward."""
    x = torch.randn(128, 64, 32, 32, requires_grad=True)
    w = torch.randn(64, 64, 3, 3, requires_grad=True)
    flops = 3 * 2 * 128 * 64 * 32 * 32 * 64 * 9  # forward, and the two gradients (input, weight)
    return flops * _repeat(lambda: torch.autograd.grad(F.conv2d(x, w, padding=1).sum(), (x, w)), seconds)


def _repeat(step: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``step`` over about ``seconds`` (after one warm-up call)."""
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def training_step_rate(model: torch.nn.Module, shape: tuple[int, ...], batch: int, *, bf16: bool) -> dict:
    """Images/s and FLOP/s of one SGD step of ``model`` on random inputs of ``shape`` (C, H, W)."""
    model = model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, *shape), torch.randint(0, 2, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
            loss = F.cross_entropy(out.float(), y % out.shape[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    rate = _repeat(step, 2.0)
    return {"images_per_s": rate * batch, "flops_per_s": rate * counter.get_total_flops()}


def _params(chapter: str, profile: str, name: str) -> Any:
    """A parameter of ``chapter`` at ``profile``: the profile's file, else the notebook's parameters cell."""
    import yaml

    from helpers.sweep.grid import notebook_parameters

    text = (Path("params") / profile / f"{chapter}.yaml").read_text(encoding="utf-8")
    values = {**notebook_parameters(Path("notebooks") / f"{chapter}.py"), **(yaml.safe_load(text) or {})}
    return values[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.environ.get("HELPERS_RESULTS", "results"))
    args = parser.parse_args()
    torch.manual_seed(0)
    from helpers.core.device import cpu_bf16_speedup

    bf16 = cpu_bf16_speedup() >= 1.2
    conv = conv_rate()
    threads = torch.get_num_threads()
    print(f"single 3x3 convolution, fp32, forward + backward: {conv / 1e9:.1f} GFLOP/s on {threads} threads")
    for chapter, spec in MAIN.items():
        path = Path(args.results) / f"{chapter}.json"
        if not path.exists():
            print(f"\n{chapter}: no {path} (run the chapter first)")
            continue
        res = json.loads(path.read_text(encoding="utf-8"))
        ours, doc = spec["ours"](res), spec["document"]
        print(f"\n{chapter} ({res['profile']}, {res['wall_time_s'] / 60:.1f} min): {spec['model']}; {spec['metric']}")
        print(f"  document: {spec['source']}")
        for key in ("clean", "robust"):
            if key in doc:
                ratio = doc[key] / ours[key] if spec.get("lower_is_better") else ours[key] / doc[key]
                label = f"robust ({spec['robust_attack']})" if key == "robust" else key
                print(f"  {label}: ours {ours[key]:.4g}, document {doc[key]:.4g}, ratio {ratio:.2f}")
        if "suite" in ours:
            print(f"  robust under the strong suite (the number that stands for robustness): {ours['suite']:.3f}")
        if spec["batch"] is None:
            print("  training step: not measured (no recorded checkpoint)")
            continue
        entry = _model(res, spec.get("checkpoint_model", spec["model"]))
        model = models.load(cache_dir() / entry["checkpoint"])
        batch = int(_params(spec["batch"][0], res["profile"], spec["batch"][1]))
        shape = (1, 28, 28) if entry["dataset"] == "mnist" else (3, 32, 32)
        fp32 = training_step_rate(model, shape, batch, bf16=False)
        line = (
            f"  training step of {entry['name']!r} (batch {batch}): {fp32['images_per_s']:,.0f} images/s fp32, "
            f"{fp32['flops_per_s'] / 1e9:.1f} GFLOP/s = {fp32['flops_per_s'] / conv:.2f} of the convolution's rate"
        )
        if bf16:
            low = training_step_rate(model, shape, batch, bf16=True)
            line += f"; bf16 autocast speed-up {low['images_per_s'] / fp32['images_per_s']:.2f}x"
        print(line)


if __name__ == "__main__":
    main()
