"""The document's defences, as transformations of a network (Sec. 4 and 5).

- PNI (He et al. 2019): trainable Gaussian noise on every weight, :func:`to_pni`.
- RSE (Liu et al. 2018): fixed Gaussian noise before every convolution, :func:`add_rse`; the prediction
  averages the softmax of several passes, :class:`Ensemble`.
- Spectral normalization (Miyato et al. 2018), :func:`spectral_normalize`, and a learnable low-rank projection
  of the input, :class:`LowRankInput` (two of the document's failed experiments).

Every function takes and returns an ``nn.Module`` on (B, 3, 32, 32) images in [0, 1]; PNI and RSE models are
randomized, also in eval mode (:func:`helpers.core.models.noise.is_randomized`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers.core.models.noise import GaussianNoise, NoisyConv2d, NoisyLinear
from helpers.core.params import check_int, check_nonnegative


def to_pni(model: nn.Module, alpha: float = 0.25) -> nn.Module:
    """Parametric noise injection on the weights of every convolution and linear layer (He et al. 2019).

    Each ``nn.Conv2d`` / ``nn.Linear`` becomes a :class:`~helpers.core.models.noise.NoisyConv2d` /
    :class:`~helpers.core.models.noise.NoisyLinear` with the same shape and weights, whose forward pass uses
    ``w + alpha_l * std(w) * N(0, I)`` with one trainable ``alpha_l`` per layer, in training and at eval.
    Modifies ``model`` in place and returns it.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d) and not isinstance(child, NoisyConv2d):
            new = NoisyConv2d(
                child.in_channels,
                child.out_channels,
                child.kernel_size,
                child.stride,
                child.padding,
                child.dilation,
                child.groups,
                child.bias is not None,
                alpha=alpha,
            )
        elif isinstance(child, nn.Linear) and not isinstance(child, NoisyLinear):
            new = NoisyLinear(child.in_features, child.out_features, child.bias is not None, alpha=alpha)
        else:
            to_pni(child, alpha)
            continue
        new.load_state_dict(child.state_dict(), strict=False)
        setattr(model, name, new)
    return model


def add_rse(model: nn.Module, sigma_init: float, sigma_inner: float) -> nn.Module:
    """Random self-ensemble (Liu et al. 2018): a Gaussian noise layer in front of every convolution.

    The first convolution (in module order) gets noise of std ``sigma_init``, the others ``sigma_inner``;
    the noise is fixed (not learned), unclipped (it acts on normalized inputs and on feature maps), and on at
    evaluation too. Modifies ``model`` in place and returns it.
    """
    check_nonnegative("sigma_init", sigma_init)
    check_nonnegative("sigma_inner", sigma_inner)
    first = [True]

    def visit(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d):
                sigma = sigma_init if first[0] else sigma_inner
                first[0] = False
                noise = GaussianNoise(sigma, clip=None)
                noise.rse = True  # marks the model as an RSE ensemble member (see has_rse)
                setattr(module, name, nn.Sequential(noise, child))
            else:
                visit(child)

    visit(model)
    return model


def has_rse(model: nn.Module) -> bool:
    """Whether ``model`` carries RSE noise layers (made by :func:`add_rse`): its prediction is an ensemble."""
    return any(getattr(m, "rse", False) for m in model.modules())


def spectral_normalize(model: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) of every convolution and linear layer, in place.

    Each weight is divided by the largest singular value of its (out, in * k * k) matrix, estimated by power
    iteration during training: every layer is then about 1-Lipschitz (for a convolution, the bound on the
    reshaped kernel is a proxy for the operator norm, not the exact constant).
    """
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(model.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m)
    return model


class LowRankInput(nn.Module):
    """``x -> mu + W W^T (x - mu)`` on flattened images: a learnable projection of rank ``W.shape[1]``.

    ``W`` (D, r) starts at the top-r principal directions of the training images (a PCA projection) and is
    trained with the network; ``mu`` (D,) is the fixed training mean. Output has the input's shape; no
    clipping (the projection is part of the model, not of the threat model).
    """

    def __init__(self, basis: torch.Tensor, mean: torch.Tensor, shape: Sequence[int] = (3, 32, 32)) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.W = nn.Parameter(basis.detach().clone().float())
        self.register_buffer("mu", mean.detach().clone().float().flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1) - self.mu
        return (self.mu + (z @ self.W) @ self.W.T).view(-1, *self.shape)


class Ensemble(nn.Module):
    """Average the softmax of ``passes`` forward passes of a randomized ``model``; returns log-probabilities.

    RSE's prediction (Liu et al. 2018). ``argmax`` of the output is the ensemble's class. With a
    deterministic model all passes agree and the output is ``log_softmax(model(x))``.
    """

    def __init__(self, model: nn.Module, passes: int) -> None:
        super().__init__()
        self.model = model
        self.passes = check_int("passes", passes, low=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([self.model(x).float().softmax(-1) for _ in range(self.passes)]).mean(0)
        return probs.clamp_min(1e-12).log()
