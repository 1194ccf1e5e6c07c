"""Device choice, seeding, mixed precision, memory layout, throughput timing and run metadata.

Every chapter goes through these so that the same notebook runs on a laptop CPU, Apple silicon or a CUDA GPU
without edits: nothing here calls ``.cuda()`` and nothing runs at import.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

_DEVICES = ("cuda", "mps", "cpu")


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the compute device: ``HELPERS_DEVICE`` (or ``prefer``) if set, else cuda, then mps, then cpu.

    ``prefer``/``HELPERS_DEVICE`` may be ``"auto"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``;
    asking for an accelerator that is absent raises ValueError rather than silently running on the CPU.
    """
    choice = (prefer or os.environ.get("HELPERS_DEVICE") or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = choice.split(":")[0]
    if kind not in _DEVICES:
        raise ValueError(f"device must be one of auto, cuda[:N], mps, cpu (got {choice!r})")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch.cuda.is_available() is False")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was requested but torch.backends.mps.is_available() is False")
    return torch.device(choice)


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded with ``seed``.

    With ``deterministic`` the cuDNN autotuner is off and deterministic kernels are preferred (warn only),
    so the same seed and profile give the same numbers on the CPU.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 -- third-party code draws from the legacy global RNG
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        # cuBLAS needs this for deterministic matmuls; harmless elsewhere.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


AMP_ENV = "HELPERS_AMP"
AMP_MIN_SPEEDUP = 1.2  # CPU bf16 is used only where the probe measures at least this step-time ratio


def _probe_step(dtype: torch.dtype | None, steps: int) -> float:
    """Seconds per training step of a small conv net on the CPU, fp32 (``dtype=None``) or bf16 autocast."""
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, padding=1),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, 10),
    )  # fmt: skip
    x, y = torch.rand(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    ctx = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype else contextlib.nullcontext
    times = []
    for i in range(steps + 2):  # two warm-up steps (oneDNN picks its kernels on the first calls)
        t0 = time.perf_counter()
        with ctx():
            loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def cpu_bf16_speedup(*, steps: int = 6, refresh: bool = False) -> float:
    """fp32 / bf16-autocast step-time ratio of a small conv net on this CPU, measured once and cached.

    Above 1 the CPU runs bf16 faster (recent x86 with AVX-512 BF16 or AMX, some ARM cores); laptops
    without bf16 units emulate it and measure well below 1. The result is cached per CPU model, thread
    count and torch version under ``HELPERS_CACHE/probes/`` so a chapter pays the ~1 s probe once.
    """
    import json
    import re

    from helpers.core.io import write_json

    name = re.sub(r"[^A-Za-z0-9]+", "-", cpu_model() or "cpu").strip("-")[:60]
    from helpers.core.data import cache_dir

    path = cache_dir() / "probes" / f"bf16-{name}-{torch.get_num_threads()}t-torch{torch.__version__}.json"
    if path.exists() and not refresh:
        return float(json.loads(path.read_text())["speedup"])
    try:
        fp32, bf16 = _probe_step(None, steps), _probe_step(torch.bfloat16, steps)
        speedup = fp32 / bf16
    except RuntimeError:  # no CPU bf16 autocast in this build
        fp32, bf16, speedup = float("nan"), float("nan"), 0.0
    write_json(path, {"speedup": speedup, "fp32_step_s": fp32, "bf16_step_s": bf16, "threads": torch.get_num_threads()})
    return speedup


def amp_enabled(device: torch.device | str) -> bool:
    """Whether :func:`autocast` turns bf16 on for ``device``: ``HELPERS_AMP=0`` never, ``=1`` always;
    otherwise on CUDA, and on the CPU where :func:`cpu_bf16_speedup` is at least ``AMP_MIN_SPEEDUP``."""
    env = os.environ.get(AMP_ENV, "").strip()
    if env not in ("", "0", "1"):
        raise ValueError(f"{AMP_ENV} must be 0 (off), 1 (on) or unset (probe), got {env!r}")
    kind = torch.device(device).type
    if env == "0" or kind not in ("cuda", "cpu"):
        return False
    if env == "1" or kind == "cuda":
        return True
    return cpu_bf16_speedup() >= AMP_MIN_SPEEDUP


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast where it pays (see :func:`amp_enabled`: CUDA, and CPUs the probe finds faster in bf16);
    a no-op elsewhere or with ``enabled=False``. Callers opt in per use (``fit(amp=True)``); attacks and
    grading stay in fp32 unless asked, so reduced precision never weakens an attack's gradients by default."""
    device = torch.device(device)
    if enabled and amp_enabled(device):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def channels_last(obj: Any, device: torch.device | str) -> Any:
    """Move a module or 4-D tensor to ``device``, in channels_last layout on CUDA (faster convolutions)."""
    device = torch.device(device)
    obj = obj.to(device)
    if device.type == "cuda":
        if isinstance(obj, torch.nn.Module) or (isinstance(obj, torch.Tensor) and obj.dim() == 4):
            obj = obj.to(memory_format=torch.channels_last)
    return obj


def synchronize(device: torch.device | str) -> None:
    """Wait for queued kernels so that wall-clock timings mean something on asynchronous devices."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass
class Throughput:
    """Wall-clock timer with an item counter: ``with Throughput(device) as t: ...; t.add(n)``.

    ``items_per_s`` is what the benchmarks and the run banner report.
    """

    device: torch.device | str = "cpu"
    items: int = 0
    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> Throughput:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._start

    def add(self, n: int) -> None:
        self.items += int(n)

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# Files the pipeline itself rewrites while chapters run: changes to them do not make a run's code "dirty".
PIPELINE_OUTPUTS = ("book/timings.json",)


def git_revision(path: str | os.PathLike[str] | None = None) -> str | None:
    """The checkout's commit, 12 hex digits, with ``-dirty`` when tracked files other than the pipeline's own
    records (:data:`PIPELINE_OUTPUTS`) have local changes; None outside git."""
    cwd = Path(path) if path else Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        rev = git("rev-parse", "--short=12", "HEAD")
        top = Path(git("rev-parse", "--show-toplevel"))
        excluded = [f":(exclude){top / p}" for p in PIPELINE_OUTPUTS]
        changed = git("status", "--porcelain", "--untracked-files=no", "--", str(top), *excluded)
    except (OSError, subprocess.SubprocessError):
        return None
    if not rev:
        return None
    return f"{rev}-dirty" if changed else rev


def run_metadata(device: torch.device | str | None = None) -> dict[str, Any]:
    """Versions, platform, device and git revision: what a reader needs to reproduce a number."""
    device = torch.device(device) if device is not None else get_device()
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
        "git_revision": git_revision(),
        "packages": {
            name: _version(name)
            for name in (
                "torch",
                "torchvision",
                "numpy",
                "galsim",
                "matplotlib",
                "seaborn",
                "papermill",
                "jupyter-book",
                "myst-nb",
                "adv-robust-reproduced",  # this book's own package (import name: helpers)
            )
        },
    }
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]``: wall time of a block."""
    out = {"seconds": float("nan")}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start
