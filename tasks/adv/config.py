"""Schema of the adversarial-training task (``conf/adv.yaml``).

Defaults are the official ``Adv/`` protocol (paper §2.3): PreAct ResNet-18, CIFAR-10 with a 45k/5k split (NumPy
shuffle, seed 10), PGD-7 (ε 8/255, step 2/255, random start) generated through branch 1 in train mode, the
½ [CE(clean, branch 0) + CE(adversarial, branch 1)] objective, SGD 0.1 / 0.9 / 5e-4, batch 128, 200 epochs,
×0.1 at epochs 50 and 150, a 200-iteration warm-up from 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from tasks.common.config import RunConfig, register_schema


class InputNorm(str, Enum):
    imagenet = "imagenet"  # ImageNet mean/std inside the model (official, also for CIFAR-10)
    dataset = "dataset"  # the dataset's own mean/std (DatasetInfo), e.g. for the embedded digits


class AttackMode(str, Enum):
    train = "train"  # batch statistics; the attacked branch's running statistics move (official training)
    eval = "eval"  # running statistics, none updated


class BestBy(str, Enum):
    """Which per-epoch validation number selects the "best" checkpoint (strictly greater wins: the earliest tie)."""

    val_robust_b1 = "val_robust_b1"  # PGD accuracy through branch 1 (= the official ata_best_model.pt)
    val_robust_b0 = "val_robust_b0"
    val_clean_b1 = "val_clean_b1"  # clean accuracy through branch 1 (= the official best_model.pt)
    val_clean_b0 = "val_clean_b0"  # clean accuracy through branch 0 (= the official clean_best_model.pt)


@dataclass
class AdvModelConfig:
    name: str = "preact_resnet18"  # the only model of this task
    base_width: int = 64  # channels of the stem and first stage (official 64)
    input_norm: InputNorm = InputNorm.imagenet


@dataclass
class TrainAttackConfig:
    eps: float = 0.03137254901960784  # L∞ radius on the [0, 1] scale (8/255)
    step_size: float = 0.00784313725490196  # 2/255
    steps: int = 7
    random_start: bool = True  # start at x + U(−ε, ε)
    clamp_start: bool = False  # clamp the random start to [0, 1] (official: no)
    mode: AttackMode = AttackMode.train  # official: train mode (branch-1 BN running statistics see every iterate)


@dataclass
class ObjectiveConfig:
    """loss = clean_weight · CE(model(x; branch 0), y) + adv_weight · CE(model(x_adv; branch 1), y)."""

    name: str = "mixed"  # mixed (paper: ½ clean + ½ adversarial) | adversarial (Madry PGD-AT)
    clean_weight: float = 0.5  # 0 skips the clean forward pass
    adv_weight: float = 0.5


@dataclass
class AdvTrainConfig:
    epochs: int = 200
    batch_size: int = 128  # global batch (split over DDP processes)
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    milestones: list[int] = field(default_factory=lambda: [50, 150])  # epochs where the LR is multiplied by gamma
    gamma: float = 0.1
    warmup_iters: int = 200  # linear warm-up over the first iterations: warmup_start_lr + i·(lr − start)/iters
    warmup_start_lr: float = 0.01
    crop_padding: int = 4  # random crop with zero padding; 0 = off
    flip: bool = True  # random horizontal flip
    val_size: int = 5000  # validation images held out of the training split
    split_seed: int = 10  # NumPy seed of the official train/validation shuffle
    attack: TrainAttackConfig = field(default_factory=TrainAttackConfig)


@dataclass
class AdvEvalConfig:
    eps: float = 0.03137254901960784  # 8/255
    step_size: float = 0.00784313725490196  # 2/255
    random_start: bool = True
    clamp_start: bool = False
    restarts: int = 1  # a sample counts as robust only if it survives every restart
    pgd_steps: list[int] = field(default_factory=lambda: [10, 20])  # final evaluation: metrics pgd<k>_acc_b<branch>
    epoch_pgd_steps: int = 10  # the per-epoch validation attack
    every_epochs: int = 1  # epochs between validations (the last epoch is always validated)
    val_samples: int | None = None  # per-epoch validation images (null: the whole validation split)
    epoch_test_samples: int = 0  # also evaluate this many test images every epoch (official: all 10,000)
    test_samples: int | None = None  # final evaluation images (null: the whole test split)
    best_by: BestBy = BestBy.val_robust_b1
    batch_size: int = 500
    seed: int = 0  # seeds the random starts of every evaluation attack
    autoattack: bool = False  # also run torchattacks' AutoAttack (standard, L∞) through branch 1; needs [attacks]
    autoattack_samples: int | None = None  # null: the same images as the PGD evaluation


@dataclass
class AdvConfig(RunConfig):
    task: str = "adv"
    model: AdvModelConfig = field(default_factory=AdvModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: AdvTrainConfig = field(default_factory=AdvTrainConfig)
    eval: AdvEvalConfig = field(default_factory=AdvEvalConfig)


register_schema("adv", AdvConfig)
