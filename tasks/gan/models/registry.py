"""The GAN model registry: config name → (generator class, discriminator class, default kwargs, init scheme)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import nn

from .autogan import AutoGANGenerator32
from .biggan import BigGANDiscriminator32, BigGANGenerator32
from .init import init_weights
from .sngan import SNGANDiscriminator32, SNGANDiscriminator128, SNGANGenerator32, SNGANGenerator128


class GANSpec(NamedTuple):
    """One registry entry. ``defaults`` is the paper's configuration as one flat dict of constructor keywords;
    each key goes to whichever of G and D accepts it (``n_classes`` to both)."""

    generator: type[nn.Module]
    discriminator: type[nn.Module]
    defaults: Mapping[str, Any]
    init: str


_COMMON = {"latent_dim": 128, "bottom_width": 4}

#: Keyed by the names the configs use.
MODELS: dict[str, GANSpec] = {
    "sngan32": GANSpec(
        SNGANGenerator32, SNGANDiscriminator32,
        {"n_classes": 10, "norm": "sabn", "gf_dim": 256, "df_dim": 128, **_COMMON}, "xavier_uniform",
    ),
    "autogan32": GANSpec(  # the official code pairs AutoGAN's G with SNGAN-32's D
        AutoGANGenerator32, SNGANDiscriminator32,
        {"n_classes": 10, "norm": "sabn", "gf_dim": 256, "df_dim": 128, **_COMMON}, "xavier_uniform",
    ),
    "biggan32": GANSpec(
        BigGANGenerator32, BigGANDiscriminator32,
        {"n_classes": 10, "norm": "ccbn", "gf_dim": 64, "df_dim": 64, **_COMMON}, "N02",
    ),
    "sngan128": GANSpec(
        SNGANGenerator128, SNGANDiscriminator128,
        {"n_classes": 143, "norm": "sabn", "gf_dim": 64, "df_dim": 64, **_COMMON}, "xavier_uniform",
    ),
}


def model_names() -> list[str]:
    """Every registered GAN name, sorted."""
    return sorted(MODELS)


def _accepted(cls: type) -> set[str]:
    return {n for n, p in inspect.signature(cls).parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD}


def build_gan(name: str, init: str | None = None, **overrides: Any) -> tuple[nn.Module, nn.Module]:
    """Build and initialise the (generator, discriminator) pair registered as ``name``.

    ``overrides`` replace entries of the spec's defaults (e.g. ``norm="ccbn"``, ``gf_dim=32``,
    ``norm_kwargs={"init_std": 0.0}``); a key neither constructor accepts is an error. ``init`` overrides the
    spec's init scheme (see :func:`tasks.gan.models.init_weights`).
    """
    if name not in MODELS:
        raise ValueError(f"unknown GAN model {name!r}; valid: {', '.join(model_names())}")
    spec = MODELS[name]
    kwargs = {**spec.defaults, **overrides}
    g_keys, d_keys = _accepted(spec.generator), _accepted(spec.discriminator)
    unknown = sorted(set(kwargs) - g_keys - d_keys)
    if unknown:
        raise ValueError(
            f"{name}: unknown model argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(g_keys | d_keys))}"
        )
    gen = spec.generator(**{k: v for k, v in kwargs.items() if k in g_keys})
    dis = spec.discriminator(**{k: v for k, v in kwargs.items() if k in d_keys})
    scheme = spec.init if init is None else init
    return init_weights(gen, scheme), init_weights(dis, scheme)
