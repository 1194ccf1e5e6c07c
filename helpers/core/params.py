"""Parameter validation for the notebooks' parameter cells.

Every check raises ``ValueError`` whose message starts with the parameter's name and states its valid range,
so that a papermill run with a bad ``-p`` value fails before any compute with a message a student can act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Integral, Real
from typing import Any

PROFILES = ("small", "medium", "full")


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_real(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` is a finite real number in the interval [low, high] (ends open if asked); return it."""
    lo = "(" if low_open or math.isinf(low) else "["
    hi = ")" if high_open or math.isinf(high) else "]"
    interval = f"{lo}{low:g}, {high:g}{hi}".replace("inf", "∞")
    if not _is_real(value) or math.isnan(float(value)):
        raise ValueError(f"{name} must be a real number in {interval} (got {value!r})")
    v = float(value)
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if too_low or too_high:
        raise ValueError(f"{name} must be in {interval} (got {value!r})")
    return v


def check_nonnegative(name: str, value: Any) -> float:
    """A radius, step or rate that may be zero: [0, ∞)."""
    return check_real(name, value, low=0.0)


def check_positive(name: str, value: Any) -> float:
    """A strictly positive quantity: (0, ∞)."""
    return check_real(name, value, low=0.0, low_open=True)


def check_fraction(name: str, value: Any) -> float:
    """A fraction or probability: [0, 1]."""
    return check_real(name, value, low=0.0, high=1.0)


def check_int(name: str, value: Any, *, low: int = 0, high: int | None = None) -> int:
    """An integer in [low, high] (high unbounded by default)."""
    interval = f"[{low}, ∞)" if high is None else f"[{low}, {high}]"
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer in {interval} (got {value!r})")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {interval} (got {value!r})")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of a fixed set of names (an attack, a model, a dataset, a norm...)."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))} (got {value!r})")
    return value


def check_list(name: str, values: Any, check: Any, *, min_len: int = 1) -> list[Any]:
    """A non-empty list whose items each pass ``check(f"{name}[i]", item)``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{name} must be a list with at least {min_len} item(s) (got {values!r})")
    if len(values) < min_len:
        raise ValueError(f"{name} must be a list with at least {min_len} item(s) (got {values!r})")
    return [check(f"{name}[{i}]", v) for i, v in enumerate(values)]


def check_profile(value: Any) -> str:
    """The run profile: small (make test and make book), medium (the parameter cells' defaults), full (GPU)."""
    return check_choice("profile", value, PROFILES)


def check_bool(name: str, value: Any) -> bool:
    """A switch: True or False (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False (got {value!r})")
    return value


# ----------------------------------------------------------------------------------------------------------
# Rules: the checks above as values, so a chapter states each parameter's valid range once, as data
# (``{"n_train": integer(200, 50000), "eps": real(0, 1, low_open=True)}``), and :func:`validate` applies them.
# ----------------------------------------------------------------------------------------------------------

Rule = Callable[[str, Any], Any]


def integer(low: int = 0, high: int | None = None) -> Rule:
    """An integer in [low, high]."""
    return lambda name, value: check_int(name, value, low=low, high=high)


def real(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False, high_open: bool = False) -> Rule:
    """A real number in the interval [low, high] (ends open if asked)."""
    return lambda name, value: check_real(name, value, low=low, high=high, low_open=low_open, high_open=high_open)


def positive() -> Rule:
    """A strictly positive real number."""
    return check_positive


def nonnegative() -> Rule:
    """A real number >= 0."""
    return check_nonnegative


def fraction(*, open_ends: bool = False) -> Rule:
    """A fraction in [0, 1] (in (0, 1) with ``open_ends``)."""
    return real(0.0, 1.0, low_open=open_ends, high_open=open_ends)


def choice(*options: str) -> Rule:
    """One of ``options``."""
    return lambda name, value: check_choice(name, value, options)


def boolean() -> Rule:
    """True or False."""
    return check_bool


def list_of(item: Rule, *, min_len: int = 1) -> Rule:
    """A list of at least ``min_len`` items, each passing ``item``."""
    return lambda name, value: check_list(name, value, item, min_len=min_len)


def validate(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> dict[str, Any]:
    """Apply ``rules`` to ``values`` (every ruled name must be present), in the rules' order; return the values.

    A name missing from ``values`` is a chapter bug and raises ValueError naming it.
    """
    missing = [name for name in rules if name not in values]
    if missing:
        raise ValueError(f"parameters {missing} have rules but no value: define them in the parameters cell")
    for name, rule in rules.items():
        rule(name, values[name])
    return {name: values[name] for name in rules}
