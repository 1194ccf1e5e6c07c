"""Chapter 3 (MAT-Rand / WRN): new architectures and their sizes, noise layers and EOT, the training schemes'
batch composition, and checkpoint selection on the validation split."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.core import attacks, data, evaluate, models, training
from helpers.core.device import seed_everything
from helpers.core.models import cifar_nets, noise
from helpers.papers import matrand


# ---------------------------------------------------------------- architectures and parameter counts
@pytest.mark.parametrize(
    "name,width,expected",
    [
        ("basicnet", 6, 62_006),  # the course's basic CNN (PyTorch's CIFAR-10 tutorial network)
        ("resnet20", 16, 269_722),  # He et al. (2016): "0.27M"
        ("noisenet20", 16, 269_742),  # + one PNI scale for each of 19 convolutions and the linear layer
        ("vgg11", 64, 9_231_114),  # VGG-11 with batch norm and a single linear layer for 32x32 inputs
        ("resnet18", 64, 11_173_962),  # the document's "wide ResNet-18, around 11 million"
        ("resnet18", 80, 17_454_170),  # the final recipe's wider ResNet-18, "17 million"
    ],
)
def test_parameter_counts_match_the_document(name, width, expected):
    assert models.count_parameters(models.build(name, "cifar10", width)) == expected


def test_document_sizes_are_within_its_stated_ranges():
    count = lambda n, w: models.count_parameters(models.build(n, "cifar10", w))  # noqa: E731
    assert 0.25e6 <= count("resnet20", 16) <= 0.28e6  # "about 250k" (document), 0.27M (He et al.)
    assert 9e6 <= count("vgg11", 64) <= 11e6
    assert 10.5e6 <= count("resnet18", 64) <= 11.5e6
    assert 16.5e6 <= count("resnet18", 80) <= 17.5e6


@pytest.mark.parametrize("name", ["basicnet", "resnet20", "noisenet20", "vgg11"])
def test_new_models_shapes_width_and_mnist(name):
    x = torch.rand(3, 3, 32, 32)
    narrow, wide = models.build(name, "cifar10", 4), models.build(name, "cifar10", 8)
    assert narrow(x).shape == (3, 10)
    assert models.count_parameters(wide) > models.count_parameters(narrow)
    assert models.build(name, "mnist", 4)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="^width"):
        models.build(name, "cifar10", 0)


def test_resnet20_option_a_shortcut_has_no_parameters():
    net = cifar_nets.ResNet20(width=16)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19  # stem + 18 in the blocks: no 1x1 projection convolutions
    block = net.layers[3]  # first block of stage 2: stride 2, 16 -> 32 channels
    out = block.shortcut(torch.rand(2, 16, 32, 32))
    assert out.shape == (2, 32, 16, 16)


# ---------------------------------------------------------------- noise injection and EOT
def test_gaussian_noise_is_active_at_eval_and_can_be_switched_off():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    net = noise.with_input_noise(base, 0.1).eval()
    x = torch.rand(5, 3, 2, 2)
    with torch.no_grad():
        a, b = net(x), net(x)
    assert not torch.equal(a, b)  # random in eval mode
    assert noise.is_randomized(net)
    assert models.count_parameters(net) == models.count_parameters(base)  # the wrapper adds nothing
    noise.set_noise(net, False)
    assert not noise.is_randomized(net)
    with torch.no_grad():
        assert torch.equal(net(x), base(x))
    with pytest.raises(ValueError, match="^sigma"):
        noise.GaussianNoise(-1.0)


def test_gaussian_noise_statistics_and_clipping():
    torch.manual_seed(0)
    layer = noise.GaussianNoise(0.2, clip=None).eval()
    x = torch.full((20000,), 0.5)
    d = layer(x) - x
    assert abs(float(d.mean())) < 0.01 and abs(float(d.std()) - 0.2) < 0.01
    clipped = noise.GaussianNoise(0.5).eval()(torch.zeros(1000))
    assert float(clipped.min()) >= 0.0 and float(clipped.max()) <= 1.0


def test_pni_noise_is_active_at_eval_trainable_and_scaled_by_weight_std():
    torch.manual_seed(0)
    net = models.build("noisenet20", "cifar10", 4).eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(net(x), net(x))
    scales, rest = noise.noise_parameters(net)
    assert len(scales) == 20 and all(float(s.detach()) == 0.25 for s in scales)
    assert len(rest) + len(scales) == len(list(net.parameters()))
    net(x).sum().backward()
    assert all(s.grad is not None and float(s.grad.abs()) > 0 for s in scales)  # alpha learns
    conv = noise.NoisyConv2d(3, 8, 3, bias=False)
    noise.set_noise(conv, False)
    assert torch.equal(conv(x), nn.functional.conv2d(x, conv.weight))
    # PNI-W perturbation: v + alpha * std(v) * N(0, 1), so its spread is alpha * std(v)
    pn = noise.ParametricNoise(0.5)
    v = torch.randn(100_000) * 3
    with torch.no_grad():
        spread = float((pn(v) - v).std())
    assert abs(spread - 0.5 * float(v.std())) < 0.05
    with pytest.raises(ValueError, match="^target"):
        noise.NoisyLinear(3, 2, target="bias")


def test_eot_attack_averages_over_noise_draws():
    """EOT's gradient is the mean of the per-draw gradients: with the generator replayed it equals their average,
    and averaging many draws gets closer to the expected gradient than one draw."""
    torch.manual_seed(0)
    base = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Tanh(), nn.Linear(3, 3))
    net = noise.with_input_noise(base, 0.3).eval()
    x, y = torch.rand(6, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(1)
    g_eot = attacks.input_gradient(net, x, y, eot_samples=4)
    torch.manual_seed(1)
    singles = [attacks.input_gradient(net, x, y) for _ in range(4)]
    torch.testing.assert_close(g_eot, torch.stack(singles).mean(0))
    torch.manual_seed(2)
    reference = attacks.input_gradient(net, x, y, eot_samples=2000)
    err_one = float((attacks.input_gradient(net, x, y) - reference).norm())
    err_eot = float((attacks.input_gradient(net, x, y, eot_samples=64) - reference).norm())
    assert err_eot < 0.5 * err_one


def test_chapter_attacks_respect_budgets_with_and_without_eot():
    torch.manual_seed(0)
    net = noise.with_input_noise(models.build("basicnet", "cifar10", 2), 0.05).eval()
    x, y = torch.rand(4, 3, 32, 32), torch.arange(4)
    threat = matrand.Threat(0.03, 0.01, 0.5, 0.2, 3)
    for eot in (1, 3):
        atk = matrand.attacks_for(threat, eot_samples=eot)
        assert atk["natural"] is None
        for name, bound, p in (("pgd_linf", 0.03, float("inf")), ("fgsm", 0.03, float("inf")), ("pgd_l2", 0.5, 2)):
            adv = atk[name](net, x, y)
            assert adv.shape == x.shape and float(adv.min()) >= 0 and float(adv.max()) <= 1
            assert float((adv - x).flatten(1).norm(p=p, dim=1).max()) <= bound + 1e-5
    with pytest.raises(ValueError, match="^eot_samples"):
        matrand.attacks_for(threat, eot_samples=0)


# ---------------------------------------------------------------- MAT-Rand batch composition
def _recording_threat_adversary(kind: str, **kw) -> tuple[training.Adversary, list[str]]:
    """The chapter's adversary with its attacks replaced by markers that record which one ran."""
    adv = matrand.make_adversary(kind, matrand.Threat(), **kw)
    used: list[str] = []

    def marker(name: str, value: float):
        def atk(m, x, y):
            used.append(name)
            return torch.full_like(x, value)

        return atk

    if isinstance(adv, training.MixedAdversary):
        for name, value in (("pgd_linf", 0.25), ("pgd_l2", 0.75)):
            adv.attacks[name] = marker(name, value)
    return adv, used


def test_mat_rand_uses_both_norms_half_and_half_and_whole_batches():
    adv, used = _recording_threat_adversary("mat_rand", seed=3)
    model, g = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 3, 2, 2), torch.zeros(8, dtype=torch.long)
    for _ in range(2000):
        out, mask = adv(model, x, y, progress=0.0, generator=g)
        assert bool(mask.all())  # every sample of the batch is adversarial ...
        assert len(torch.unique(out)) == 1  # ... and made by one attack: the choice is per batch
    share = used.count("pgd_linf") / len(used)
    assert set(used) == {"pgd_linf", "pgd_l2"} and abs(share - 0.5) < 0.04
    assert adv.counts["pgd_linf"] + adv.counts["pgd_l2"] == 2000


def test_recipe_mixes_natural_batches_in_the_intended_proportion():
    adv, used = _recording_threat_adversary("recipe", natural_fraction=0.05, seed=0)
    model, g = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 3, 2, 2), torch.zeros(8, dtype=torch.long)
    natural = 0
    for _ in range(4000):
        out, mask = adv(model, x, y, progress=0.0, generator=g)
        if not mask.any():
            natural += 1
            assert torch.equal(out, x)  # a natural batch is trained on as is
    assert abs(natural / 4000 - 0.05) < 0.012
    assert abs(used.count("pgd_linf") / len(used) - 0.5) < 0.04
    assert adv.counts["natural"] == natural


def test_mat_max_keeps_the_worse_norm_per_sample_and_training_schemes_validate():
    torch.manual_seed(0)
    model = models.build("basicnet", "cifar10", 2).eval()
    x, y = torch.rand(6, 3, 32, 32), torch.arange(6)
    threat = matrand.Threat(0.03, 0.01, 0.5, 0.2, 2)
    adv = matrand.make_adversary("mat_max", threat)
    out, mask = adv(model, x, y, progress=0.0, generator=torch.Generator().manual_seed(0))
    assert bool(mask.all()) and sum(adv.counts[k] for k in ("pgd_linf", "pgd_l2")) == 6
    assert matrand.make_adversary("natural", threat) is None
    assert isinstance(matrand.make_adversary("pgd_l2", threat), training.Adversary)
    with pytest.raises(ValueError, match="^training"):
        matrand.make_adversary("mat_min", threat)
    with pytest.raises(ValueError, match="^natural_fraction"):
        matrand.make_adversary("recipe", threat, natural_fraction=1.5)


def test_mixed_adversary_max_mode_accepts_the_natural_candidate():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    x, y = torch.rand(5, 3, 2, 2), torch.zeros(5, dtype=torch.long)
    adv = training.MixedAdversary({"noise": lambda m, x, y: (x + 0.1).clamp(0, 1), "natural": None}, mode="max")
    out, mask = adv(model, x, y, progress=0.0, generator=torch.Generator())
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        per = loss(model(out), y, reduction="none")
        assert torch.all(per >= loss(model(x), y, reduction="none") - 1e-6)


def test_threat_with_eps_keeps_the_step_ratio():
    t = matrand.Threat(0.03, 0.0075, 0.5, 0.125, 10)
    t2 = t.with_eps(0.06)
    assert t2.eps_linf == 0.06 and abs(t2.alpha_linf - 0.015) < 1e-12 and t2.eps_l2 == 0.5
    with pytest.raises(ValueError, match="^steps"):
        matrand.Threat(steps=0)


def test_step_schedule_drops_at_fractions():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = matrand.step_schedule(opt, 50, [0.6, 0.8])
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[29] == pytest.approx(0.01) and lrs[30] == pytest.approx(0.001) and lrs[40] == pytest.approx(1e-4)


# ---------------------------------------------------------------- checkpoint selection on the validation split
def _toy(n: int, seed: int) -> data.TensorData:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randint(0, 80, (n, 1, 8, 8), generator=g)
    x[y == 0, :, :, :4] += 100
    x[y == 1, :, :, 4:] += 100
    return data.TensorData(x.clamp(0, 255).to(torch.uint8), y, ("a", "b"))


def test_split_off_gives_a_disjoint_stratified_validation_split():
    full = _toy(400, 0)
    tagged = data.TensorData(full.x, full.y, full.classes, (torch.arange(len(full)),))
    rest, val = data.split_off(tagged, 0.1, seed=0)
    assert len(val) == 40 and len(rest) == 360
    assert not set(val.extra[0].tolist()) & set(rest.extra[0].tolist())
    assert torch.bincount(val.y).tolist() == [20, 20]


def test_fit_selected_keeps_the_best_validation_epoch_not_the_best_test_epoch(tmp_path):
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    train = data.Loader(_toy(256, 0), 32, shuffle=True, seed=0)
    val = data.Loader(_toy(64, 1), 64)
    test = data.Loader(_toy(64, 2), 64)
    atk = attacks.make_attack("fgsm", 0.15)
    calls = {"test": 0}

    def test_curve(m: nn.Module) -> float:
        calls["test"] += 1
        return -evaluate.accuracy(m, test, atk)  # reversed: test-set "selection" would pick another epoch

    history, best = matrand.fit_selected(
        model, train, val, val_attack=atk, checkpoint=tmp_path / "c.pt", test_curve=test_curve, optimizer=opt,
        epochs=5, adversary=training.Adversary(atk), seed=0,
    )  # fmt: skip
    val_curve = [r["val_robust_acc"] for r in history]
    assert calls["test"] == 5 and all("test_robust_acc" in r for r in history)
    test_vals = [r["test_robust_acc"] for r in history]
    assert test_vals.index(max(test_vals)) != val_curve.index(max(val_curve))  # the two choices differ here
    assert best["metric"] == max(val_curve)
    assert best["epoch"] == 1 + val_curve.index(max(val_curve))  # first epoch reaching the best validation value
    # the returned model holds the selected epoch's weights, as the checkpoint's "best" entry says
    state = training.load_checkpoint(tmp_path / "c.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["best"]["model"][k])
    # a finished checkpoint is reused: same history, same selection, no retraining and no new test evaluation
    again = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))
    history2, best2 = matrand.fit_selected(
        again, train, val, val_attack=atk, checkpoint=tmp_path / "c.pt", test_curve=test_curve,
        optimizer=torch.optim.SGD(again.parameters(), lr=0.5), epochs=5, seed=0,
    )  # fmt: skip
    assert history2 == history and best2 == best and calls["test"] == 5


# ---------------------------------------------------------------- grading: the document's attacks and the suite
def _tiny_test_set(n: int = 40) -> data.TensorData:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    return data.TensorData(x, torch.arange(n) % 10, tuple(str(c) for c in range(10)))


def test_grader_tables_name_attacks_average_draws_and_pair_the_gap():
    torch.manual_seed(0)
    base = models.build("basicnet", "cifar10", 2).eval()
    noisy = noise.with_input_noise(base, 0.05).eval()
    ds = _tiny_test_set()
    threat = matrand.Threat(0.03, 0.015, 0.5, 0.25, 2)
    grader = matrand.Grader(threat, ds, 20, budget="reduced", eot_samples=2, seed=0)
    assert len(grader.suite_data) == 20 and grader.suite_data.indices == grader.suite_positions.tolist()
    acc, sd = grader.table({"base": base, "noisy": noisy, "noisy, EOT": noisy}, eot={"noisy, EOT": True})
    lab = grader.labels(randomized=True)
    keys = ("natural", "pgd_linf", "pgd_l2", "fgsm", "suite_linf", "gap_linf", "suite_l2", "gap_l2")
    assert list(acc.index) == [lab[k] for k in keys]
    assert "PGD-2" in lab["pgd_linf"] and "APGD-T" in lab["suite_linf"] and "EOT-2" in lab["suite_linf"]
    # a randomized model: every accuracy is a mean over >= 10 draws, its suite attacks with EOT
    assert grader.document(noisy, "natural").draws >= evaluate.MIN_DRAWS
    assert grader.document(base, "natural").draws == 1 and (sd["base"].fillna(0) == 0).all()
    g = grader.grade(noisy)
    assert g.suite.eot_samples == 2 and g.robust.draws >= evaluate.MIN_DRAWS and g.clean.draws >= evaluate.MIN_DRAWS
    assert grader.grade(noisy) is g  # graded once
    assert acc.loc[lab["suite_linf"], "noisy"] == acc.loc[lab["suite_linf"], "noisy, EOT"]
    # the gap compares the document's PGD and the suite on the same images
    doc = grader.document(base, "pgd_linf").correct[grader.suite_positions].mean()
    assert acc.loc[lab["gap_linf"], "base"] == pytest.approx(float(doc) - grader.grade(base).robust_accuracy)
    # seeded per model: another grader, other order, same numbers
    again = matrand.Grader(threat, ds, 20, budget="reduced", eot_samples=2, seed=0)
    assert again.document(noisy, "fgsm").acc == grader.document(noisy, "fgsm").acc
    assert again.grade(base).robust_accuracy == grader.grade(base).robust_accuracy
    with pytest.raises(ValueError, match="budget"):
        matrand.Grader(threat, ds, 20, budget="huge", eot_samples=2)
    with pytest.raises(ValueError, match="n_suite"):
        matrand.Grader(threat, ds, 41, budget="reduced", eot_samples=2)
    text = matrand.with_spread(acc, sd)
    assert "±" in text.loc[lab["natural"], "noisy"] and "±" not in text.loc[lab["natural"], "base"]


def test_noise_wrapped_model_saves_and_loads_with_its_noise(tmp_path):
    torch.manual_seed(0)
    base = models.build("basicnet", "cifar10", 2)
    net = noise.with_input_noise(base, 0.05)
    assert net[1] is base  # shared, not copied
    back = models.load(models.save(net, tmp_path / "noisy.pt"))
    assert noise.is_randomized(back) and back[0].sigma == 0.05
    x = torch.rand(4, 3, 32, 32)
    torch.manual_seed(1)
    a = net.eval()(x)
    torch.manual_seed(1)
    assert torch.allclose(a, back(x))
    assert noise.with_input_noise(nn.Linear(2, 2), 0.1)[0].sigma == 0.1  # a bare module is still wrapped
