"""Structured-config schemas shared by every task.

Each task's schema subclasses :class:`RunConfig` and adds its own sections (``model``, ``train``, ``eval`` ...).
Registered in Hydra's ConfigStore, the schemas make a misspelt key or a value of the wrong type an error that names
the key. Allowed values are listed next to each default.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class DeviceName(str, Enum):
    auto = "auto"  # CUDA when visible, else CPU
    cpu = "cpu"
    cuda = "cuda"


class AmpDtype(str, Enum):
    none = "none"
    bf16 = "bf16"
    fp16 = "fp16"


class WandbMode(str, Enum):
    offline = "offline"  # writes runs under <run_dir>/wandb; `wandb sync` uploads them later
    online = "online"
    disabled = "disabled"  # writes nothing


@dataclass
class DeviceConfig:
    name: DeviceName = DeviceName.auto
    index: int = 0  # CUDA device index (under torchrun the local rank is used instead)
    amp: AmpDtype = AmpDtype.none  # autocast dtype for forward passes; fp16 adds a GradScaler
    channels_last: bool = False  # memory format of 4-D activations and weights
    cudnn_benchmark: bool = True
    tf32: bool = True  # TF32 matmuls/convolutions on Ampere+ GPUs
    compile: bool = False  # torch.compile the models
    deterministic: bool = False  # torch.use_deterministic_algorithms + cuDNN deterministic


@dataclass
class LoggerConfig:
    project: str = "sabn-suite"
    entity: str | None = None
    mode: WandbMode | None = None  # None: $WANDB_MODE if set, else offline (never needs an account)
    group: str | None = None  # W&B group; None: the experiment name
    log_every: int = 50  # steps between metric lines in metrics.jsonl / W&B
    images: bool = True  # send sample grids and figures to W&B


@dataclass
class NormConfig:
    name: str = "bn"  # a sabn.build_norm name: bn ccbn sabn auxbn saauxbn in sain adain saadain
    init_std: float = 0.02  # std of the condition-specific scales ~ N(1, std)
    shared_init_std: float = 0.02  # std of the shared sandwich scale ~ N(1, std) (SaAdaIN uses 0)
    eps: float = 1e-5
    momentum: float = 0.1


@dataclass
class DataConfig:
    name: str = "digits"  # a dataset registry name: cifar10 cifar100 digits imagefolder (+ task-specific ones)
    root: str = "data"  # where the dataset lives (the folder that contains e.g. cifar-10-batches-py/)
    download: bool = False  # let torchvision download when the data is missing (needs internet)
    num_workers: int = 0  # DataLoader worker processes
    image_size: int = 32


@dataclass
class CheckpointConfig:
    every: int = 1000  # steps between checkpoints (and at the end)
    keep: int = 3  # newest checkpoints kept
    resume: bool = True  # resume from the newest good checkpoint in run_dir


@dataclass
class AnalysisConfig:
    # Steps between measurements of gradient balance/diversity of the conditional affines (sabn.analysis); 0 = off,
    # and then nothing is recorded or computed.
    every: int = 0
    window: int = 1  # steps whose per-condition gradients are summed into one measurement (NAS: one condition/step)
    per_layer_max: int = 32  # log per-layer values when the model has at most this many conditional layers


@dataclass
class DebugConfig:
    # Simulate a crash (SIGKILL) right after this step, to exercise resuming. Not part of the config hash.
    kill_at_step: int | None = None


@dataclass
class RunConfig:
    task: str = MISSING
    exp: str = "custom"  # experiment name; set by the conf/<task>/exp/<name>.yaml files
    scale_name: str = "full"  # full | demo | smoke, set by the scale group
    seed: int = 0
    run_dir: str = "runs/${task}/${exp}/${scale_name}/seed${seed}"
    progress: bool = True  # tqdm bars (rank 0, TTY only)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    norm: NormConfig = field(default_factory=NormConfig)
    data: DataConfig = field(default_factory=DataConfig)
    ckpt: CheckpointConfig = field(default_factory=CheckpointConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)


SCHEMAS: dict[str, type] = {}


def register_schema(task: str, schema: type) -> str:
    """Register ``schema`` as ``<task>_schema`` in Hydra's ConfigStore; returns the name."""
    name = f"{task}_schema"
    ConfigStore.instance().store(name=name, node=schema)
    SCHEMAS[task] = schema
    return name


def validate(task: str, cfg: DictConfig) -> None:
    """Check ``cfg`` against the task's schema once more after composition.

    Hydra lets ``+key=value`` add keys even to structured nodes; merging into a fresh, strict schema turns such
    misspelt keys into errors too.
    """
    schema = SCHEMAS.get(task)
    if schema is not None:
        plain = OmegaConf.to_container(cfg, resolve=False)
        plain.pop("hydra", None)  # type: ignore[union-attr]
        OmegaConf.merge(OmegaConf.structured(schema), plain)


#: Sections that do not change what a run computes: a resumed run may differ in them.
_HASH_EXCLUDED = ("run_dir", "progress", "logger", "ckpt", "debug", "device")


def resolved_container(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain Python data with every interpolation resolved and enums as their names."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def config_hash(cfg: DictConfig) -> str:
    """A short hash of everything that changes what a run computes (see ``_HASH_EXCLUDED`` for what is left out)."""
    data = {k: v for k, v in resolved_container(cfg).items() if k not in _HASH_EXCLUDED}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
