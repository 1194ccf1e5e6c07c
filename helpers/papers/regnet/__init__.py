"""RegNet (Testa, Ali, Bianchi & Magli 2019; L. Volpato's thesis, Politecnico di Torino 2019): encoders trained
to put each class on a Gaussian N(mu_t e_c, sigma_t^2 I) in a d-dimensional latent space, a kurtosis term, and
their robustness to FGSM on MNIST and CIFAR-10. The document module of chapter 04, by concern:

- :mod:`~helpers.papers.regnet.params`: the chapter's parameter rules and cross-parameter checks;
- :mod:`~helpers.papers.regnet.losses`: the RegNet loss (covariance, simplified, kurtosis term) and kurtosis;
- :mod:`~helpers.papers.regnet.problems`: three-class MNIST problems, the synthetic 100-class problem;
- :mod:`~helpers.papers.regnet.encoders`: the training configuration, train-or-load, the registered
  ``mlp_encoder``, the 100-class numerics run;
- :mod:`~helpers.papers.regnet.gaussianity`: histogram RMSE, skewness and the averaged Gaussianity measures;
- :mod:`~helpers.papers.regnet.latent`: latent codes, attack losses, FGSM curves scored once per run, the
  gradient-masking check and its verdicts;
- :mod:`~helpers.papers.regnet.studies`: the chapter's experiments (latent studies, moments, seeds, suite table);
- :mod:`~helpers.papers.regnet.plots`: the chapter's figures.

The names below are the ones the chapter calls; importing the package registers ``mlp_encoder`` (so
:func:`helpers.core.models.load` rebuilds it from a checkpoint naming any of these modules).
"""

from helpers.papers.regnet import gaussianity, latent, losses, plots, problems, studies
from helpers.papers.regnet.encoders import (
    LatentConfig,
    SyntheticRun,
    mlp_encoder,
    schedule,
    train_encoder,
    train_synthetic,
    trained,
)
from helpers.papers.regnet.params import PARAMETERS, check_parameters

__all__ = [
    "PARAMETERS", "LatentConfig", "SyntheticRun", "check_parameters", "gaussianity", "latent", "losses",
    "mlp_encoder", "plots", "problems", "schedule", "studies", "train_encoder", "train_synthetic", "trained",
]  # fmt: skip
