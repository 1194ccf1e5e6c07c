"""Every validation error names the parameter and its valid range."""

from __future__ import annotations

import math

import pytest

from helpers.core import params as P


@pytest.mark.parametrize(
    "call,pattern",
    [
        (lambda: P.check_nonnegative("eps", -1), r"^eps must be in \[0, ∞\) \(got -1\)"),
        (lambda: P.check_nonnegative("eps", math.nan), r"^eps must be a real number"),
        (lambda: P.check_nonnegative("eps", "0.1"), r"^eps must be a real number"),
        (lambda: P.check_positive("lr", 0), r"^lr must be in \(0, ∞\)"),
        (lambda: P.check_fraction("fraction", 1.5), r"^fraction must be in \[0, 1\]"),
        (lambda: P.check_fraction("fraction", -0.1), r"^fraction must be in \[0, 1\]"),
        (lambda: P.check_int("epochs", 2.5, low=1), r"^epochs must be an integer in \[1, ∞\) \(got 2.5\)"),
        (lambda: P.check_int("epochs", True), r"^epochs must be an integer"),
        (lambda: P.check_int("n", 11, low=1, high=10), r"^n must be an integer in \[1, 10\]"),
        (lambda: P.check_choice("attack", "foo", ["fgsm", "pgd"]), r"^attack must be one of 'fgsm', 'pgd'"),
        (lambda: P.check_profile("huge"), r"^profile must be one of 'small', 'medium', 'full'"),
        (lambda: P.check_list("eps_list", [0.1, -2], P.check_nonnegative), r"^eps_list\[1\] must be in"),
        (lambda: P.check_list("eps_list", "0.1", P.check_nonnegative), r"^eps_list must be a list"),
        (lambda: P.check_list("eps_list", [], P.check_nonnegative), r"^eps_list must be a list"),
    ],
)
def test_bad_values_raise_valueerror_naming_the_parameter(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_good_values_pass_through():
    assert P.check_nonnegative("eps", 0) == 0.0
    assert P.check_fraction("fraction", 1) == 1.0
    assert P.check_int("epochs", 3, low=1) == 3
    assert P.check_choice("attack", "pgd", ["pgd"]) == "pgd"
    assert P.check_list("eps_list", [0, 0.1], P.check_nonnegative) == [0.0, 0.1]
    assert P.check_real("x", 0.5, low=0, high=1, low_open=True) == 0.5
