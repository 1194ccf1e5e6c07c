"""make gpu-check refuses clearly where there is no CUDA device, and summarises a chapter's verdicts."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpu_check_refuses_without_cuda_before_running_anything(capsys, monkeypatch):
    monkeypatch.setattr(gpu_check, "run", lambda *a, **k: pytest.fail("ran chapters without CUDA"))
    assert gpu_check.main(["--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "needs a CUDA GPU" in err and "torch.cuda.is_available() is False" in err


def test_gpu_check_rejects_a_device_that_is_not_cuda():
    with pytest.raises(ValueError, match="device must be cuda or cuda:N"):
        gpu_check.require_cuda("cpu")


def test_chapter_record_counts_the_claims_verdicts_and_skips_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_RESULTS", str(tmp_path))
    claims = [
        {"key": "a", "kind": "claim", "verdict": "reproduced"},
        {"key": "b", "kind": "claim", "verdict": "inconclusive"},
        {"key": "c", "kind": "claim", "verdict": "reproduced"},
        {"key": "d", "kind": "check", "verdict": "passed"},
    ]
    (tmp_path / "01_x.json").write_text(json.dumps({"claims": claims}))
    rec = gpu_check.chapter_record("01_x", 12.34)
    assert rec["wall_time_s"] == 12.3 and rec["counts"] == {"reproduced": 2, "inconclusive": 1}
    assert set(rec["verdicts"]) == {"a", "b", "c"}
