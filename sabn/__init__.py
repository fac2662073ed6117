"""Sandwich Batch Normalization (SaBN) and its variants as drop-in PyTorch layers.

This package imports only torch. See the README's "The layers" section for a tour.
"""

from . import analysis, mimicnorm
from .convert import CONVERT_VARIANTS, conditional_layers, conditioned, convert, fold, set_condition
from .layers import (
    CONDITIONAL_LAYERS,
    AdaptiveInstanceNorm2d,
    AuxBatchNorm2d,
    CategoricalConditionalBatchNorm2d,
    Condition,
    ConditionalNorm,
    SandwichAdaIN,
    SandwichAuxBatchNorm2d,
    SandwichBatchNorm2d,
    SandwichInstanceNorm2d,
    adaptive_instance_norm,
    calc_mean_std,
    set_range_checks,
)
from .registry import CONDITIONAL_KWARGS, build_norm, is_conditional, norm_names, register_norm

__all__ = [
    "CONDITIONAL_KWARGS",
    "CONDITIONAL_LAYERS",
    "CONVERT_VARIANTS",
    "AdaptiveInstanceNorm2d",
    "AuxBatchNorm2d",
    "CategoricalConditionalBatchNorm2d",
    "Condition",
    "ConditionalNorm",
    "SandwichAdaIN",
    "SandwichAuxBatchNorm2d",
    "SandwichBatchNorm2d",
    "SandwichInstanceNorm2d",
    "adaptive_instance_norm",
    "analysis",
    "build_norm",
    "calc_mean_std",
    "conditional_layers",
    "conditioned",
    "convert",
    "fold",
    "is_conditional",
    "mimicnorm",
    "norm_names",
    "register_norm",
    "set_condition",
    "set_range_checks",
]

__version__ = "0.1.0"
