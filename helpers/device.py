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


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; a no-op elsewhere (CPU bf16 is slower than fp32 on most laptops)."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
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
