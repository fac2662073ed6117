"""Hinge GAN losses (SNGAN, AutoGAN, BigGAN and the SaBN code all use them)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def d_hinge_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """L_D = E[relu(1 − D(x, y))] + E[relu(1 + D(G(z, ỹ), ỹ))]; each term is a mean over its own batch, so real
    and fake batches may differ in size."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: Tensor) -> Tensor:
    """L_G = −E[D(G(z, ỹ), ỹ)]."""
    return -fake_logits.mean()
