"""Generators from checkpoints, for ``tasks.gan.sample`` and ``tasks.gan.evaluate`` (no training data needed).

A checkpoint is either

* a run of this suite — its folder (the newest checkpoint is used) or one ``checkpoints/ckpt_*.pt`` file: the
  run's ``config.yaml`` says which model, norm, data and evaluation protocol; ``key=value`` overrides change them
  (e.g. ``eval.num_samples=10000``); or
* any generator weights file — the official SaBN model zoo's ``*_gen_state_dict.pth``, an official training
  checkpoint (its ``avg_gen_state_dict``: EMA parameters with the live BN statistics) or a plain state dict: the
  configuration then comes from the overrides as for training, e.g. ``+exp=sngan_sabn``; the number of classes is
  read from the weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from tasks.common.app import compose_config
from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.errors import CheckpointError, UserError
from tasks.common.runtime import DistEnv, select_device

from .checkpoint import find_generator_state_dict, load_generator_checkpoint
from .config import GanConfig, choice
from .ema import GeneratorEMA
from .evaluation import describe_ema
from .train import build_models


@dataclass
class LoadedGenerator:
    """A generator ready for sampling (not yet in eval/train mode: ``evaluation.sampling_mode`` decides)."""

    G: nn.Module
    cfg: DictConfig
    num_classes: int
    weights: str  # what the weights are, for the protocol
    source: Path
    step: int | None
    run_dir: Path | None


def find_run(path: Path) -> tuple[Path | None, Path]:
    """(run folder or None, checkpoint file) for a run folder, a run's checkpoint file, or any weights file."""
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise UserError(f"{path} is not a run folder of this suite (no config.yaml)")
        paths = CheckpointManager(path / "checkpoints", "").paths()
        if not paths:
            raise CheckpointError(f"no checkpoints under {path / 'checkpoints'}")
        return path, paths[-1]
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    run_dir = path.parent.parent
    if path.parent.name == "checkpoints" and (run_dir / "config.yaml").is_file():
        return run_dir, path
    return None, path


def run_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """A run's saved config, checked against the schema, with ``key=value`` overrides."""
    bad = [ov for ov in overrides if ov.startswith(("+", "~")) or "=" not in ov]
    if bad:
        raise UserError(f"a run's config takes key=value overrides only, got {bad[0]!r}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(GanConfig), OmegaConf.load(run_dir / "config.yaml"))
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    except Exception as e:
        raise UserError(f"{run_dir / 'config.yaml'} with {' '.join(overrides) or 'no overrides'}: "
                        f"{str(e).strip().splitlines()[0]}") from e
    return cfg  # type: ignore[return-value]


_CLASS_EMBEDDING = re.compile(r"(^|\.)(embed|gain)\.weight$")


def infer_num_classes(state_dict: dict[str, torch.Tensor], where: str) -> int:
    """The number of classes of a conditional generator's weights (rows of its first class embedding)."""
    for key, value in state_dict.items():
        if _CLASS_EMBEDDING.search(key) and value.dim() == 2:
            return int(value.shape[0])
    raise CheckpointError(f"{where} holds no class embedding: not a class-conditional generator of this suite")


def _suite_objects(obj: Any) -> dict[str, Any] | None:
    return obj["objects"] if isinstance(obj, dict) and isinstance(obj.get("objects"), dict) else None


def load_generator(path: str | Path, overrides: list[str], weights: str | None = None) -> LoadedGenerator:
    """The generator of ``path`` (see the module docstring) on the configured device.

    ``weights`` (``ema`` | ``live``; default ``eval.weights``) applies to suite checkpoints; a weights file holds
    one generator, described as found.
    """
    run_dir, file = find_run(Path(path))
    if run_dir is not None:
        cfg = run_config(run_dir, overrides)
    else:
        if not any(ov.lstrip("+").startswith(("exp=", "model")) for ov in overrides):
            raise UserError(f"{file} is not in a run folder of this suite: say which generator it is, "
                            "e.g. +exp=sngan_sabn (or model=... norm=...)")
        cfg = compose_config("gan", overrides)
    weights = weights or choice(cfg.eval.weights)
    device = select_device(cfg.device, DistEnv())
    state = load_file(file, "checkpoint")
    objects = _suite_objects(state)
    if objects is not None:
        G_live, _ = build_models(cfg, infer_num_classes(objects["G"], str(file)))
        load_generator_checkpoint(objects["G"], G_live)
        G, what, step = G_live, describe_ema(cfg.train, "live"), int(state.get("step", 0))
        if weights == "ema":
            t = cfg.train
            ema = GeneratorEMA(G_live, float(t.ema_decay), choice(t.ema_buffers), int(t.ema_start))
            try:
                ema.load_state_dict(objects["ema"])
            except (KeyError, RuntimeError) as e:
                raise CheckpointError(f"{file}: no usable generator EMA ({str(e).splitlines()[0][:120]})") from e
            G, what = ema.for_eval(G_live), describe_ema(cfg.train, "ema")
    else:
        found, sd = find_generator_state_dict(state, None, str(file))
        G, _ = build_models(cfg, infer_num_classes(dict(sd), str(file)))
        load_generator_checkpoint(state, G)
        what = (f"weights file {file.name}" + (f" (entry {found!r})" if found else "")
                + (": EMA parameters with the live G's BN statistics (official)" if found == "avg_gen_state_dict"
                   else ""))
        step = None
    G = G.to(device)
    return LoadedGenerator(G, cfg, int(G.n_classes), what, file, step, run_dir)
