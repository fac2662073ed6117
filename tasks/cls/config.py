"""Schema of the classification task (``conf/cls.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import RunConfig, register_schema


@dataclass
class ClsModelConfig:
    name: str = "convnet"  # a tasks.cls.models registry name: convnet
    width: int = 32  # channels of the first stage


@dataclass
class ClsTrainConfig:
    epochs: int = 150
    batch_size: int = 256  # global batch (split over DDP processes)
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    warmup_epochs: float = 2.0  # linear warm-up from 0
    milestones: list[int] = field(default_factory=lambda: [80, 110, 135])  # epochs where the LR is multiplied by gamma
    gamma: float = 0.1
    crop_padding: int = 4  # random crop with this padding; 0 = off
    flip: bool = True
    rotation: float = 15.0  # random rotation in degrees; 0 = off
    eval_every: int = 1  # epochs between test evaluations
    eval_batch_size: int = 512


@dataclass
class ClsConfig(RunConfig):
    task: str = "cls"
    model: ClsModelConfig = field(default_factory=ClsModelConfig)
    train: ClsTrainConfig = field(default_factory=ClsTrainConfig)


register_schema("cls", ClsConfig)
