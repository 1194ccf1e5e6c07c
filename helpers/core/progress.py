"""Progress bars for long loops: plain-text tqdm (no widgets, so executed notebooks render cleanly).

``HELPERS_PROGRESS=0`` turns them off (the tests do, to keep logs short).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.std import tqdm

T = TypeVar("T")


def bar(iterable: Iterable[T], **kwargs: Any) -> Iterable[T]:
    """``tqdm(iterable, **kwargs)`` unless progress is switched off; bars go to stderr."""
    disable = os.environ.get("HELPERS_PROGRESS", "1") in ("0", "false", "False", "")
    return tqdm(iterable, disable=disable or kwargs.pop("disable", False), dynamic_ncols=True, **kwargs)


def counter(total: int, **kwargs: Any) -> tqdm:
    """A bar updated by hand (``update``, ``set_postfix``), for work that finishes out of order (sweeps)."""
    disable = os.environ.get("HELPERS_PROGRESS", "1") in ("0", "false", "False", "")
    return tqdm(total=total, disable=disable or kwargs.pop("disable", False), dynamic_ncols=True, **kwargs)
