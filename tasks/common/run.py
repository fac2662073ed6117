"""``Run``: the per-run context every training loop uses — run directory, device, DDP, seeding, logging,
checkpoints and results — so that each task's loop only says what it trains.

Typical loop::

    with Run(cfg, model_name="sngan32", dataset_name=data.info.name) as run:
        ...build data, models, optimisers on run.device...
        objects = {"G": G, "D": D, "opt_g": opt_g, "data": stream}
        start = run.resume(objects)                 # 0 for a fresh run
        for step in run.steps(start, total):        # tqdm on rank 0
            ...
            run.log(step, {"loss": loss})           # every logger.log_every steps
            run.step_done(step, objects)            # checkpoints every ckpt.every steps
        run.finish(metrics, objects=objects)        # results.json + final checkpoint
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from .checkpoint import CheckpointManager, capture_rng
from .config import config_hash, resolved_container
from .errors import RunFinished, TrainingDiverged, UserError
from .results import Metric, read_results, write_results
from .runtime import (
    DistEnv,
    cleanup_distributed,
    configure_backends,
    dist_env_from_environ,
    init_distributed,
    seed_everything,
    select_device,
    unwrap,
)
from .tracking import RunLogger, progress, quiet_non_main

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
_PACKAGES = ("torch", "torchvision", "numpy", "hydra-core", "omegaconf", "wandb", "pytorch-fid", "nats_bench",
             "scikit-learn", "sabn-suite")


def git_revision(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit of the code that ran and whether the work tree had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class Run:
    """Everything around a training loop. Use as a context manager (tears down W&B and the process group)."""

    def __init__(self, cfg: DictConfig, *, model_name: str, dataset_name: str) -> None:
        self.cfg = cfg
        self.task = str(cfg.task)
        self.model_name = model_name
        self.dataset_name = dataset_name
        self.env: DistEnv = dist_env_from_environ()
        self.device = select_device(cfg.device, self.env)
        init_distributed(self.env, self.device)
        configure_backends(cfg.device, self.device)
        self.seed = seed_everything(int(cfg.seed), self.env)
        quiet_non_main(self.env.is_main)
        self.run_dir = Path(str(cfg.run_dir))
        self.config_hash = config_hash(cfg)
        self.git = git_revision()
        self._t0 = time.time()
        self.stand_ins: list[str] = []
        self.extra: dict[str, Any] = {}  # the "extra" dict of the checkpoint resumed from
        self._pending_bad: torch.Tensor | None = None  # lazily checked non-finite losses (CUDA)
        self._pending_names: set[str] = set()
        self._check_not_finished()
        self.ckpt = CheckpointManager(self.run_dir / "checkpoints", self.config_hash, keep=int(cfg.ckpt.keep),
                                      enabled=self.env.is_main)
        if self.env.is_main:
            self._write_provenance()
        self.logger = RunLogger(
            self.run_dir, resolved_container(cfg), enabled=self.env.is_main,
            project=cfg.logger.project, entity=cfg.logger.entity, mode=cfg.logger.mode,
            group=cfg.logger.group or str(cfg.exp), name=f"{cfg.exp}-{cfg.scale_name}-seed{cfg.seed}",
            tags=[self.task, model_name, str(cfg.norm.name), dataset_name, f"seed{cfg.seed}", str(cfg.scale_name)],
            run_id=hashlib.sha1(f"{self.run_dir.resolve()}:{self.config_hash}".encode()).hexdigest()[:16],
            images=bool(cfg.logger.images),
        )
        log.info("run %s: %s on %s (world size %d)", self.run_dir, self.task, self.device, self.env.world_size)

    # -- context manager -------------------------------------------------------------------------------------
    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.logger.finish()
        cleanup_distributed()

    # -- set-up helpers ----------------------------------------------------------------------------------------
    def _check_not_finished(self) -> None:
        path = self.run_dir / "results.json"
        if not path.is_file() or not bool(self.cfg.ckpt.resume):
            return
        try:
            previous = read_results(path)
        except (OSError, ValueError):
            return  # unreadable results: train again and overwrite them
        if previous.get("config_hash") not in (None, "", self.config_hash):
            raise UserError(
                f"{self.run_dir} holds a finished run with a different config; pass another run_dir=... "
                "or delete that folder"
            )
        raise RunFinished(str(self.run_dir))

    def _write_provenance(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved_container(self.cfg))))
        provenance = {
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "git": self.git,
            "versions": package_versions(),
            "host": platform.node(),
            "device": str(self.device),
            "cuda": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None,
            "world_size": self.env.world_size,
            "config_hash": self.config_hash,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (self.run_dir / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")

    # -- the loop ----------------------------------------------------------------------------------------------
    def resume(self, objects: dict[str, Any]) -> int:
        """Restore ``objects`` (and the RNG states) from the newest good checkpoint; returns the step to continue
        after (0 for a fresh run)."""
        if not bool(self.cfg.ckpt.resume):
            if self.ckpt.paths():
                # starting over would interleave new checkpoints with the old run's: refuse, keep what is saved
                raise UserError(f"ckpt.resume=false but {self.ckpt.folder} already holds checkpoints; pass another "
                                "run_dir=... (or delete that folder) to start a new run")
            return 0
        state = self._load_latest_on_all_ranks()
        if state is None:
            return 0
        CheckpointManager.restore(state, self._unwrapped(objects), rank=self.env.rank)
        self.extra = state.get("extra", {})
        log.info("resumed from %s (step %d)", state["path"], state["step"])
        return int(state["step"])

    def _load_latest_on_all_ranks(self) -> dict[str, Any] | None:
        # Every rank reads the file rank 0 wrote; the run directory is shared in a torchrun job.
        manager = CheckpointManager(self.ckpt.folder, self.config_hash, keep=self.ckpt.keep)
        return manager.load_latest()

    def steps(self, start: int, total: int, desc: str | None = None) -> Iterator[int]:
        """Steps ``start + 1 .. total`` with a progress bar on rank 0."""
        bar = progress(range(start + 1, total + 1), total=total, initial=start, desc=desc or str(self.cfg.exp),
                       enabled=self.env.is_main and bool(self.cfg.progress))
        yield from bar

    def log(self, step: int, metrics: dict[str, Any], force: bool = False) -> None:
        """Log every ``logger.log_every`` steps (or when forced)."""
        if force or step % max(1, int(self.cfg.logger.log_every)) == 0:
            self._flush_finite_check(step)
            self.logger.log(step, metrics)

    def check_finite(self, step: int, **losses: float | torch.Tensor) -> None:
        """Stop with a clear error when a loss is NaN/inf; checkpoints already written stay untouched.

        On CPU the check is immediate. On CUDA it is accumulated on the device (no synchronisation per step) and
        verified whenever something is logged or saved, so a bad state is never checkpointed.
        """
        for name, value in losses.items():
            if isinstance(value, torch.Tensor) and value.device.type != "cpu":
                bad = ~torch.isfinite(value.detach()).all()
                self._pending_bad = bad if self._pending_bad is None else self._pending_bad | bad
                self._pending_names.add(name)
                continue
            v = float(value.detach().item() if isinstance(value, torch.Tensor) else value)
            if not math.isfinite(v):
                self._diverged(f"{name} is {v} at step {step}")

    def _flush_finite_check(self, step: int) -> None:
        if self._pending_bad is not None and bool(self._pending_bad):
            self._diverged(f"{'/'.join(sorted(self._pending_names))} became NaN or infinite by step {step}")
        self._pending_bad = None

    def _diverged(self, what: str) -> None:
        last = self.ckpt.paths()
        kept = f"; last good checkpoint kept: {last[-1]}" if last else ""
        raise TrainingDiverged(f"{what} (lower the learning rate, or use device.amp=none){kept}")

    def step_done(self, step: int, objects: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        """Checkpoint every ``ckpt.every`` steps; honours ``debug.kill_at_step`` (a simulated crash)."""
        if step % max(1, int(self.cfg.ckpt.every)) == 0:
            self._flush_finite_check(step)
            self.checkpoint(step, objects, extra)
        kill_at = self.cfg.debug.kill_at_step
        if kill_at is not None and step == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)

    def checkpoint(self, step: int, objects: dict[str, Any], extra: dict[str, Any] | None = None,
                   finished: bool = False) -> Path | None:
        """Save now (collective under DDP: every rank must call it; rank 0 writes)."""
        rng = capture_rng()
        if self.env.distributed:
            # Each rank has its own RNG streams; keep all of them so a resumed job continues exactly.
            per_rank: list[Any] = [None] * self.env.world_size
            torch.distributed.all_gather_object(per_rank, rng)
            rng = {"per_rank": per_rank}
        return self.ckpt.save(step, self._unwrapped(objects), extra, finished=finished, rng=rng)

    @staticmethod
    def _unwrapped(objects: dict[str, Any]) -> dict[str, Any]:
        return {k: unwrap(v) if isinstance(v, nn.Module) else v for k, v in objects.items()}

    # -- the end -----------------------------------------------------------------------------------------------
    def add_stand_in(self, what: str) -> None:
        """Record that a stand-in (untrained weights, synthetic data ...) was used; it appears in results.json."""
        if what not in self.stand_ins:
            self.stand_ins.append(what)
            log.warning("stand-in: %s", what)

    def finish(self, metrics: dict[str, Metric], *, steps: int, objects: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Write ``results.json`` (rank 0), a final checkpoint marked finished, and the W&B summary."""
        self._flush_finite_check(steps)
        if objects is not None:
            self.checkpoint(steps, objects, finished=True)
        if not self.env.is_main:
            return None
        data = write_results(
            self.run_dir / "results.json", task=self.task, exp=str(self.cfg.exp), scale=str(self.cfg.scale_name),
            seed=int(self.cfg.seed), model=self.model_name, norm=str(self.cfg.norm.name),
            dataset=self.dataset_name, steps=steps, metrics=metrics, stand_ins=self.stand_ins,
            config_hash=self.config_hash, git=self.git, wall_time_s=time.time() - self._t0, extra=extra,
        )
        self.logger.summary({k: m.value for k, m in metrics.items() if m.value is not None})
        log.info("results written to %s", self.run_dir / "results.json")
        return data
