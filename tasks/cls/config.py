"""Schema of the classification task (``conf/cls.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import RunConfig, register_schema


@dataclass
class ClsModelConfig:
    name: str = "convnet"  # resnet18 resnet50 vgg16 shufflenetv2 convnet
    width: float = 1.0  # channel multiplier (1.0 = the paper's networks)


@dataclass
class MimicNormConfig:
    # which convolutions are weight-centred: fan_in>50 (the official CIFAR rule) | groups==1 (ImageNet rule) | all
    rule: str = "fan_in>50"
    # project (centre after init and after every optimiser step, as the official code) | reparam (W = V - mean V)
    mode: str = "project"
    scale_rule: str = "code"  # residual scalar init: code (1.2^k / l) | paper (1 / sqrt(l))
    shortcut_scale: bool = True  # projection shortcuts end in a scalar 1.2 (paper-era code; removed at HEAD)


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
    memory_probe_step: int = 2  # measure peak memory and saved activations of this training step; 0 = off


@dataclass
class ClsConfig(RunConfig):
    task: str = "cls"
    model: ClsModelConfig = field(default_factory=ClsModelConfig)
    mimicnorm: MimicNormConfig = field(default_factory=MimicNormConfig)
    train: ClsTrainConfig = field(default_factory=ClsTrainConfig)


register_schema("cls", ClsConfig)
