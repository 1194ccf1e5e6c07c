"""Images per second of our PGD against torchattacks' PGD and against the bound, on one model and batch.

The bound: a k-step PGD needs k forward+backward passes with respect to the input, plus one forward pass to
score the result; we time k+1 forward+backward passes (a slight over-count of the work, so the ratio
ours/bound is a lower bound on our efficiency). Printed as ratios; run on CPU and, when one is at hand, GPU:

    .venv/bin/python benchmarks/attack_throughput.py [--device cuda] [--batch 256] [--steps 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from helpers.core import attacks, models
from helpers.core.device import Throughput, channels_last, get_device, seed_everything


def _best_rate(fn, device: torch.device, n_images: int, repeats: int) -> float:
    fn()  # warm-up: allocator, kernels, cuDNN autotuning
    best = 0.0
    for _ in range(repeats):
        with Throughput(device) as t:
            fn()
            t.add(n_images)
        best = max(best, t.items_per_s)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--model", default="small_cnn")
    ap.add_argument("--dataset", default="cifar10", choices=["mnist", "cifar10"])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    dev = get_device(args.device)
    seed_everything(0)
    model = channels_last(models.build(args.model, args.dataset, args.width), dev).eval()
    shape = (1, 28, 28) if args.dataset == "mnist" else (3, 32, 32)
    x = channels_last(torch.rand(args.batch, *shape), dev)
    y = torch.randint(0, 10, (args.batch,), device=dev)
    eps, steps = 8 / 255, args.steps
    alpha = 2.5 * eps / steps

    def ours() -> None:
        attacks.pgd(model, x, y, eps, alpha, steps, random_start=True)

    def bound() -> None:
        for _ in range(steps + 1):
            xr = x.detach().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)

    rates = {
        "ours": _best_rate(ours, dev, args.batch, args.repeats),
        "bound": _best_rate(bound, dev, args.batch, args.repeats),
    }
    try:
        import torchattacks

        ta = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
        rates["torchattacks"] = _best_rate(lambda: ta(x, y), dev, args.batch, args.repeats)
    except ImportError:
        rates["torchattacks"] = float("nan")
    report = {
        "device": str(dev),
        "model": f"{args.model}(width={args.width}) on {args.dataset}",
        "batch": args.batch,
        "steps": steps,
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ours_over_torchattacks": round(rates["ours"] / rates["torchattacks"], 3),
        "ours_over_bound": round(rates["ours"] / rates["bound"], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
