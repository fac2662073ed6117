"""Adversarial training with BN / AuxBN / SaAuxBN (paper §2.3): the PreAct ResNet-18, its branch state, PGD, the
branch-wise robust evaluation, and the official data split. The training loop is ``tasks.adv.train`` (run it with
``python -m tasks.adv``); ``python -m tasks.adv.evaluate`` evaluates a checkpoint."""

from .attacks import ATTACK_MODES, RobustCounts, evaluate_robust, pgd, preserved_model_state, using_branch
from .data import official_split
from .evaluation import BranchView, PGDSettings, evaluate_branches
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
    "BranchView",
    "CheckpointError",
    "PGDSettings",
    "PreActResNet18",
    "RobustCounts",
    "build_model",
    "detect_layout",
    "evaluate_branches",
    "evaluate_robust",
    "load_official_checkpoint",
    "official_split",
    "pgd",
    "preserved_model_state",
    "read_checkpoint",
    "using_branch",
]
