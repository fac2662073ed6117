"""Pieces shared by the GAN models: building the block norm from a registry name, calling it, spectral norm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

import sabn
from sabn import Condition, ConditionalNorm

#: Norms that take a style feature map instead of a class id; they cannot sit in a class-conditional generator.
_STYLE_NORMS = ("adain", "saadain")


def build_block_norm(
    name: str,
    num_features: int,
    n_classes: int,
    norm_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module | None:
    """The normalisation layer of a generator block, built with :func:`sabn.build_norm`.

    ``name`` is a ``sabn`` registry name: a class-conditional one (``ccbn``, ``sabn``, ``auxbn``, ...) gets
    ``num_conditions=n_classes``; a plain one (``bn``, ``in``) ignores the class. ``"none"`` means no
    normalisation and returns ``None`` — no module, so no state-dict entries (the original AutoGAN cells have
    none) — which :func:`apply_norm` treats as the identity. ``norm_kwargs``
    (``init_std``, ``shared_init_std``, ``eps``, ``momentum`` ...) go to the layer's constructor.
    """
    if name == "none":
        return None
    if name in _STYLE_NORMS:
        raise ValueError(f"norm {name!r} is conditioned on a style feature map and cannot be used in a GAN generator")
    kwargs = dict(norm_kwargs or {})
    if sabn.is_conditional(name):  # also rejects unknown names, listing the valid ones
        if n_classes < 1:
            raise ValueError(f"norm {name!r} is class-conditional: n_classes must be >= 1, got {n_classes}")
        kwargs["num_conditions"] = n_classes
    return sabn.build_norm(name, num_features, **kwargs)


def apply_norm(layer: nn.Module | None, x: Tensor, y: Condition | None) -> Tensor:
    """``layer(x, y)`` for a conditional layer, ``layer(x)`` for a plain one, ``x`` when there is no layer.

    A conditional layer given ``y=None`` falls back to the condition set by :func:`sabn.conditioned`.
    """
    if layer is None:
        return x
    if isinstance(layer, ConditionalNorm):
        return layer(x, y)
    return layer(x)


def maybe_sn(module: nn.Module, enabled: bool, eps: float = 1e-12) -> nn.Module:
    """Wrap ``module`` in ``torch.nn.utils.spectral_norm`` (1 power iteration per training forward).

    This is the (non-parametrization) API the official code uses: its state-dict keys are ``weight_orig``,
    ``weight_u`` and ``weight_v``, so official checkpoints load as they are.
    """
    return spectral_norm(module, n_power_iterations=1, eps=eps) if enabled else module


def check_latent(z: Tensor, latent_dim: int, name: str) -> None:
    """Raise a clear error for a latent batch that is not of shape (N, latent_dim)."""
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{name}: expected z of shape (N, {latent_dim}), got {tuple(z.shape)}")


def projection(h: Tensor, embed: nn.Module | None, y: Tensor | None, name: str) -> Tensor:
    """The projection discriminator's class term ⟨embed(y), h⟩ per sample (zeros for an unconditional D)."""
    if embed is None:
        return torch.zeros(h.shape[0], dtype=h.dtype, device=h.device)
    if y is None:
        raise ValueError(f"{name} is class-conditional (projection): pass the labels y")
    return (embed(y) * h).sum(dim=1)
