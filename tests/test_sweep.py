"""Sweeps on Ray (``helpers.sweep``): bad input stops before Ray starts; aggregation; real primer sweeps.

The real sweeps execute the primer at the small profile (marked ``notebooks``). ``conftest.py`` runs this file before
``test_notebooks.py``, so that the first sweep's summary is in ``results/sweeps/`` when the book's "Sweeps" page is
executed and built there.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
from pathlib import Path

import pytest

from helpers.sweep import __main__ as cli
from helpers.sweep import engine, summary
from helpers.sweep.grid import Point, config_hash, notebook_parameters, parse_seeds, parse_values

ROOT = Path(__file__).resolve().parents[1]
PRIMER_SWEEP = "test-primer-small-eps"  # the sweep the book's page shows after `make test`


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if anything starts Ray or submits a point."""
    import ray

    def forbidden(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(ray, "init", forbidden)
    monkeypatch.setattr(ray, "remote", forbidden)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parse_seeds_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("5,0,2") == [0, 2, 5]
    assert parse_seeds("0-1,7,1") == [0, 1, 7]


@pytest.mark.parametrize("text", ["3-1", "a", "", "-1", "1-", "0.5", "1,,2"])
def test_parse_seeds_rejects_malformed(text):
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds(text)


def test_parse_values_reads_yaml_lists():
    assert parse_values("eps", ["0.01,0.03"]) == [0.01, 0.03]
    assert parse_values("eps", ["0.01", "0.03"]) == [0.01, 0.03]
    assert parse_values("eps_list", ["[0,0.1],[0,0.2]"]) == [[0, 0.1], [0, 0.2]]
    assert parse_values("attack", ["fgsm,pgd"]) == ["fgsm", "pgd"]


def test_notebook_parameters_reads_the_primer_cell():
    defaults = notebook_parameters(ROOT / "notebooks" / "00_primer.py")
    assert defaults["eps"] == 0.1 and defaults["seed"] == 0 and defaults["attack"] == "pgd"
    assert isinstance(defaults["eps_list"], list) and "run" not in defaults  # only the parameters cell


def test_points_and_config_hash():
    p1, p2 = Point("00_primer", "small", 0, {"eps": 0.01}), Point("00_primer", "small", 1, {"eps": 0.01})
    assert p1.id == "00_primer/small/seed0_eps-0.01" and p1.id != p2.id
    c1 = p1.config(ROOT)
    assert c1["parameters"]["eps"] == 0.01 and c1["parameters"]["seed"] == 0 and c1["parameters"]["epochs"] == 1
    assert config_hash(c1) == config_hash(Point("00_primer", "small", 0, {"eps": 0.01}).config(ROOT))
    assert config_hash(c1) != config_hash(p2.config(ROOT))
    assert config_hash(c1) != config_hash(Point("00_primer", "small", 0, {"eps": 0.03}).config(ROOT))


BAD_INPUT = [
    (["01_nope"], "01_nope"),
    (["00_primer", "--profile", "fast"], "fast"),
    (["00_primer", "-p", "epsilon", "0.1"], "epsilon"),
    (["00_primer", "-p", "eps"], "-p eps has no values"),
    (["00_primer", "-p", "eps", "0.1,"], "empty value"),
    (["00_primer", "-p", "eps", "0.0.1"], "0.0.1"),
    (["00_primer", "-p", "attack", "[1, 2]"], "attack"),
    (["00_primer", "-p", "eps", "0.1", "-p", "eps", "0.2"], "given twice"),
    (["00_primer", "-p", "seed", "1"], "--seeds"),
    (["00_primer", "--seeds", "3-1"], "3-1"),
    (["00_primer", "--seeds", "x"], "'x'"),
    (["00_primer", "--workers", "0"], "--workers"),
    (["scorecard"], "scorecard"),
    (["00_primer", "--address", "nohostport"], "nohostport"),
]


@pytest.mark.parametrize("argv,named", BAD_INPUT)
def test_bad_input_fails_before_ray_starts(argv, named, no_ray, capsys):
    args = cli.build_parser().parse_args(argv)
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace(".", r"\.")):
        cli.prepare(args, ROOT)
        engine.check_address(args.address)
    assert cli.main(argv) == 2
    assert named in capsys.readouterr().err


def test_unreachable_address_fails_before_ray_starts(no_ray, capsys, tmp_path):
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(ValueError, match=f"--address '{address}' is unreachable"):
        engine.run_sweep([Point("00_primer", "small", 0)], root=ROOT, sweep_dir=tmp_path, address=address)
    assert cli.main(["00_primer", "--profile", "small", "--address", address, "--out", str(tmp_path)]) == 2
    assert address in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written either


def test_intervals_over_seeds():
    one = summary.mean_interval([0.5], [[0.4, 0.7]])
    assert (one["mean"], one["lo"], one["hi"]) == (0.5, 0.4, 0.7)  # a single seed keeps its own interval
    three = summary.mean_interval([1.0, 2.0, 3.0])
    assert three["mean"] == 2.0 and three["sd"] == 1.0
    assert three["hi"] - 2.0 == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    five = summary.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert five["hi"] - five["mean"] < three["hi"] - three["mean"]  # more seeds, narrower band
    all_hold, half = summary.share_interval([True, True]), summary.share_interval([True, False, True, False])
    assert all_hold["mean"] == 1.0 and all_hold["hi"] == 1.0 and 0.2 < all_hold["lo"] < 0.5
    assert half["mean"] == 0.5 and half["lo"] < 0.5 < half["hi"]


def _point(seed: int, eps: float, claims: list[dict], numbers: dict) -> dict:
    return {"chapter": "00_primer", "profile": "small", "seed": seed, "params": {"eps": eps}, "status": "done"} | {
        "claims": claims,
        "numbers": numbers,
    }


def test_aggregation_uses_effects_and_verdicts_when_present_else_holds():
    points = [
        _point(
            s,
            eps,
            [
                {"key": "old", "claim": "holds only", "holds": s == 0},
                {"key": "new", "claim": "with effect", "holds": True, "effect": eps + s, "interval": [0, 1]}
                | {"verdict": "reproduced" if s == 0 else "inconclusive"},
            ],
            {"acc": 1 - eps - 0.1 * s},
        )
        for eps in (0.1, 0.3)
        for s in (0, 1)
    ]
    points.append(_point(2, 0.1, [], {}) | {"status": "failed"})  # failed points count in no aggregate
    rows = {(r["key"], r["params"]["eps"]): r for r in summary.aggregate_claims(points)}
    old, new = rows["old", 0.1], rows["new", 0.3]
    assert old["seeds"] == [0, 1] and old["holds"]["mean"] == 0.5 and old["reproduced"]["mean"] == 0.5
    assert old["effect"] is None
    assert new["holds"]["mean"] == 1.0 and new["reproduced"]["mean"] == 0.5  # the verdict decides, not holds
    assert new["verdicts"] == {"inconclusive": 1, "reproduced": 1}
    assert new["effect"]["mean"] == pytest.approx(0.8) and new["effect"]["lo"] < 0.8 < new["effect"]["hi"]
    numbers = summary.aggregate_numbers(points)
    lines = summary.curves(summary.aggregate_claims(points), numbers, ["eps"])
    by_key = {ln["key"]: ln for ln in lines}
    assert by_key["new"]["y"] == "effect" and by_key["old"]["y"] == "share holding"
    acc = by_key["acc"]["points"]
    assert [pt["value"] for pt in acc] == [0.1, 0.3] and acc[0]["mean"] == pytest.approx(0.85)
    assert acc[0]["lo"] < acc[0]["mean"] < acc[0]["hi"]


def _mtimes(paths: list[Path]) -> dict[Path, float | None]:
    return {p: p.stat().st_mtime if p.exists() else None for p in paths}


@pytest.mark.notebooks
def test_primer_sweep_on_local_ray_then_every_point_skipped(monkeypatch):
    """2 seeds x 2 values of eps at small on a local Ray with 2 workers; the same command again runs nothing."""
    out = ROOT / "results" / "sweeps"
    shutil.rmtree(out / PRIMER_SWEEP, ignore_errors=True)
    book = [ROOT / "book" / "chapters" / "00_primer.ipynb", ROOT / "results" / "00_primer.json"]
    book += [ROOT / "book" / "timings.json", ROOT / "_build" / "failed" / "00_primer.ipynb"]
    before = _mtimes(book)
    argv = ["00_primer", "--profile", "small", "--seeds", "0-1", "-p", "eps", "0.1,0.2", "--workers", "2"]
    argv += ["--name", PRIMER_SWEEP, "--out", str(out)]
    assert cli.main(argv) == 0
    assert _mtimes(book) == before  # the book's own page, results and timings are untouched
    sweep = out / PRIMER_SWEEP
    s = json.loads((sweep / "summary.json").read_text())
    assert s["counts"]["done"] == 4 and s["counts"]["failed"] == 0 and s["counts"]["skipped"] == 0
    assert s["grid"] == {"eps": [0.1, 0.2]} and s["seeds"] == [0, 1] and s["slots"] == 2
    for p in s["points"]:
        res = json.loads((sweep / p["results"]).read_text())
        assert res["params"]["eps"] == p["params"]["eps"] and res["seeds"] == [p["seed"]] and res["profile"] == "small"
        assert (sweep / p["notebook"]).exists() and "attempt 1" in (sweep / p["log"]).read_text()
        assert list((sweep / p["id"] / "results" / "figures" / "00_primer").glob("*.png"))
        assert p["attempts"] == 1 and 0 < p["run_wall_time_s"] <= p["wall_time_s"]
        assert json.loads((sweep / p["id"] / "point.json").read_text())["config_hash"] == p["config_hash"]
    claims = {(r["key"], r["params"]["eps"]): r for r in s["claims"]}
    n_keys = len(json.loads((sweep / s["points"][0]["results"]).read_text())["claims"])
    assert n_keys >= 3 and len(claims) == 2 * n_keys  # every claim of the chapter, once per value of eps
    for (key, eps), r in claims.items():
        holds = [c["holds"] for p in s["points"] if p["params"]["eps"] == eps for c in p["claims"] if c["key"] == key]
        assert r["seeds"] == [0, 1] and r["holds"]["mean"] == sum(holds) / 2  # the share is over the two seeds
    assert claims["pgd_at_least_fgsm", 0.1]["holds"]["mean"] == 1.0  # it holds at the small profile on both seeds
    head = next(c for c in s["curves"] if c["key"] == "acc_pgd_head")
    assert [pt["value"] for pt in head["points"]] == [0.1, 0.2]
    assert head["points"][0]["mean"] > head["points"][1]["mean"]  # PGD at the larger eps leaves fewer digits
    done = _mtimes([sweep / p["notebook"] for p in s["points"]] + [sweep / p["results"] for p in s["points"]])

    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("a rerun with every point done started Ray"))
    assert cli.main(argv) == 0
    again = json.loads((sweep / "summary.json").read_text())
    assert again["counts"]["skipped"] == 4 and again["counts"]["done"] == 4
    assert all(p["skipped"] for p in again["points"]) and again["claims"] == s["claims"]
    assert _mtimes(list(done)) == done


@pytest.mark.notebooks
def test_failing_point_is_retried_once_reported_and_the_others_complete(tmp_path, capsys):
    """eps = -1 passes the sweep's type check and fails in the primer's validation cell, on every attempt."""
    argv = ["00_primer", "--profile", "small", "--seeds", "0", "-p", "eps", "0.05,-1", "--workers", "2"]
    assert cli.main([*argv, "--name", "fail", "--out", str(tmp_path)]) == 1
    s = json.loads((tmp_path / "fail" / "summary.json").read_text())
    by_eps = {p["params"]["eps"]: p for p in s["points"]}
    bad, good = by_eps[-1], by_eps[0.05]
    assert good["status"] == "done" and (tmp_path / "fail" / good["results"]).exists()
    assert bad["status"] == "failed" and bad["attempts"] == 2  # one retry
    assert bad["error"].startswith("ValueError: eps must be in (0, 1]")
    log = (tmp_path / "fail" / bad["log"]).read_text()
    assert log.count(engine.ATTEMPT_MARK) == 2 and "eps must be" in log
    assert not (tmp_path / "fail" / bad["results"]).exists()
    printed = capsys.readouterr().out
    assert "seed0_eps--1 failed after 2 attempt(s): ValueError: eps must be" in printed and bad["log"] in printed
    assert s["counts"] == {"done": 1, "failed": 1, "interrupted": 0, "pending": 0, "skipped": 0}
