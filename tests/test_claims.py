"""Claims as data (issue 16): intervals, three-way verdicts, the claims files, the run record and the scorecard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import claims, results, scorecard
from helpers.core.evaluate import Scores

ROOT = Path(__file__).resolve().parents[1]


def _effect(lo: float, hi: float) -> claims.Effect:
    return claims.Effect((lo + hi) / 2, lo, hi, "points", "test", 10)


@pytest.mark.parametrize(
    "lo, hi, direction, margin, null, expected",
    [
        (1.0, 3.0, "greater", 0.0, 0.0, "reproduced"),
        (1.0, 3.0, "greater", 2.0, 0.0, "inconclusive"),  # beyond no effect but not beyond the margin
        (-1.0, 3.0, "greater", 0.0, 0.0, "inconclusive"),
        (-3.0, -1.0, "greater", 0.0, 0.0, "contradicted"),
        (-3.0, -1.0, "less", 0.0, 0.0, "reproduced"),
        (0.0, 0.0, "less", 0.0, 10.0, "reproduced"),  # "below 10%": no_effect is the document's threshold
        (11.0, 12.0, "less", 0.0, 10.0, "contradicted"),
        (-1.0, 1.0, "equivalent", 3.0, 0.0, "reproduced"),
        (-1.0, 4.0, "equivalent", 3.0, 0.0, "inconclusive"),
        (3.5, 6.0, "equivalent", 3.0, 0.0, "contradicted"),
        (1.2, 1.5, "greater", 0.0, 1.0, "reproduced"),  # a ratio: no effect is 1
    ],
)
def test_verdict_follows_the_interval(lo, hi, direction, margin, null, expected):
    assert claims.verdict(_effect(lo, hi), direction, margin, null) == expected


def test_verdict_refuses_bad_direction_and_negative_margin():
    with pytest.raises(ValueError, match="direction"):
        claims.verdict(_effect(0, 1), "bigger", 0.0)
    with pytest.raises(ValueError, match="margin"):
        claims.verdict(_effect(0, 1), "greater", -1.0)


def test_paired_interval_is_seeded_covers_the_truth_and_narrows_with_pairing():
    rng = np.random.default_rng(0)
    n = 400
    hard = rng.random(n) < 0.5  # images both models find hard: pairing removes this shared variance
    a = ((~hard) | (rng.random(n) < 0.3)).astype(float)
    b = a * (rng.random(n) > 0.1)  # b loses about 10% of a's correct images: a - b > 0
    e1, e2 = claims.paired(a, b), claims.paired(torch.tensor(a), torch.tensor(b))
    assert e1 == e2  # same numbers, same interval (numpy or torch)
    assert e1.low <= e1.estimate <= e1.high and e1.low > 0 and e1.unit == "points"
    assert e1.estimate == pytest.approx(100 * (a.mean() - b.mean()))
    unpaired = claims.difference(a, b, unit="points", scale=100, what="images")
    assert (e1.high - e1.low) < (unpaired.high - unpaired.low)
    with pytest.raises(ValueError, match="share"):
        claims.paired(a, b[:-1])


def test_interval_covers_a_known_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(100):
        x = rng.normal(2.0, 1.0, 50)
        e = claims.bootstrap(lambda v: v.mean(), x, unit="", method="t", n_boot=400, seed=int(rng.integers(1e6)))
        covered += e.low <= 2.0 <= e.high
    assert 85 <= covered <= 100  # 95% nominal; the percentile bootstrap runs a little narrow at n=50


def test_draws_widen_the_interval_of_a_randomized_model():
    """2-D hits (draws, N): the draws are resampled too, so draw-to-draw noise enters the interval."""
    rng = np.random.default_rng(2)
    base = (rng.random(300) < 0.5).astype(float)
    noisy = np.stack([np.where(rng.random(300) < 0.3, 1 - base, base) for _ in range(10)])
    scores = Scores(torch.tensor(noisy), "rse")
    e2d = claims.paired(scores, base)
    e1d = claims.paired(noisy.mean(0), base)
    assert e2d.estimate == pytest.approx(e1d.estimate)
    assert (e2d.high - e2d.low) >= (e1d.high - e1d.low)


def _write_claims(root: Path, chapter: str, entries: list[dict]) -> None:
    (root / "notebooks" / "claims").mkdir(parents=True, exist_ok=True)
    (root / "helpers").mkdir(exist_ok=True)
    (root / "_toc.yml").write_text("root: index\n")
    text = yaml.safe_dump({"chapter": chapter, "claims": entries}, sort_keys=False)
    (root / "notebooks" / "claims" / f"{chapter}.yaml").write_text(text)


CLAIM = {
    "key": "gain",
    "kind": "claim",
    "statement": "the defence raises robust accuracy at ε={eps:g}",
    "source": "Table 2",
    "document": "+1.35%",
    "effect": "defended minus undefended",
    "unit": "points",
    "document_value": 1.35,
    "direction": "greater",
    "no_effect": 0,
    "margin": 0,
    "expected": {"small": {"verdict": "reproduced"}},
}
CHECK = {"key": "finite", "kind": "check", "statement": "the loss is finite", "source": "book",
         "document": "not in the document", "expected": {"small": {"verdict": "passes"}}}  # fmt: skip


@pytest.mark.parametrize(
    "change, match",
    [
        ({"direction": "up"}, "direction"),
        ({"margin": -1}, "margin"),
        ({"kind": "wish"}, "kind"),
        ({"expected": {"small": {"verdict": "inconclusive"}}}, "give a reason"),
        ({"expected": {"small": {"verdict": "holds"}}}, "needs a verdict"),
        ({"unit": None, "no_effect": 0}, None),
    ],
)
def test_claims_file_is_validated(tmp_path, change, match):
    spec = {**CLAIM, **change}
    if match is None:  # a field YAML reads as null (a key spelled `null:`) is refused, naming no_effect
        spec = {k: v for k, v in CLAIM.items() if k != "no_effect"}
        text = yaml.safe_dump({"claims": [spec]}, sort_keys=False).replace("margin: 0", "margin: 0\n  null: 0")
        (tmp_path / "notebooks" / "claims").mkdir(parents=True)
        (tmp_path / "helpers").mkdir()
        (tmp_path / "_toc.yml").write_text("root: index\n")
        (tmp_path / "notebooks" / "claims" / "99_test.yaml").write_text(text)
        with pytest.raises(ValueError, match="no_effect"):
            claims.load("99_test", tmp_path)
        return
    _write_claims(tmp_path, "99_test", [spec])
    with pytest.raises(ValueError, match=match):
        claims.load("99_test", tmp_path)
    _write_claims(tmp_path, "99_test", [{k: v for k, v in CLAIM.items() if k != "margin"}])
    with pytest.raises(ValueError, match="margin"):
        claims.load("99_test", tmp_path)


def test_run_records_claims_checks_and_missing_ones(tmp_path, monkeypatch):
    _write_claims(tmp_path, "99_test", [CLAIM, CHECK, {**CLAIM, "key": "never_run"}])
    monkeypatch.chdir(tmp_path)
    run = results.Run("99_test", "Test", profile="small", seed=[0, 1], device="cpu", params={"eps": torch.tensor(0.1)})
    a = np.r_[np.ones(60), np.zeros(40)]
    b = np.r_[np.ones(40), np.zeros(60)]
    assert run.claim("gain", claims.paired(a, b), ours="60% vs 40%", eps=0.1) == "reproduced"
    assert run.check("finite", True, ours="all finite")
    with pytest.raises(ValueError, match="already recorded"):
        run.claim("gain", claims.paired(a, b), ours="again", eps=0.1)
    with pytest.raises(ValueError, match="not in notebooks/claims/99_test.yaml"):
        run.claim("invented", claims.paired(a, b), ours="")
    with pytest.raises(ValueError, match="as kind: claim"):
        run.claim("finite", claims.paired(a, b), ours="")  # a check is not a claim
    table = run.finish(tmp_path / "results")
    saved = json.loads((tmp_path / "results" / "99_test.json").read_text())
    gain, finite = saved["claims"]
    assert gain["claim"] == "the defence raises robust accuracy at ε=0.1" and gain["verdict"] == gain["expected"]
    assert gain["effect"] == pytest.approx(20.0) and gain["interval"][0] > 0 and gain["margin"] == 0
    assert gain["document_inside"] is False and gain["holds"] is True  # +1.35 lies below our interval
    assert finite["kind"] == "check" and finite["verdict"] == "passes"
    assert saved["missing_claims"] == ["never_run"]
    assert saved["numbers"]["verdict_gain"] == "reproduced" and saved["numbers"]["claim_gain"].startswith(
        "reproduced: +20.0"
    )
    assert list(table["claim"]) == [gain["claim"]]  # the claims table holds claims; checks have their own
    assert list(scorecard.checks_table(saved["claims"])["result"]) == ["✔ passes"]


def test_compare_and_record_report_flips_into_history(tmp_path, monkeypatch):
    _write_claims(tmp_path, "99_test", [CLAIM])
    path = tmp_path / "notebooks" / "claims" / "99_test.yaml"
    path.write_text("# how the margins were chosen\n" + path.read_text())
    monkeypatch.chdir(tmp_path)
    run = results.Run("99_test", "Test", profile="medium", seed=0, device="cpu")
    a, b = np.r_[np.ones(50), np.zeros(50)], np.r_[np.ones(48), np.zeros(52)]
    run.claim("gain", claims.paired(a, b), ours="50% vs 48%", eps=0.1)  # +2 points on 100 images: inconclusive
    run.finish(tmp_path / "results")
    res = results.load_results(tmp_path / "results")
    assert claims.compare(res, tmp_path) == [
        "99_test gain at medium: expected None, measured " + claims.summary_text(res[0]["claims"][0])
    ]
    assert claims.record_profile(res, tmp_path) == []  # nothing recorded before: no flip
    assert path.read_text().startswith("# how the margins were chosen\n")  # the header comment survives
    spec = claims.load("99_test", tmp_path)["gain"]
    rec = spec["expected"]["medium"]
    assert rec["verdict"] == "inconclusive" and rec["reason"].startswith("TODO") and rec["measured"]["interval"]
    assert spec["expected"]["small"] == {"verdict": "reproduced"} and claims.compare(res, tmp_path) == []
    res[0]["claims"][0]["verdict"] = "contradicted"
    assert claims.record_profile(res, tmp_path) == ["99_test gain at medium: inconclusive -> contradicted"]
    history = claims.load("99_test", tmp_path)["gain"]["history"]
    assert history[0]["old"]["verdict"] == "inconclusive" and history[0]["new"]["verdict"] == "contradicted"


def test_forest_plot_and_counts(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    _write_claims(tmp_path, "99_test", [CLAIM, {**CLAIM, "key": "tie", "direction": "equivalent", "margin": 3}])
    monkeypatch.chdir(tmp_path)
    run = results.Run("99_test", "Test", profile="small", seed=0, device="cpu")
    a, b = np.r_[np.ones(60), np.zeros(40)], np.r_[np.ones(40), np.zeros(60)]
    run.claim("gain", claims.paired(a, b), ours="", eps=0.1)
    run.claim("tie", claims.paired(a, a), ours="", eps=0.1)
    fig = scorecard.forest(run.claims, "test")
    assert len(fig.axes) == 2
    run.finish(tmp_path / "results")
    counts = scorecard.counts(results.load_results(tmp_path / "results"))
    small = counts[counts.profile == "small"].iloc[0]
    assert small["reproduced"] == 2 and small["contradicted"] == 0
    assert counts[counts.profile == "medium"].iloc[0]["source"] == "not measured"
    with pytest.raises(ValueError, match="no claims"):
        scorecard.forest([])


def test_every_chapter_has_a_valid_claims_file_with_small_verdicts():
    """The book's own files: each chapter's claims load, each has a small verdict, reasons where not reproduced."""
    from helpers import pipeline

    for name in [n for n in pipeline.notebook_names(ROOT) if n[:2].isdigit()]:
        specs = claims.load(name, ROOT)
        assert specs, f"{name} has no notebooks/claims/{name}.yaml"
        for key, spec in specs.items():
            assert "small" in spec["expected"], (name, key)
