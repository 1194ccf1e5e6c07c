"""Photometric redshifts under attack: Campagne (2020), on the networks of Pasquet et al. (2019).

- :mod:`~helpers.papers.photoz.galaxies`: simulated SDSS-like ugriz cutouts (GalSim), in nanomaggies.
- :mod:`~helpers.papers.photoz.model`: the Inception (Table A1), its Section 4.3 variants and the CNN (Table A2),
  registered as the ``"photoz"`` architecture.
- :mod:`~helpers.papers.photoz.metrics`: zphot, dz, bias, sigma_MAD, eta, and the bootstraps' statistics.
- :mod:`~helpers.papers.photoz.study`: the chapter's parameter rules, its samples and the training recipe.
- :mod:`~helpers.papers.photoz.threats`: the attacks of Table 1 (noise, FGSM, PGD, l2 PGD), unclipped fluxes.
- :mod:`~helpers.papers.photoz.tables`: Tables 1-3, our scores beside the document's.
"""
