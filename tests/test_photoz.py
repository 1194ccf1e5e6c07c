"""Photo-z pieces: the simulator, the document's architectures (parameter counts) and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.core.models import count_parameters
from helpers.papers.photoz import galaxies, metrics
from helpers.papers.photoz.model import PhotoZCNN, PhotoZInception


@pytest.mark.parametrize(
    "make,count",
    [
        (lambda: PhotoZInception(), 27_596_372),  # Table A1
        (lambda: PhotoZInception(i4_width=256), 45_720_660),  # i4's s2 branches at 256 (Section 4.3)
        (lambda: PhotoZInception(fc_width=2000), 48_722_852),  # fc0 widened to 2000
        (lambda: PhotoZCNN(), 13_461_008),  # Table A2
    ],
)
def test_parameter_counts_match_the_document(make, count):
    assert count_parameters(make()) == count


def test_architecture_details():
    m = PhotoZInception()
    assert m.fc0_in == 22_273 and PhotoZInception(i4_width=256).fc0_in == 38_657
    assert m.i0.out_channels == 240 and m.i2.out_channels == 476 and m.i4.out_channels == 348
    prelus = [mod for mod in m.modules() if isinstance(mod, torch.nn.PReLU)]
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(prelus) == len(convs) and all(
        p.num_parameters == c.out_channels for p, c in zip(prelus, convs, strict=True)
    )
    assert all(float(c.bias.mean()) == pytest.approx(0.1) for c in convs)
    small = PhotoZInception(0.25, 32)
    x, ebv = torch.randn(3, 5, 32, 32), torch.rand(3)
    out = small(x, ebv)
    assert out.shape == (3, 180)
    assert not torch.allclose(out, small(x, ebv + 1.0))  # ebv reaches the classifier
    assert PhotoZCNN(0.25, 32)(x, ebv).shape == (3, 180)
    with pytest.raises(ValueError, match="^width"):
        PhotoZInception(width=-1)


def test_metrics_on_known_inputs():
    zspec = torch.tensor([0.1, 0.2, 0.3, 0.1])
    dz = torch.tensor([0.01, -0.02, 0.10, 0.0])
    zphot = zspec + dz * (1 + zspec)
    m = metrics.photoz_metrics(zphot, zspec)
    assert m["bias"] == pytest.approx(0.0225)
    # median dz = 0.005; |dz - 0.005| = .005 .025 .095 .005 -> median 0.015
    assert m["sigma_mad"] == pytest.approx(1.4826 * 0.015)
    assert m["eta"] == pytest.approx(0.25)
    # A Gaussian dz of sigma 0.02 gives sigma_MAD ~ 0.02.
    g = torch.Generator().manual_seed(0)
    zs = torch.rand(200_000, generator=g) * 0.3
    zp = zs + 0.02 * torch.randn(200_000, generator=g, dtype=torch.float64).float() * (1 + zs)
    assert metrics.photoz_metrics(zp, zs)["sigma_mad"] == pytest.approx(0.02, rel=0.02)


def test_zphot_is_the_pdf_mean():
    logits = torch.full((2, 180), -1e9)
    logits[0, 18] = 0.0  # all mass in bin 18: centre (18.5)/180
    logits[1, [10, 30]] = 0.0  # half/half
    z = metrics.zphot_from_logits(logits)
    assert z[0].item() == pytest.approx(18.5 / 180)
    assert z[1].item() == pytest.approx(20.5 / 180)
    assert galaxies.redshift_bin(torch.tensor([0.0, 0.1029, 0.999, 1.2])).tolist() == [0, 18, 179, 179]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    import os

    os.environ["HELPERS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        return galaxies.simulate(galaxies.SimConfig(n=300, stamp=24, seed=3), workers=2)
    finally:
        os.environ.pop("HELPERS_CACHE")


def test_simulator_shapes_units_and_noise(sample):
    assert sample.images.shape == (300, 5, 24, 24) and sample.images.dtype == torch.float32
    assert sample.ebv.shape == (300,) and sample.z.shape == (300,)
    assert float(sample.z.min()) >= 0 and float(sample.z.max()) < 0.4
    assert float(sample.catalog["r"].max()) <= 17.77 and float(sample.catalog["r"].min()) >= 14.0
    assert float(sample.images.min()) < 0  # sky noise around zero: calibrated fluxes can be negative
    # Background RMS (a corner, where the galaxy's light is faintest) is at least the configured sky noise,
    # and the document's eps = 0.01 sits below it in every band.
    corner = sample.images[:, :, :3, :3].std(dim=(0, 2, 3))
    sky = torch.tensor(galaxies.SimConfig().sky_sigma)
    assert torch.all(corner > 0.9 * sky) and torch.all(sky > 0.01)
    # the centre is brighter than the corner in the r band
    assert float(sample.images[:, 2, 10:14, 10:14].mean()) > 10 * float(sample.images[:, 2, :3, :3].mean().abs())
    data = sample.tensor_data()
    assert data.y.max() < 180 and len(data.extra) == 1 and torch.equal(data.extra[0], sample.ebv)


def test_simulator_is_deterministic_by_seed(sample, tmp_path, monkeypatch):
    monkeypatch.setenv("HELPERS_CACHE", str(tmp_path))
    again = galaxies.simulate(galaxies.SimConfig(n=300, stamp=24, seed=3), workers=1)  # other worker count
    assert torch.equal(again.images, sample.images) and torch.equal(again.z, sample.z)
    other = galaxies.simulate(galaxies.SimConfig(n=50, stamp=24, seed=4), workers=1)
    assert not torch.equal(other.z, sample.z[:50])
    assert len(list(tmp_path.glob("photoz-*.pt"))) == 2  # cached, keyed by the configuration


def test_colours_and_sizes_follow_redshift(sample):
    z = sample.z.numpy()
    flux = (sample.catalog["flux_bulge"] + sample.catalog["flux_disk"]).numpy()
    g_r = -2.5 * np.log10(flux[:, 1] / flux[:, 2])
    assert np.corrcoef(g_r, z)[0, 1] > 0.3  # redder with redshift (the 4000 A break moves into r)
    assert np.corrcoef(np.log(sample.catalog["hlr_disk"].numpy()), z)[0, 1] < -0.2  # smaller farther away
    # the flux limit: fainter intrinsic luminosity only at low z
    faint = sample.catalog["absmag_r"].numpy() > -19.5
    assert z[faint].mean() < z[~faint].mean()


def test_attacks_perturb_the_images_only_in_flux_units():
    """Attacks on ``model(images, ebv)`` see ``x -> logits`` (evaluate.bind): ebv is never perturbed, the
    perturbation stays within eps, and unclipped fluxes keep their negative values."""
    from helpers.core import attacks, evaluate
    from helpers.core.data import TensorData

    torch.manual_seed(0)
    model = PhotoZInception(0.125, 16, input_scale=list(galaxies.SimConfig().sky_sigma)).eval()
    x = 0.05 * torch.randn(6, 5, 16, 16)  # sky-noise-like fluxes, many negative
    ebv = torch.rand(6) * 0.1
    data = TensorData(x, torch.randint(0, 180, (6,)), tuple(str(i) for i in range(180)), (ebv.clone(),))
    for atk in (attacks.make_attack("fgsm", 0.01, clip=None), attacks.make_attack("pgd", 0.01, alpha=1e-3, clip=None)):
        adv = evaluate.perturb(model, data, atk, batch_size=4)
        delta = adv.x - x
        assert float(delta.abs().max()) <= 0.01 + 1e-6 and float(delta.abs().max()) > 0.009
        assert torch.equal(adv.extra[0], ebv) and float(adv.x.min()) < 0
    fgsm = evaluate.perturb(model, data, attacks.make_attack("fgsm", 0.01, clip=None)).x
    assert torch.allclose((fgsm - x).abs(), torch.full_like(x, 0.01), atol=1e-6)  # every pixel moves by eps


def test_the_attack_budget_sits_below_the_sky_noise_in_every_band():
    """The issue's unit choice: the document's eps = 0.01 (nanomaggies) is below the background RMS of every
    band, in every profile."""
    from pathlib import Path

    import yaml

    sky = np.asarray(galaxies.SimConfig().sky_sigma)
    root = Path(__file__).resolve().parents[1]
    for profile in ("small", "medium", "full"):
        eps = (yaml.safe_load((root / "params" / profile / "01_photoz.yaml").read_text()) or {}).get("eps", 0.01)
        assert np.all(eps / sky < 1), (profile, eps / sky)
