"""Simulated SDSS-like ugriz galaxy cutouts for the photo-z chapter (GalSim).

The document (Campagne 2020) uses SDSS DR12 cutouts from Pasquet et al. (2019), which cannot be had offline, so
we simulate a flux-limited sample with the same geometry and noise regime:

- **Population.** Redshifts and absolute magnitudes are drawn from a comoving volume element (flat LCDM,
  H0 = 70 km/s/Mpc, Omega_m = 0.3) and a Schechter luminosity function (Blanton et al. 2003: M* = -21.2,
  alpha = -1.05), and kept when the observed r magnitude is within [r_min, r_max] (SDSS main sample:
  r <= 17.77). The selection gives the main sample's n(z) on [0, 0.4) (median about 0.1) without imposing it.
- **Galaxies.** A de Vaucouleurs bulge with the CWW elliptical template plus an exponential disk whose SED mixes
  the CWW Sbc, Scd and Im templates (Dirichlet weights), a bulge-to-total ratio per galaxy, random axis ratios
  and orientation, and a sub-pixel centroid offset. Half-light radii follow a size-luminosity relation and shrink
  with the angular-diameter distance, so sizes, brightness and colours all follow z.
- **Colours.** AB magnitudes of each template through GalSim's LSST u, g, r, i, z bandpasses (stand-ins for
  SDSS's), precomputed on a redshift grid and interpolated; the r-band K-correction comes from the same grid.
- **Reddening.** E(B-V) per galaxy (log-normal, median 0.03 mag) dims band b by R_b E(B-V) with SDSS's R_b
  (Schlafly & Finkbeiner 2011); the network receives E(B-V) as its extra input ``ebv``.
- **Observation.** 0.396 arcsec pixels, a Moffat PSF (beta = 3) with FWHM uniform in [1.0, 1.6] arcsec per
  galaxy, Gaussian sky noise per band, and the galaxy's own shot noise.
- **Units.** Pixels are nanomaggies (flux of an m = 22.5 AB source is 1), SDSS's calibrated unit; values can be
  negative. The sky noise RMS per band (``sky_sigma``: u 0.06, g 0.025, r 0.03, i 0.045, z 0.15 nmgy) puts the
  document's attack budget eps = 0.01 below the background noise in every band, as in its Figs 2 and 5: the
  ratio eps / sigma is 0.17, 0.40, 0.33, 0.22, 0.07.

Speed: the bulge and the disk are each drawn once per galaxy with unit flux (the PSF is shared by the bands), and
each band is a linear combination of the two, so a galaxy costs two GalSim draws instead of ten; galaxies are
spread over worker processes. All random draws depend only on (seed, galaxy index), so results do not depend on
the number of workers. Samples are cached on disk, keyed by every parameter of :class:`SimConfig`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from helpers.core.data import TensorData, cache_dir
from helpers.core.io import atomic_path
from helpers.core.params import check_int

BANDS = ("u", "g", "r", "i", "z")
TEMPLATES = ("E", "Sbc", "Scd", "Im")
EXTINCTION_R = np.array([4.239, 3.303, 2.285, 1.698, 1.263])  # A_b / E(B-V), SDSS ugriz (Schlafly & Finkbeiner 2011)
N_BINS = 180  # the network's redshift bins on [0, 1]
_VERSION = 1  # bump when the simulator changes: it is part of the cache key
_Z_GRID = np.linspace(0.0, 0.42, 43)


@dataclass(frozen=True)
class SimConfig:
    """Every knob of the simulation (all of them enter the cache key)."""

    n: int = 2000
    seed: int = 0
    stamp: int = 64  # cutout side, pixels
    pixel_scale: float = 0.396  # arcsec per pixel (SDSS)
    r_min: float = 14.0  # bright limit, AB mag
    r_max: float = 17.77  # SDSS main-sample limit, AB mag
    z_max: float = 0.4
    fwhm_min: float = 1.0  # Moffat PSF FWHM range, arcsec
    fwhm_max: float = 1.6
    moffat_beta: float = 3.0
    sky_sigma: tuple[float, ...] = (0.06, 0.025, 0.03, 0.045, 0.15)  # nanomaggies per pixel, ugriz
    counts_per_nmgy: float = 150.0  # sets the galaxies' own shot noise
    ebv_median: float = 0.03  # mag

    def key(self) -> str:
        blob = json.dumps({"version": _VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Galaxies:
    """A simulated sample: images (N, 5, S, S) float32 in nanomaggies, ``ebv`` (N,), ``z`` (N,) spectroscopic
    redshift, ``catalog`` (the true parameters: r magnitude, bulge fraction, sizes, PSF FWHM, ...)."""

    images: torch.Tensor
    ebv: torch.Tensor
    z: torch.Tensor
    catalog: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return int(self.z.shape[0])

    def subset(self, index: torch.Tensor) -> Galaxies:
        return Galaxies(
            self.images[index], self.ebv[index], self.z[index], {k: v[index] for k, v in self.catalog.items()}
        )

    def tensor_data(self) -> TensorData:
        """As :class:`~helpers.core.data.TensorData`: x = images, y = redshift bin, extra = (ebv,)."""
        classes = tuple(f"{i / N_BINS:.4f}" for i in range(N_BINS))
        return TensorData(self.images, redshift_bin(self.z), classes, (self.ebv,))


def redshift_bin(z: torch.Tensor) -> torch.Tensor:
    """The one-hot target's index: bins of width 1/180 on [0, 1]."""
    return (z * N_BINS).long().clamp_(0, N_BINS - 1)


def _cosmology(z: np.ndarray, h0: float = 70.0, om: float = 0.3) -> dict[str, np.ndarray]:
    """Comoving distance, luminosity distance (Mpc) and dV/dz (arbitrary units) in flat LCDM on a z grid."""
    c = 299792.458
    zz = np.linspace(0, z.max(), 4001)
    e = np.sqrt(om * (1 + zz) ** 3 + 1 - om)
    dc_grid = np.concatenate([[0], np.cumsum(np.diff(zz) * 0.5 * (1 / e[1:] + 1 / e[:-1]))]) * c / h0
    dc = np.interp(z, zz, dc_grid)
    ez = np.sqrt(om * (1 + z) ** 3 + 1 - om)
    return {"dc": dc, "dl": dc * (1 + z), "da": dc / (1 + z), "dvdz": dc**2 / ez}


@functools.lru_cache(maxsize=1)
def template_magnitudes() -> np.ndarray:
    """AB magnitudes (templates, z grid, bands) of the CWW templates through the LSST ugriz bandpasses.

    The templates are normalised arbitrarily; only differences (colours, K-corrections) are used.
    """
    cache = cache_dir() / f"photoz-templates-v{_VERSION}.npy"
    if cache.exists():
        return np.load(cache)
    import galsim

    share = galsim.meta_data.share_dir
    bandpasses = [
        galsim.Bandpass(os.path.join(share, "bandpasses", f"LSST_{b}.dat"), wave_type="nm").withZeropoint("AB")
        for b in BANDS
    ]
    mags = np.empty((len(TEMPLATES), len(_Z_GRID), len(BANDS)))
    for t, name in enumerate(TEMPLATES):
        sed = galsim.SED(os.path.join(share, "SEDs", f"CWW_{name}_ext.sed"), wave_type="Ang", flux_type="flambda")
        for i, z in enumerate(_Z_GRID):
            s = sed.atRedshift(float(z))
            mags[t, i] = [s.calculateMagnitude(bp) for bp in bandpasses]
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, mags)
    return mags


def _sample_population(cfg: SimConfig) -> dict[str, np.ndarray]:
    """Draw n galaxies passing the magnitude limits (vectorised rejection sampling)."""
    rng = np.random.default_rng([cfg.seed, 0])
    mags = template_magnitudes()
    colour = mags - mags[:, :, 2:3]  # m_b - m_r per template and z
    kcorr = mags[:, :, 2] - mags[:, :1, 2]  # r-band K-correction (band-shift part) per template
    zg = np.linspace(1e-3, cfg.z_max, 2000)
    cdf_z = np.cumsum(_cosmology(zg)["dvdz"])
    cdf_z /= cdf_z[-1]
    mstar, alpha = -21.2, -1.05
    mg = np.linspace(-23.5, -16.0, 2000)
    lum = 10 ** (-0.4 * (mg - mstar))
    cdf_m = np.cumsum(lum ** (alpha + 1) * np.exp(-lum))
    cdf_m /= cdf_m[-1]
    out: dict[str, list[np.ndarray]] = {}
    kept = 0
    while kept < cfg.n:
        m = 40 * (cfg.n - kept) + 1000
        z = np.interp(rng.random(m), cdf_z, zg)
        absmag = np.interp(rng.random(m), cdf_m, mg)
        bt = rng.beta(1.2, 2.0, m)  # bulge-to-total flux ratio in r
        w = rng.dirichlet([1.0, 1.0, 1.0], m)  # disk SED: Sbc, Scd, Im weights
        ebv = np.clip(cfg.ebv_median * np.exp(0.6 * rng.standard_normal(m)), 0.003, 0.3)
        # Per-band flux ratios to r of each component at its redshift.
        ratio = 10 ** (-0.4 * np.stack([np.interp(z, _Z_GRID, colour[t, :, b]) for t in range(4) for b in range(5)], 1))
        ratio = ratio.reshape(m, 4, 5)
        k = 10 ** (-0.4 * np.stack([np.interp(z, _Z_GRID, kcorr[t]) for t in range(4)], 1))  # (m, 4)
        mix = np.concatenate([bt[:, None], (1 - bt)[:, None] * w], 1)  # (m, 4) r-flux share per template
        k_mix = -2.5 * np.log10((mix * k).sum(1))
        dm = 5 * np.log10(_cosmology(z)["dl"] * 1e5)  # distance modulus (D_L in units of 10 pc)
        r = absmag + dm + k_mix + EXTINCTION_R[2] * ebv
        ok = (r >= cfg.r_min) & (r <= cfg.r_max)
        rows = {
            "z": z,
            "absmag_r": absmag,
            "r": r,
            "bulge_frac": bt,
            "ebv": ebv,
            "bulge_ratio": ratio[:, 0],
            "disk_ratio": (w[:, :, None] * ratio[:, 1:]).sum(1),
        }
        for key, v in rows.items():
            out.setdefault(key, []).append(v[ok])
        kept += int(ok.sum())
    pop = {k: np.concatenate(v)[: cfg.n] for k, v in out.items()}
    n = cfg.n
    # Sizes: disk half-light radius from a size-luminosity relation with 0.2 dex scatter, over D_A.
    r_disk_kpc = 4.0 * 10 ** (-0.1 * (pop["absmag_r"] + 21.0) + 0.2 * rng.standard_normal(n))
    da_kpc = _cosmology(pop["z"])["da"] * 1e3
    pop["hlr_disk"] = np.clip(r_disk_kpc / da_kpc * 206265.0, 0.4, 12.0)  # arcsec
    pop["hlr_bulge"] = np.clip(0.35 * pop["hlr_disk"] * 10 ** (0.1 * rng.standard_normal(n)), 0.3, 8.0)
    pop["q_disk"] = rng.uniform(0.25, 1.0, n)
    pop["q_bulge"] = rng.uniform(0.6, 1.0, n)
    pop["angle"] = rng.uniform(0, 180, n)
    pop["fwhm"] = rng.uniform(cfg.fwhm_min, cfg.fwhm_max, n)
    pop["offset"] = rng.uniform(-0.5, 0.5, (n, 2))
    # Band fluxes (nanomaggies) of each component, dimmed by the galactic extinction.
    f_r = 10 ** (-0.4 * (pop["r"] - 22.5))  # observed total r flux, extinction included
    dim = 10 ** (-0.4 * (EXTINCTION_R[None, :] - EXTINCTION_R[2]) * pop["ebv"][:, None])
    pop["flux_bulge"] = (f_r * pop["bulge_frac"])[:, None] * pop["bulge_ratio"] * dim
    pop["flux_disk"] = (f_r * (1 - pop["bulge_frac"]))[:, None] * pop["disk_ratio"] * dim
    return pop


def _draw_chunk(args: tuple[SimConfig, int, dict[str, np.ndarray]]) -> np.ndarray:
    """Render galaxies ``start..start+len`` of the population (a worker's share)."""
    import galsim

    cfg, start, pop = args
    n, s = len(pop["z"]), cfg.stamp
    out = np.empty((n, len(BANDS), s, s), dtype=np.float32)
    gsp = galsim.GSParams(maximum_fft_size=4096)
    sky = np.asarray(cfg.sky_sigma, dtype=np.float64)[:, None, None]
    for i in range(n):
        psf = galsim.Moffat(beta=cfg.moffat_beta, fwhm=float(pop["fwhm"][i]), gsparams=gsp)
        angle = float(pop["angle"][i]) * galsim.degrees
        bulge = galsim.DeVaucouleurs(half_light_radius=float(pop["hlr_bulge"][i]), gsparams=gsp)
        disk = galsim.Exponential(half_light_radius=float(pop["hlr_disk"][i]), gsparams=gsp)
        comps = []
        for prof, q in ((bulge, pop["q_bulge"][i]), (disk, pop["q_disk"][i])):
            prof = prof.shear(q=float(q), beta=angle)
            img = galsim.Convolve(prof, psf).drawImage(
                nx=s, ny=s, scale=cfg.pixel_scale, offset=tuple(map(float, pop["offset"][i]))
            )
            comps.append(img.array.astype(np.float64))
        clean = pop["flux_bulge"][i][:, None, None] * comps[0] + pop["flux_disk"][i][:, None, None] * comps[1]
        rng = np.random.default_rng([cfg.seed, 1, start + i])
        sigma = np.sqrt(sky**2 + np.clip(clean, 0, None) / cfg.counts_per_nmgy)
        out[i] = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
    return out


def simulate(cfg: SimConfig, *, workers: int | None = None) -> Galaxies:
    """Simulate (or load from the cache) ``cfg.n`` galaxies. See the module docstring for the model."""
    check_int("n", cfg.n, low=1)
    check_int("stamp", cfg.stamp, low=8)
    path = cache_dir() / f"photoz-{cfg.key()}.pt"
    if path.exists():
        blob = torch.load(path, weights_only=True)
        return Galaxies(blob["images"], blob["ebv"], blob["z"], blob["catalog"])
    from helpers.core.progress import bar

    pop = _sample_population(cfg)
    workers = workers or max(1, min(os.cpu_count() or 1, 16))
    size = max(1, -(-cfg.n // (4 * workers)))
    chunks = [(cfg, a, {k: v[a : a + size] for k, v in pop.items()}) for a in range(0, cfg.n, size)]
    with ProcessPoolExecutor(workers) as pool:
        parts = list(bar(pool.map(_draw_chunk, chunks), total=len(chunks), desc="simulate galaxies"))
    images = torch.from_numpy(np.concatenate(parts))
    catalog = {
        k: torch.from_numpy(np.ascontiguousarray(pop[k], dtype=np.float32))
        for k in ("r", "absmag_r", "bulge_frac", "hlr_disk", "hlr_bulge", "fwhm", "flux_bulge", "flux_disk")
    }
    gal = Galaxies(
        images, torch.from_numpy(pop["ebv"].astype(np.float32)), torch.from_numpy(pop["z"].astype(np.float32)), catalog
    )
    with atomic_path(path) as tmp:
        torch.save({"images": gal.images, "ebv": gal.ebv, "z": gal.z, "catalog": gal.catalog}, tmp)
    return gal


def sample_path(cfg: SimConfig) -> Path:
    """Where :func:`simulate` caches ``cfg``'s sample."""
    return cache_dir() / f"photoz-{cfg.key()}.pt"
