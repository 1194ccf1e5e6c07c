"""The training loop, adversary hooks, checkpoints (weights_only round trip, resume) and determinism."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from helpers.core import attacks, data, evaluate, training
from helpers.core.device import seed_everything
from helpers.core.io import write_json


def _toy(n: int = 512, seed: int = 0) -> data.TensorData:
    """A separable 2-class image problem: bright left half vs bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randint(0, 60, (n, 1, 8, 8), generator=g)
    x[y == 0, :, :, :4] += 150
    x[y == 1, :, :, 4:] += 150
    return data.TensorData(x.clamp(0, 255).to(torch.uint8), y, ("left", "right"))


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))


def _run(epochs: int, ckpt=None, seed: int = 0, **kw):
    seed_everything(seed)
    model = _model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    loader = data.Loader(_toy(), 32, shuffle=True, seed=seed)
    hist = training.fit(model, loader, optimizer=opt, scheduler=sched, epochs=epochs, checkpoint=ckpt, seed=seed, **kw)
    return model, hist


def test_fit_learns_and_records_history():
    model, hist = _run(3, val=data.Loader(_toy(seed=1), 100))
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert hist[-1]["val_acc"] > 0.95 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert [round(r["lr"], 4) for r in hist] == [0.05, 0.025, 0.0125]
    assert not model.training


def test_same_seed_same_numbers():
    m1, h1 = _run(2)
    m2, h2 = _run(2)
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True))


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    full, h_full = _run(3)
    ckpt = tmp_path / "run.pt"
    _run(1, ckpt)
    resumed, h_res = _run(3, ckpt)  # picks up at epoch 1
    assert [r["train_loss"] for r in h_res] == [r["train_loss"] for r in h_full]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_finished_checkpoint_skips_training(tmp_path, monkeypatch):
    ckpt = tmp_path / "run.pt"
    trained, hist = _run(2, ckpt)
    calls = []
    monkeypatch.setattr(torch.optim.SGD, "step", lambda self, *a, **k: calls.append(1))
    again, hist2 = _run(2, ckpt)
    assert calls == [] and hist2 == hist
    for a, b in zip(trained.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_round_trips_with_weights_only(tmp_path):
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    opt.step()
    path = training.save_checkpoint(
        tmp_path / "c.pt",
        model=model.state_dict(),
        optimizer=opt.state_dict(),
        epoch=3,
        history=[{"epoch": 1, "loss": 0.5}],
    )
    state = training.load_checkpoint(path)  # weights_only=True inside
    fresh = _model(seed=1)
    fresh.load_state_dict(state["model"])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))
    assert state["epoch"] == 3 and state["history"][0]["loss"] == 0.5
    assert set(state["optimizer"]["state"]) == {0, 1, 2, 3}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_atomic_write_gives_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "p.json", {"a": 1})
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"a": 1})

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json(target, {"a": Boom()})
    assert target.read_text() == '{\n  "a": 1\n}'
    assert os.listdir(tmp_path) == ["r.json"]


def test_select_keeps_best_validation_epoch(tmp_path):
    ckpt = tmp_path / "sel.pt"
    model, hist = _run(3, ckpt, val=data.Loader(_toy(seed=1), 100), select="val_acc")
    best = training.load_best(model, ckpt)
    assert best["metric"] == max(r["val_acc"] for r in hist)
    assert hist[best["epoch"] - 1]["val_acc"] == best["metric"]
    with pytest.raises(ValueError, match="^select"):
        _run(1, select="test_acc")


def test_adversary_replaces_the_requested_fraction():
    model = _model()
    x = torch.rand(40, 1, 8, 8)
    y = torch.arange(40) % 2
    adv = training.Adversary(lambda m, x, y: torch.zeros_like(x), fraction=0.25)
    out, mask = adv(model, x, y, progress=0.0, generator=torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 10
    assert torch.all(out[mask] == 0) and torch.equal(out[~mask], x[~mask])
    assert adv.counts == {"adversarial": 10, "natural": 30}
    out0, mask0 = training.Adversary(lambda m, x, y: x * 0, 0.0)(model, x, y, progress=0, generator=torch.Generator())
    assert not mask0.any() and torch.equal(out0, x)
    with pytest.raises(ValueError, match="^fraction"):
        training.Adversary(None, fraction=1.2)


def test_adversary_attacks_in_eval_mode_and_restores_train_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2), nn.Dropout(0.5))
    model.train()
    seen = []
    adv = training.Adversary(lambda m, x, y: (seen.append(m.training), x)[1], fraction=1.0)
    adv(
        model,
        torch.rand(4, 1, 8, 8),
        torch.zeros(4, dtype=torch.long),
        progress=0.0,
        generator=torch.Generator(),
    )
    assert seen == [False] and model.training


def test_mixed_adversary_uses_both_norms_in_proportion():
    mixed = training.MixedAdversary({"linf": lambda m, x, y: x, "l2": lambda m, x, y: x}, weights=[0.7, 0.3], seed=0)
    model, g = _model(), torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)
    for _ in range(2000):
        mixed(model, x, y, progress=0.0, generator=g)
    share = mixed.counts["linf"] / (mixed.counts["linf"] + mixed.counts["l2"])
    assert mixed.counts["l2"] > 0 and abs(share - 0.7) < 0.04


def test_mixed_adversary_max_mode_keeps_the_worst_per_sample():
    model = _model()
    x = torch.rand(16, 1, 8, 8)
    y = torch.arange(16) % 2
    mixed = training.MixedAdversary(
        {"fgsm": attacks.make_attack("fgsm", 0.3), "none": attacks.make_attack("none", 0.0)}, mode="max"
    )
    out, _ = mixed(model, x, y, progress=0.0, generator=torch.Generator().manual_seed(0))
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        per = loss(model(out), y, reduction="none")
        for cand in (attacks.fgsm(model, x, y, 0.3), x):
            assert torch.all(per >= loss(model(cand), y, reduction="none") - 1e-6)


def test_scheduled_adversary_sees_progress():
    seen = []
    sched = training.ScheduledAdversary(lambda t: (seen.append(t), None)[1], fraction=1.0)
    seed_everything(0)
    model = _model()
    training.fit(
        model,
        data.Loader(_toy(64), 32),
        optimizer=torch.optim.SGD(model.parameters(), 0.1),
        epochs=2,
        adversary=sched,
    )
    assert seen == [0.0, 0.25, 0.5, 0.75]


def test_config_hash_is_order_free(tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path))
    a = training.checkpoint_path("ch", {"eps": 0.1, "epochs": 3})
    b = training.checkpoint_path("ch", {"epochs": 3, "eps": 0.1})
    c = training.checkpoint_path("ch", {"epochs": 4, "eps": 0.1})
    assert a == b != c and a.parent == tmp_path / "checkpoints"


def test_evaluate_and_robust_accuracy():
    model, _ = _run(3)
    loader = data.Loader(_toy(seed=2), 64)
    res = evaluate.evaluate(model, loader)
    assert res["n"] == 512 and res["correct"].shape == (512,) and res["acc"] > 0.95
    accs = evaluate.robust_accuracy(model, loader, {"clean": None, "pgd": attacks.make_attack("pgd", 0.5, steps=10)})
    assert accs["clean"] == res["acc"] and accs["pgd"] < accs["clean"]


class _WithExtra(nn.Module):
    """A model with a second input, as photo-z's ``model(images, ebv)``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _model()

    def forward(self, x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return self.body(x) + shift.view(-1, 1) * torch.tensor([1.0, -1.0])


def test_extra_inputs_flow_through_loader_fit_evaluate_and_adversary():
    base = _toy()
    shift = torch.linspace(-0.1, 0.1, len(base))
    d = data.TensorData(base.x, base.y, base.classes, (shift,))
    sub = d.subset(torch.arange(10))
    assert torch.equal(sub.extra[0], shift[:10])
    x, y, s = next(iter(data.Loader(d, 16)))
    assert s.shape == (16,) and torch.equal(s, shift[:16])
    seed_everything(0)
    model = _WithExtra()
    seen = []

    def attack(m, x, y):
        seen.append(type(m).__name__)
        return attacks.fgsm(m, x, y, 0.1)

    hist = training.fit(
        model,
        data.Loader(d, 32, shuffle=True),
        optimizer=torch.optim.SGD(model.parameters(), 0.05),
        epochs=2,
        adversary=training.Adversary(attack, 0.5),
        val=data.Loader(d, 100),
    )
    assert hist[-1]["val_acc"] > 0.9 and set(seen) == {"Bound"}
    ev = evaluate.evaluate(model, data.Loader(d, 100), attack=attacks.make_attack("pgd", 0.3, steps=5))
    assert ev["acc"] < hist[-1]["val_acc"]
    # The bound model equals calling with the extra input, and eval_mode reaches the wrapped model.
    b = evaluate.bind(model, [shift[:4]])
    model.train()
    with attacks.eval_mode(b):
        assert not model.training
        torch.testing.assert_close(b(base.x[:4].float()), model(base.x[:4].float(), shift[:4]))
    assert model.training
    assert evaluate.bind(model, []) is model


def test_perturb_crafts_once_and_keep_outputs_returns_logits():
    model, _ = _run(3)
    d = _toy(seed=2)
    attack = attacks.make_attack("pgd", 0.5, steps=10)
    adv = evaluate.perturb(model, d, attack, batch_size=100)
    assert adv.x.dtype == torch.float32 and adv.x.shape == d.x.shape and torch.equal(adv.y, d.y)
    direct = evaluate.evaluate(model, data.Loader(d, 100), attack=attack)
    crafted = evaluate.evaluate(model, data.Loader(adv, 100), keep_outputs=True)
    assert crafted["acc"] == direct["acc"] < 0.9
    assert crafted["outputs"].shape == (512, 2)
    assert torch.equal(crafted["outputs"].argmax(1) == d.y, crafted["correct"])
    assert not model.training


def test_cpu_autocast_follows_helpers_amp_and_the_cached_probe(monkeypatch, tmp_path):
    """Issue 18: bf16 autocast on the CPU where it pays; HELPERS_AMP=0 turns it off, =1 on; the probe runs once."""
    from helpers.core import device as D

    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path))
    conv = nn.Conv2d(3, 4, 3)
    x = torch.rand(1, 3, 8, 8)
    monkeypatch.setenv("HELPERS_AMP", "0")
    with D.autocast("cpu"):
        assert conv(x).dtype == torch.float32
    monkeypatch.setenv("HELPERS_AMP", "1")
    with D.autocast("cpu"):
        assert conv(x).dtype == torch.bfloat16
    with D.autocast("cpu", enabled=False):
        assert conv(x).dtype == torch.float32
    monkeypatch.setenv("HELPERS_AMP", "yes")
    with pytest.raises(ValueError, match="HELPERS_AMP"):
        D.amp_enabled("cpu")
    monkeypatch.delenv("HELPERS_AMP")
    calls = []
    monkeypatch.setattr(D, "_probe_step", lambda dtype, steps: calls.append(dtype) or (1.0 if dtype is None else 0.5))
    assert D.cpu_bf16_speedup() == 2.0 and D.amp_enabled("cpu") and len(calls) == 2
    assert D.cpu_bf16_speedup() == 2.0 and len(calls) == 2  # cached: no second probe
    assert D.cpu_bf16_speedup(refresh=True) == 2.0 and len(calls) == 4
    monkeypatch.setattr(D, "_probe_step", lambda dtype, steps: 1.0 if dtype is None else 2.0)
    assert D.cpu_bf16_speedup(refresh=True) == 0.5 and not D.amp_enabled("cpu")  # slower in bf16: fp32
    assert not D.amp_enabled("mps")


def test_fit_with_cpu_bf16_trains_and_keeps_fp32_weights(monkeypatch):
    monkeypatch.setenv("HELPERS_AMP", "1")
    seed_everything(0)
    model = _model()
    loader = data.Loader(_toy(), batch_size=64, shuffle=True, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = training.fit(model, loader, optimizer=opt, epochs=2, amp=True)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] and torch.isfinite(torch.tensor(hist[-1]["train_loss"]))


def test_collapse_guard_stops_restores_the_best_epoch_and_finishes_the_checkpoint(tmp_path):
    """A robust validation accuracy that collapses (here: the 'attack' blanks the images from the 3rd
    validation on, as catastrophic overfitting would make PGD succeed) stops training at that epoch."""
    calls = {"n": 0}

    def blanking(model, x, y):
        calls["n"] += 1
        return x if calls["n"] <= 2 else torch.zeros_like(x)

    ckpt = tmp_path / "co.pt"
    val = data.Loader(_toy(seed=1), 512)
    model, hist = _run(6, ckpt, val=val, val_attack=blanking, collapse=0.2)
    assert [r["epoch"] for r in hist] == [1, 2, 3] and hist[-1].get("collapsed") == 1.0
    assert "collapsed" not in hist[0] and hist[-1]["val_robust_acc"] < 0.6
    best = training.load_best(_model(), ckpt)
    assert best["epoch"] in (1, 2)
    restored = training.load_checkpoint(ckpt)["model"]
    assert all(torch.equal(v, restored[k]) for k, v in model.state_dict().items())  # the best weights
    _, again = _run(6, ckpt, val=val, val_attack=blanking, collapse=0.2)  # finished: no more epochs
    assert again == hist


def test_collapse_guard_is_silent_when_robustness_holds_and_needs_an_attack():
    _, hist = _run(3, val=data.Loader(_toy(seed=1), 100), val_attack=lambda m, x, y: x, collapse=0.2)
    assert len(hist) == 3 and not any("collapsed" in r for r in hist)
    with pytest.raises(ValueError, match="collapse needs val and val_attack"):
        _run(1, collapse=0.2)
    with pytest.raises(ValueError, match="collapse must be in"):
        _run(1, val=data.Loader(_toy(seed=1), 100), val_attack=lambda m, x, y: x, collapse=2.0)
