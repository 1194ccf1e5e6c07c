"""A vision transformer whose tokens come from a small stack of convolutions (document 2, Sec. 2.1).

Dosovitskiy et al. (2021)'s ViT embeds linear projections of image patches. Without large-scale pre-training,
the document replaces that projection by convolutions, for their inductive bias (as in Xiao et al. 2021's
"early convolutions"). Here the stem is two 3x3 convolutions of stride 2, each followed by batch norm and the
activation: (B, 3, 32, 32) -> (B, dim, 8, 8), that is 64 tokens of size ``dim``. A learned position
embedding is added, ``depth`` pre-norm transformer blocks follow (multi-head self-attention with ``heads``
heads, then an MLP of ``mlp_ratio * dim`` hidden units, dropout ``dropout``), and the mean token goes through
a layer norm and a linear classifier.

Inputs (B, C, H, W) in [0, 1] (the first layer normalizes), H and W divisible by 4; outputs (B, num_classes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers.core.models.cifar_nets import ACTIVATIONS
from helpers.core.models.normalize import CIFAR_MEAN, CIFAR_STD, Normalize
from helpers.core.params import check_choice, check_fraction, check_int


class Block(nn.Module):
    """A pre-norm transformer block: ``x + MSA(LN(x))``, then ``x + MLP(LN(x))``; tokens (B, T, dim)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim),
            ACTIVATIONS[activation](),
            nn.Dropout(dropout),
            nn.Linear(mlp_ratio * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ConvViT(nn.Module):
    """ViT with a convolutional tokenizer; "ViT depth-dim" in the document's Fig. 3 (see module docstring)."""

    def __init__(
        self,
        depth: int = 4,
        dim: int = 128,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        *,
        heads: int = 4,
        mlp_ratio: int = 2,
        activation: str = "gelu",
        dropout: float = 0.0,
        mean: Sequence[float] = CIFAR_MEAN,
        std: Sequence[float] = CIFAR_STD,
    ) -> None:
        super().__init__()
        check_int("depth", depth, low=1)
        check_int("dim", dim, low=2)
        check_int("heads", heads, low=1)
        if dim % heads or dim % 2:
            raise ValueError(f"dim must be even and divisible by heads={heads} (got {dim})")
        check_int("mlp_ratio", mlp_ratio, low=1)
        check_choice("activation", activation, ACTIVATIONS)
        check_fraction("dropout", dropout)
        act = ACTIVATIONS[activation]
        self.normalize = Normalize(mean, std)
        self.tokenizer = nn.Sequential(
            nn.Conv2d(in_channels, dim // 2, 3, 2, 1, bias=False),
            nn.BatchNorm2d(dim // 2),
            act(),
            nn.Conv2d(dim // 2, dim, 3, 2, 1, bias=False),
            nn.BatchNorm2d(dim),
            act(),
        )
        tokens = (image_size // 4) ** 2
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio, activation, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.tokenizer(self.normalize(x)).flatten(2).transpose(1, 2)  # (B, T, dim)
        t = self.blocks(t + self.pos)
        return self.head(self.norm(t.mean(1)))
