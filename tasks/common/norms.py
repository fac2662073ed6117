"""Building sabn norms from the ``norm`` config group."""

from __future__ import annotations

import functools
from collections.abc import Callable

from omegaconf import DictConfig
from torch import nn

import sabn

from .errors import UserError

_BN_LIKE = {"bn", "ccbn", "sabn", "auxbn", "saauxbn", "in", "sain"}
_CONDITIONAL_AFFINE = {"ccbn", "sabn", "auxbn", "saauxbn", "sain"}  # take init_std
_SHARED_AFFINE = {"sabn", "saauxbn", "sain", "saadain"}  # take shared_init_std


def check_norm(norm_cfg: DictConfig, allowed: tuple[str, ...], task: str) -> str:
    """The configured norm name, if ``task`` supports it (else a one-line error listing what it supports)."""
    name = str(norm_cfg.name)
    if name not in allowed:
        raise UserError(f"norm={name} is not available for the {task} task; choose one of: {', '.join(allowed)}")
    return name


def norm_factory(norm_cfg: DictConfig, num_conditions: int = 1, **extra: object) -> Callable[[int], nn.Module]:
    """``f(num_features) -> layer`` for the configured norm, passing each layer only the settings it takes."""
    name = str(norm_cfg.name)
    kwargs: dict[str, object] = {}
    if name in _BN_LIKE or name in ("adain", "saadain"):
        kwargs["eps"] = float(norm_cfg.eps)
    if name in _BN_LIKE:
        kwargs["momentum"] = float(norm_cfg.momentum)
    if name in sabn.norm_names() and sabn.is_conditional(name):
        kwargs["num_conditions"] = num_conditions
    if name in _CONDITIONAL_AFFINE:
        kwargs["init_std"] = float(norm_cfg.init_std)
    if name in _SHARED_AFFINE:
        kwargs["shared_init_std"] = float(norm_cfg.shared_init_std)
    kwargs.update(extra)
    return functools.partial(sabn.build_norm, name, **kwargs)
