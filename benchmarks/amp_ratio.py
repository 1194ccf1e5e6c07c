"""Training-step time in fp32 against bf16 autocast, on the CIFAR-10 networks the chapters train (issue 18).

One plain SGD step (forward, cross-entropy, backward, update) on a batch of CIFAR-sized inputs, timed as the
median of ``--repeats`` steps after warm-up, once in fp32 and once under :func:`helpers.core.device.autocast` with
``HELPERS_AMP=1``. Printed as images per second and the fp32/bf16 step-time ratio (above 1: bf16 pays), with
the cached probe's ratio beside it (the one ``autocast`` decides with):

    .venv/bin/python benchmarks/amp_ratio.py [--batch 128] [--repeats 5] [--threads 2]

Run it on an idle machine: the ratio is meaningless when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from helpers.core import device as D
from helpers.core import models

NETS = {  # the chapters' main CIFAR-10 networks at their small/medium widths
    "BasicNet (ch3)": lambda: models.build("basicnet", "cifar10", 32),
    "ResNet20 (ch3)": lambda: models.build("resnet20", "cifar10", 16),
    "ResNet-18 w16 (ch3, ch5)": lambda: models.build("resnet18", "cifar10", 16),
}


def step_seconds(net: torch.nn.Module, batch: int, repeats: int, amp: bool) -> float:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(batch, 3, 32, 32, generator=gen), torch.randint(0, 10, (batch,), generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    net.train()
    times = []
    for i in range(repeats + 2):  # two warm-up steps
        t0 = time.perf_counter()
        with D.autocast("cpu", enabled=amp):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["HELPERS_AMP"] = "1"  # force bf16 on for the bf16 timing; fp32 runs with enabled=False
    print(f"CPU: {D.cpu_model()}, {torch.get_num_threads()} threads, batch {args.batch}")
    for name, make in NETS.items():
        torch.manual_seed(0)
        fp32 = step_seconds(make(), args.batch, args.repeats, amp=False)
        torch.manual_seed(0)
        bf16 = step_seconds(make(), args.batch, args.repeats, amp=True)
        print(
            f"{name:26s} fp32 {args.batch / fp32:7.0f} img/s   bf16 {args.batch / bf16:7.0f} img/s   "
            f"fp32/bf16 step-time ratio {fp32 / bf16:.2f}"
        )
    del os.environ["HELPERS_AMP"]
    print(
        f"probe (small conv net, cached): fp32/bf16 = {D.cpu_bf16_speedup(refresh=True):.2f}; "
        f"autocast uses bf16 on this CPU: {D.amp_enabled('cpu')}"
    )


if __name__ == "__main__":
    main()
