"""Training throughput of the full profiles' architectures, and what one epoch of each full profile costs.

The full profiles keep the documents' networks (ResNet-18/34/50, shake-shake 26 2x96d, the photo-z
Inception). This times one optimizer step (forward, backward, update) at the full profiles' batch sizes,
clean and with a k-step l-inf PGD adversary in the loop (what adversarial training pays), with the
helpers' AMP (bf16 on CUDA) and channels_last. Random inputs: throughput does not depend on the pixels.

    .venv/bin/python benchmarks/full_scale.py [--device cuda] [--repeats 5] [--json out.json]

Prints a table of images/s and seconds per epoch for the training-set sizes of the full profiles.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
import torch.nn.functional as F

from helpers.core import attacks, models
from helpers.core.device import Throughput, autocast, channels_last, get_device, run_metadata, seed_everything
from helpers.papers.photoz.model import PhotoZInception

# name -> (builder, input shape, batch size, training images per epoch in the full profile)
CASES: dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...], int, int]] = {
    "resnet18 / MNIST (ch4)": (lambda: models.build("resnet18", "mnist", 64), (1, 28, 28), 200, 60_000),
    "resnet50 / MNIST (ch4)": (lambda: models.build("resnet50", "mnist", 64), (1, 28, 28), 200, 60_000),
    "shakeshake26 2x96d / MNIST (ch4)": (lambda: models.build("shakeshake26", "mnist", 96), (1, 28, 28), 200, 60_000),
    "resnet18 / CIFAR-10 (ch4, ch5)": (lambda: models.build("resnet18", "cifar10", 64), (3, 32, 32), 128, 50_000),
    "photo-z Inception / 64px ugriz (ch1)": (PhotoZInception, (5, 64, 64), 64, 100_000),
}


class _WithExtra(torch.nn.Module):
    """The photo-z network takes (images, ebv): bind a fixed E(B-V) so attacks see images -> logits."""

    def __init__(self, net: torch.nn.Module, batch: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("ebv", torch.full((batch, 1), 0.03))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.ebv[: len(x)])


def _rate(fn: Callable[[], None], dev: torch.device, n: int, repeats: int) -> float:
    fn()  # warm-up: allocator, cuDNN autotuning
    best = 0.0
    for _ in range(repeats):
        with Throughput(dev) as t:
            fn()
            t.add(n)
        best = max(best, t.items_per_s)
    return best


def measure(
    make: Callable[[], torch.nn.Module], shape: tuple[int, ...], batch: int, dev: torch.device, repeats: int, steps: int
) -> tuple[float, float, int]:
    """Images/s of a clean and of a PGD-``steps`` adversarial training step, and the parameter count."""
    net = make()
    model = channels_last(_WithExtra(net, batch) if shape[0] == 5 else net, dev).train()
    y = torch.randint(0, 180 if shape[0] == 5 else 10, (batch,), device=dev)
    x = channels_last(torch.rand(batch, *shape), dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x_in: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(dev):
            loss = F.cross_entropy(model(x_in), y)
        loss.backward()
        opt.step()

    def adversarial() -> None:
        with autocast(dev):
            x_adv = attacks.pgd(model, x, y, 8 / 255, 2 / 255, steps, random_start=True)
        step(x_adv)

    return (
        _rate(lambda: step(x), dev, batch, repeats),
        _rate(adversarial, dev, batch, repeats),
        models.count_parameters(net),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pgd-steps", type=int, default=10)
    ap.add_argument("--only", default=None, help="substring of the case names to run")
    ap.add_argument("--json", default=None, help="also write the report here")
    args = ap.parse_args()
    dev = get_device(args.device)
    seed_everything(0)
    rows = []
    for name, (make, shape, batch, n_epoch) in CASES.items():
        if args.only and args.only not in name:
            continue
        r_clean, r_adv, n_params = measure(make, shape, batch, dev, args.repeats, args.pgd_steps)
        rows.append(
            {
                "case": name,
                "parameters": n_params,
                "batch": batch,
                "clean_img_per_s": round(r_clean, 1),
                f"pgd{args.pgd_steps}_img_per_s": round(r_adv, 1),
                "clean_s_per_epoch": round(n_epoch / r_clean, 1),
                f"pgd{args.pgd_steps}_s_per_epoch": round(n_epoch / r_adv, 1),
                "epoch_images": n_epoch,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    meta = run_metadata(dev)
    report = {
        "device": str(dev),
        "device_name": meta.get("device_name"),
        "packages": meta.get("packages"),
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
