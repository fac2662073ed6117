"""Adversarial training with BN / AuxBN / SaAuxBN (paper §2.3): the PreAct ResNet-18, its branch state, and PGD."""

from .attacks import ATTACK_MODES, RobustCounts, evaluate_robust, pgd, preserved_model_state, using_branch
from .model import (
    ADV_BRANCH,
    ADV_NORMS,
    CLEAN_BRANCH,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CheckpointError,
    PreActResNet18,
    build_model,
    detect_layout,
    load_official_checkpoint,
    read_checkpoint,
)

__all__ = [
    "ADV_BRANCH",
    "ADV_NORMS",
    "ATTACK_MODES",
    "CLEAN_BRANCH",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "CheckpointError",
    "PreActResNet18",
    "RobustCounts",
    "build_model",
    "detect_layout",
    "evaluate_robust",
    "load_official_checkpoint",
    "pgd",
    "preserved_model_state",
    "read_checkpoint",
    "using_branch",
]
