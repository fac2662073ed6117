"""The norm registry: ``build_norm(name, num_features, **kwargs)`` keyed by the names the configs use."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .layers import (
    AdaptiveInstanceNorm2d,
    AuxBatchNorm2d,
    CategoricalConditionalBatchNorm2d,
    SandwichAdaIN,
    SandwichAuxBatchNorm2d,
    SandwichBatchNorm2d,
    SandwichInstanceNorm2d,
)

NormFactory = Callable[..., nn.Module]

_REGISTRY: dict[str, NormFactory] = {}
#: Names whose layers take an integer condition (ids or branches).
_CONDITIONAL: set[str] = set()
#: Keyword arguments that only conditional layers understand; plain layers drop them so that callers can build
#: every variant with the same call.
CONDITIONAL_KWARGS = ("num_conditions", "init_std", "shared_init_std")


def register_norm(name: str, conditional: bool = False) -> Callable[[NormFactory], NormFactory]:
    """Decorator adding a factory ``f(num_features, **kwargs) -> nn.Module`` under ``name``."""

    def deco(factory: NormFactory) -> NormFactory:
        if name in _REGISTRY:
            raise ValueError(f"norm {name!r} is already registered")
        _REGISTRY[name] = factory
        if conditional:
            _CONDITIONAL.add(name)
        return factory

    return deco


def norm_names() -> list[str]:
    """Every registered norm name, sorted."""
    return sorted(_REGISTRY)


def is_conditional(name: str) -> bool:
    """Whether ``build_norm(name, ...)`` returns a layer that takes a condition id."""
    _check_name(name)
    return name in _CONDITIONAL


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown norm {name!r}; valid names: {', '.join(norm_names())}")


def build_norm(name: str, num_features: int, **kwargs) -> nn.Module:
    """Build the normalisation layer registered as ``name`` for ``num_features`` channels.

    Conditional layers need ``num_conditions``; plain ones (``bn``, ``in``, ``none``, ``adain``, ``saadain``) ignore the
    conditional-only keywords (:data:`CONDITIONAL_KWARGS`) so one call builds any variant. Any other keyword goes
    to the layer's constructor.

    >>> build_norm("sabn", 64, num_conditions=10)
    SandwichBatchNorm2d(64, num_conditions=10)
    """
    _check_name(name)
    if name not in _CONDITIONAL:
        kwargs = {k: v for k, v in kwargs.items() if k not in CONDITIONAL_KWARGS}
    elif "num_conditions" not in kwargs:
        raise ValueError(f"norm {name!r} is conditional: pass num_conditions=K")
    return _REGISTRY[name](num_features, **kwargs)


@register_norm("bn")
def _bn(num_features: int, **kwargs) -> nn.Module:
    return nn.BatchNorm2d(num_features, **kwargs)


@register_norm("none")
def _none(num_features: int, **kwargs) -> nn.Module:
    """No normalisation (for ablations): an identity with the same call signature as the plain norms."""
    return nn.Identity()


@register_norm("in")
def _in(num_features: int, **kwargs) -> nn.Module:
    return nn.InstanceNorm2d(num_features, **kwargs)


register_norm("ccbn", conditional=True)(CategoricalConditionalBatchNorm2d)
register_norm("sabn", conditional=True)(SandwichBatchNorm2d)
register_norm("auxbn", conditional=True)(AuxBatchNorm2d)
register_norm("saauxbn", conditional=True)(SandwichAuxBatchNorm2d)
register_norm("sain", conditional=True)(SandwichInstanceNorm2d)
register_norm("adain")(AdaptiveInstanceNorm2d)
register_norm("saadain")(SandwichAdaIN)
