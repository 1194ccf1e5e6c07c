"""The chapter scaffold (helpers.experiment) and the parameter rules it applies (helpers.core.params)."""

from __future__ import annotations

import pytest
import torch

from helpers import experiment
from helpers.core import params as P

RULES = {"n_train": P.integer(10, 100), "eps": P.real(0.0, 1.0, low_open=True), "mode": P.choice("a", "b")}


def namespace(**overrides):
    base = {"profile": "small", "seed": 3, "device": "cpu", "n_train": 50, "eps": 0.1, "mode": "a"}
    return {**base, **overrides}


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("n_train", 5, "n_train must be an integer in [10, 100]"),
        ("eps", 0.0, "eps must be in (0, 1]"),
        ("mode", "c", "mode must be one of 'a', 'b'"),
        ("profile", "huge", "profile must be one of"),
        ("seed", -1, "seed must be an integer in [0, ∞)"),
        ("device", "gpu", "device must be one of auto, cpu, cuda, cuda:N, mps"),
        ("device", "cpu:1", "device must be one of"),
    ],
)
def test_start_rejects_a_bad_parameter_by_name(tmp_results, name, value, needle):
    with pytest.raises(ValueError, match=None) as err:
        experiment.start("99_test", "Test", namespace(**{name: value}), RULES)
    assert needle in str(err.value)


def test_start_runs_the_cross_parameter_check_before_anything_else(tmp_results):
    def check(values):
        if values["n_train"] < 60:
            raise ValueError("n_train must be at least 60 when mode is 'a'")

    with pytest.raises(ValueError, match="n_train must be at least 60"):
        experiment.start("99_test", "Test", namespace(), RULES, check=check)


def test_a_ruled_parameter_missing_from_the_notebook_is_named():
    ns = namespace()
    del ns["eps"]
    with pytest.raises(ValueError, match=r"\['eps'\]"):
        experiment.start("99_test", "Test", ns, RULES)


def test_start_seeds_and_records_the_checked_parameters(tmp_results):
    run = experiment.start("99_test", "Test", namespace(extra="ignored"), RULES)
    a = torch.rand(3)
    assert run.dev == torch.device("cpu") and run.seed == 3 and run.profile == "small"
    assert run.params == {"profile": "small", "seed": 3, "device": "cpu", "n_train": 50, "eps": 0.1, "mode": "a"}
    assert torch.rand(1, generator=run.gen).shape == (1,)
    experiment.start("99_test", "Test", namespace(), RULES)
    assert torch.equal(torch.rand(3), a)  # same seed, same draws


def test_cuda_n_is_a_valid_device_name_and_fails_only_for_want_of_cuda(tmp_results):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="torch.cuda.is_available"):
        experiment.start("99_test", "Test", namespace(device="cuda:1"), RULES)


def test_trained_calls_train_once_per_configuration_with_a_checkpoint_path(tmp_results):
    run = experiment.start("99_test", "Test", namespace(), RULES)
    calls = []

    def train(ckpt):
        calls.append(ckpt)
        return len(calls)

    assert run.trained("net", {"width": 4}, train) == 1
    assert run.trained("net", {"width": 4}, train) == 1
    assert run.trained("net", {"width": 8}, train) == 2
    assert run.trained("other", {"width": 4}, train) == 3
    assert len(calls) == 3 and len(set(calls)) == 3
    assert all(c.name.startswith(("99_test-net-", "99_test-other-")) and c.suffix == ".pt" for c in calls)


def test_scored_computes_once_per_key(tmp_results):
    run = experiment.start("99_test", "Test", namespace(), RULES)
    n = []
    assert run.scored(("t1", "a"), lambda: n.append(1) or len(n)) == 1
    assert run.scored(("t1", "a"), lambda: n.append(1) or len(n)) == 1
    assert run.scored(("t1", "b"), lambda: n.append(1) or len(n)) == 2


def test_rules_reject_what_their_checks_reject():
    assert P.list_of(P.fraction(), min_len=2)("xs", [0.1, 0.2]) == [0.1, 0.2]
    with pytest.raises(ValueError, match=r"xs\[1\] must be in \[0, 1\]"):
        P.list_of(P.fraction())("xs", [0.1, 2.0])
    with pytest.raises(ValueError, match="flag must be True or False"):
        P.boolean()("flag", 1)
    with pytest.raises(ValueError, match=r"lr must be in \(0, ∞\)"):
        P.positive()("lr", 0)


def test_one_registry_builds_every_architecture_by_name():
    from helpers.core import models
    from helpers.papers import curriculum  # noqa: F401 -- importing a document module registers its builders

    net = models.create("classifier", name="basicnet", dataset="cifar10", width=6)
    assert models.count_parameters(net) == 62006 and net.arch_config["name"] == "classifier"
    assert "curriculum" in models.registered()
    with pytest.raises(ValueError, match="architecture must be one of"):
        models.create("no_such_net")


def test_seeds_lists_every_derived_seed_in_the_record(tmp_results):
    ns = {**namespace(), "n_seeds": 3}
    run = experiment.start(
        "99_test", "Test", ns, {**RULES, "n_seeds": P.integer(1)}, seeds=lambda v: [v["seed"] + i for i in range(3)]
    )
    assert run.seeds == [3, 4, 5] and run.seed == 3 and run.numbers["run_seed"] == "3, 4, 5"
