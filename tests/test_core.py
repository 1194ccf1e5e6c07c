"""Device utilities, models, results records, and the environment files."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import tomllib
import torch
import yaml

from helpers import lock, results
from helpers.core import device, models

ROOT = Path(__file__).resolve().parents[1]


def test_get_device_defaults_and_override(monkeypatch):
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    assert device.get_device() == torch.device("cpu")
    monkeypatch.delenv("HELPERS_DEVICE")
    assert device.get_device().type in ("cuda", "mps", "cpu")
    with pytest.raises(ValueError, match="^device"):
        device.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            device.get_device("cuda")


def test_seed_everything_reproduces_numbers():
    g1 = device.seed_everything(123)
    a = (torch.randn(5), torch.rand(3, generator=g1))
    g2 = device.seed_everything(123)
    b = (torch.randn(5), torch.rand(3, generator=g2))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def test_autocast_channels_last_and_throughput_on_cpu(monkeypatch):
    monkeypatch.setenv("HELPERS_AMP", "0")  # bf16 on the CPU is tested in test_training (it depends on a probe)
    with device.autocast("cpu"):
        assert torch.ones(2, 2).mm(torch.ones(2, 2)).dtype == torch.float32
    m = device.channels_last(torch.nn.Conv2d(3, 4, 3), "cpu")
    assert next(m.parameters()).is_contiguous()
    with device.Throughput("cpu") as t:
        t.add(100)
    assert t.items == 100 and t.items_per_s > 0


def test_run_metadata_records_versions():
    meta = device.run_metadata("cpu")
    assert meta["device"] == "cpu" and meta["packages"]["torch"] == torch.__version__.split("+")[0]
    assert set(meta) >= {"python", "platform", "packages", "git_revision"}


def test_small_cnn_parameter_count_and_normalization_layer():
    model = models.build("small_cnn", "mnist", width=32)
    assert models.count_parameters(model) == 421_642
    assert isinstance(model.net[0], models.Normalize)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert models.build("small_cnn", "cifar10", width=8)(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="^model"):
        models.build("resnet9000", "mnist")
    with pytest.raises(ValueError, match="^dataset"):
        models.build("small_cnn", "imagenet")


@pytest.mark.parametrize("depth,tv_name", [(18, "resnet18"), (34, "resnet34"), (50, "resnet50")])
def test_resnet_matches_torchvision_with_a_small_input_stem(depth, tv_name):
    import torchvision

    from helpers.core.models.resnet import ResNet

    ours = ResNet(depth, in_channels=3, num_classes=10, width=64)
    tv = getattr(torchvision.models, tv_name)(num_classes=10)
    tv.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    assert models.count_parameters(ours) == models.count_parameters(tv)
    if depth == 18:
        assert models.count_parameters(ours) == 11_173_962
    small = models.build(f"resnet{depth}", "mnist", width=4)
    assert small(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match="^depth"):
        ResNet(101)


def test_run_writes_results_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no claims file here: the run records numbers, models and its metadata
    run = results.Run("99_test", "Test", profile="small", seed=[0, 1], device="cpu", params={"eps": torch.tensor(0.1)})
    run.glue("acc", 0.5, "{:.0%}")
    run.finish(tmp_path)
    saved = json.loads((tmp_path / "99_test.json").read_text())
    assert saved["profile"] == "small" and saved["seeds"] == [0, 1] and saved["device"] == "cpu"
    assert saved["wall_time_s"] >= 0 and saved["metadata"]["packages"]["torch"]
    assert saved["claims"] == [] and saved["missing_claims"] == []
    assert saved["numbers"]["acc"] == 0.5 and saved["params"]["eps"] == pytest.approx(0.1)


def _pyproject_deps() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    out = {}
    for d in deps:
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", d).groups()
        out[name.lower()] = spec.replace(" ", "")
    return out


def test_environment_yml_agrees_with_pyproject_and_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {}
    for d in pip:
        if d.startswith("-"):
            continue
        name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", d).groups()
        listed[name.lower()] = spec.replace(" ", "")
    assert listed == _pyproject_deps()
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert py.replace(" ", "") == f"python={_lock_header()['python_version']}", "conda's Python is the lock's"
    assert f"-c {lock.LOCK_FILE}" in pip, "conda users install the tested versions, as make does"
    assert "-e ." in pip


def _lock_header() -> dict[str, str]:
    text = (ROOT / lock.LOCK_FILE).read_text()
    return dict(re.findall(r"^# (\w+): (.*)$", text, flags=re.MULTILINE))


def test_lock_pins_the_tested_set_within_pyproject_bounds():
    from packaging.requirements import Requirement

    pins = lock.read_pins(ROOT / lock.LOCK_FILE)
    # DEVELOPERS.md: the offline machines carry exactly these builds, and the book's numbers come from them.
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in meta["dependencies"] + meta["optional-dependencies"]["dev"]:
        req = Requirement(dep)
        assert not any(s.operator == "==" for s in req.specifier), f"pyproject pins {dep}: use a lower bound"
        name = lock.canonical(req.name)
        assert name in pins, f"{name} is not in {lock.LOCK_FILE}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{lock.LOCK_FILE}: {name}=={pins[name]} ∉ {dep}"
    assert meta["name"] not in pins, "the lock pins dependencies, not the book's own package"


def test_lock_is_written_from_pips_report_and_read_back(tmp_path):
    report = {
        "install": [
            {"download_info": {"url": "file:///book", "dir_info": {}}, "metadata": {"name": "book", "version": "1"}},
            {"download_info": {"url": "https://x/b.whl"}, "metadata": {"name": "Zeta_Pkg", "version": "2.0"}},
            {"download_info": {"url": "https://x/a.whl"}, "metadata": {"name": "alpha", "version": "1.0.post1"}},
        ]
    }
    pins = lock.pins_from_report(report)
    assert list(pins.items()) == [("alpha", "1.0.post1"), ("zeta-pkg", "2.0")]  # sorted, no project, PEP 503
    path = tmp_path / "c.txt"
    path.write_text(lock.render(pins))
    assert lock.read_pins(path) == pins
    path.write_text("alpha>=1.0\n")
    with pytest.raises(ValueError, match="^path: line 1"):
        lock.read_pins(path)


def test_this_environment_is_the_locked_one():
    """``make`` installs with the lock: everything the project (with ``dev``) needs here is pinned, at the
    version installed. Fails when a dependency was added without ``make lock``, or the lock changed without
    ``make setup``."""
    from importlib import metadata

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = lock.read_pins(ROOT / lock.LOCK_FILE)
    needed = set(lock.installed_closure(meta["dependencies"] + meta["optional-dependencies"]["dev"]))
    assert {"torch", "numpy", "jupyter-book", "sphinx"} <= needed  # the walk follows requirements transitively
    missing = sorted(needed - set(pins))
    assert not missing, f"not in {lock.LOCK_FILE}: {missing}; run `make lock`"
    stale = {n: (metadata.version(n), pins[n]) for n in needed if metadata.version(n) != pins[n]}
    assert not stale, f"installed != locked (installed, locked): {stale}; run `make setup`"


def test_pipeline_script_runs_a_notebook_with_injected_parameters(tmp_path):
    from helpers import pipeline

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params" / "small").mkdir(parents=True)
    source = (
        "# %% [markdown]\n# A page.\n\n"
        '# %% tags=["parameters"]\nprofile = "medium"\nsteps = 2  # count\n\n'
        "# %%\nimport pathlib\n"
        "pathlib.Path('out.txt').write_text(f'{profile} {steps} {scale}')\n"
    )
    (tmp_path / "notebooks" / "99_toy.py").write_text(source)
    (tmp_path / "params" / "small" / "99_toy.yaml").write_text("steps: 7\n")
    text = pipeline.script_source(tmp_path / "notebooks" / "99_toy.py", {"profile": "small", "steps": 7})
    assert text.index("steps = 2") < text.index("steps = 7") < text.index("import pathlib")
    assert text.splitlines().index("import pathlib") == source.splitlines().index("import pathlib")  # line numbers kept
    pipeline.run_script("99_toy", "small", overrides=[("scale", "0.5")], root=tmp_path)
    assert (tmp_path / "out.txt").read_text() == "small 7 0.5"  # profile yaml, then -p overrides, cwd = root
    (tmp_path / "notebooks" / "98_bad.py").write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="parameters"):
        pipeline.script_source(tmp_path / "notebooks" / "98_bad.py", {})


def test_git_revision_ignores_the_pipelines_own_records(tmp_path):
    """A chapter run rewrites book/timings.json; that must not mark the runs after it as built from dirty code."""
    from helpers.core.device import git_revision

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "timings.json").write_text("[]")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    clean = git_revision(tmp_path)
    assert clean is not None and len(clean) == 12 and "dirty" not in clean
    (tmp_path / "book" / "timings.json").write_text("[{}]")
    assert git_revision(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == f"{clean}-dirty"
    assert git_revision(tmp_path / "book") == f"{clean}-dirty"  # from a subfolder too
