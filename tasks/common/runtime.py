"""Devices, seeding, mixed precision and DDP under ``torchrun``."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig
from torch import nn

from .errors import UserError


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _export_submitit_env() -> None:
    """Under a multi-task SLURM job started by hydra-submitit-launcher, export RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*
    from SLURM's variables (what torchrun would have set), using submitit's own helper."""
    if "RANK" in os.environ or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return
    try:
        from submitit.helpers import TorchDistributedEnvironment
    except ImportError:
        return
    env = TorchDistributedEnvironment()
    if env.world_size > 1:
        # keep every GPU visible: the device index is the local rank (see select_device)
        env.export(set_cuda_visible_devices=False)


def dist_env_from_environ() -> DistEnv:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (defaults: a single process); multi-task SLURM jobs from the
    submitit launcher are translated first."""
    _export_submitit_env()
    return DistEnv(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def select_device(device_cfg: DictConfig, env: DistEnv) -> torch.device:
    """The torch device asked for by ``device.name`` (auto | cpu | cuda); CUDA where there is none is an error."""
    name = _enum(device_cfg.name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        if str(_enum(device_cfg.amp)) == "fp16":
            raise UserError("device.amp=fp16 needs CUDA; on CPU use device.amp=bf16 or device.amp=none")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but no CUDA device is visible; use device=cpu (or device=auto)")
    index = env.local_rank if env.distributed else int(device_cfg.index)
    if index >= torch.cuda.device_count():
        raise UserError(
            f"device.index={index} but only {torch.cuda.device_count()} CUDA device(s) are visible; "
            f"pick one of 0..{torch.cuda.device_count() - 1}"
        )
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _enum(v: object) -> str:
    return str(v.value) if hasattr(v, "value") else str(v)


def configure_backends(device_cfg: DictConfig, device: torch.device) -> None:
    """cuDNN benchmark, TF32 and deterministic-algorithm switches from the ``device`` config."""
    deterministic = bool(device_cfg.deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(device_cfg.cudnn_benchmark) and not deterministic
        torch.backends.cuda.matmul.allow_tf32 = bool(device_cfg.tf32)
        torch.backends.cudnn.allow_tf32 = bool(device_cfg.tf32)
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=False)


def seed_everything(seed: int, env: DistEnv) -> int:
    """Seed python, NumPy and torch with ``seed * world_size + rank`` (distinct per rank, repeatable per run)."""
    s = seed * env.world_size + env.rank
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    return s


def autocast(device: torch.device, amp: object) -> object:
    """An autocast context for ``device.amp`` (none | bf16 | fp16)."""
    name = _enum(amp)
    if name == "none":
        return nullcontext()
    dtype = torch.bfloat16 if name == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, amp: object) -> torch.amp.GradScaler:
    """A GradScaler that is active only for fp16 (bf16 and fp32 need none); its state goes into checkpoints."""
    return torch.amp.GradScaler(device.type, enabled=_enum(amp) == "fp16")


def init_distributed(env: DistEnv, device: torch.device) -> None:
    """Join the torchrun process group (gloo on CPU, nccl on CUDA); a no-op for a single process."""
    if not env.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=30), **kwargs)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def prepare_model(
    model: nn.Module, device: torch.device, env: DistEnv, device_cfg: DictConfig, sync_bn: bool = True,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """Move to ``device`` (channels_last if asked), convert BN to SyncBatchNorm under multi-GPU DDP (this includes
    the statistics inside sabn's conditional layers), wrap in DDP, and ``torch.compile`` if asked.

    PyTorch's SyncBatchNorm runs only on accelerators, so CPU (gloo) jobs keep per-rank BN statistics.
    """
    model = model.to(device)
    if bool(device_cfg.channels_last):
        model = model.to(memory_format=torch.channels_last)
    if env.distributed:
        if sync_bn and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=find_unused_parameters
        )
    if bool(device_cfg.compile):
        model = torch.compile(model)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers (what checkpoints store)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (identity for a single process); used to aggregate evaluation counts."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put models in eval mode and restore each one's previous mode afterwards."""
    previous = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, was in zip(models, previous):
            m.train(was)
