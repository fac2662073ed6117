"""Atomic checkpoints, resume from the newest good one, and RNG state capture.

A checkpoint is one dict per save::

    {"format": 1, "step": int, "config_hash": str, "finished": bool,
     "objects": {name: obj.state_dict()},          # models (unwrapped from DDP), EMA, optimisers, schedulers,
                                                   # GradScaler, data loaders ...
     "rng": {"python": ..., "numpy": ..., "torch": ..., "cuda": [...]},
     "extra": {...}}                                # anything else the task wants back (best metric, ...)

written to ``ckpt_<step>.pt`` through a temporary file, fsync and rename, so a crash never leaves a half-written file
under a real name; the newest ``keep`` are kept. Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError, UserError

log = logging.getLogger(__name__)

FORMAT = 1
_NAME = re.compile(r"^ckpt_(\d{8})\.pt$")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically: write a temporary file in the same folder, fsync it, rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    # Persist the rename itself.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_file(path: str | os.PathLike, what: str = "checkpoint file", fix: str = "") -> Any:
    r"""``torch.load(path, weights_only=True)`` onto the CPU, with one-line :class:`CheckpointError`\ s for a missing,
    non-file or unreadable path. ``what`` names the file's role in the messages; ``fix`` (if given) is appended as
    ``— <fix>`` (how to get a good file)."""
    path = Path(path).expanduser()
    tail = f" — {fix}" if fix else ""
    if not path.exists():
        raise CheckpointError(f"{what} not found: {path}{tail}")
    if not path.is_file():
        raise CheckpointError(f"{what} is not a file: {path}{tail}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated/corrupt/unsafe files
        raise CheckpointError(f"cannot read {what} {path}: {_unreadable_reason(e)}{tail}") from e


def _unreadable_reason(e: Exception) -> str:
    text = str(e).strip()
    if isinstance(e, pickle.UnpicklingError) or "weights_only" in text or "Weights only load failed" in text:
        # torch's own text advises weights_only=False, which is not the fix for a foreign or broken file
        return ("corrupt or not a plain tensor state dict: it holds pickled objects other than tensors, or is damaged "
                "(torch.load with weights_only=True refused it; save model.state_dict())")
    return f"corrupt or truncated ({type(e).__name__}: {text.splitlines()[0][:200] if text else 'no details'})"


def state_dict_mismatches(state: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]]
                          ) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, wrong-shape) keys of ``state`` against ``expected`` key → shape, in key order; a
    non-tensor entry counts as a wrong shape."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k, shape in expected.items() if k in state
             and (not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(shape))]
    return missing, unexpected, wrong


def is_state_dict(obj: Any) -> bool:
    """A non-empty mapping of names to tensors."""
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


# --- RNG state ------------------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """The python, NumPy, torch (and CUDA) RNG states in a form ``weights_only`` loading accepts."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state({
        "bit_generator": n["bit_generator"],
        "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
        "has_gauss": n["has_gauss"],
        "gauss": n["gauss"],
    })
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


# --- the manager --------------------------------------------------------------------------------------------------


class CheckpointManager:
    """Saves ``ckpt_<step>.pt`` files in ``folder`` and finds the newest good one to resume from."""

    def __init__(self, folder: str | os.PathLike, config_hash: str, keep: int = 3, enabled: bool = True) -> None:
        if keep < 1:
            raise UserError(f"ckpt.keep must be >= 1, got {keep}")
        self.folder = Path(folder)
        self.config_hash = config_hash
        self.keep = keep
        self.enabled = enabled  # False on non-zero ranks: only rank 0 writes

    def paths(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _NAME.match(p.name))

    def save(self, step: int, objects: dict[str, Any], extra: dict[str, Any] | None = None,
             finished: bool = False, rng: dict[str, Any] | None = None) -> Path | None:
        """Write one checkpoint of ``objects`` (anything with ``state_dict()``) and the RNG states (``rng``, default
        this process's; a DDP job passes ``{"per_rank": [...]}``)."""
        if not self.enabled:
            return None
        state = {
            "format": FORMAT,
            "step": int(step),
            "config_hash": self.config_hash,
            "finished": bool(finished),
            "objects": {name: obj.state_dict() for name, obj in objects.items()},
            "rng": rng if rng is not None else capture_rng(),
            "extra": extra or {},
        }
        path = self.folder / f"ckpt_{step:08d}.pt"
        atomic_torch_save(state, path)
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self) -> dict[str, Any] | None:
        """The newest readable checkpoint (older ones are tried when newer ones are corrupt), or None."""
        for path in reversed(self.paths()):
            try:
                state = load_file(path)
                if not isinstance(state, dict) or state.get("format") != FORMAT or "objects" not in state:
                    raise CheckpointError(f"{path} is not a checkpoint of this suite")
            except CheckpointError as e:
                log.warning("%s; trying the previous checkpoint", e)
                continue
            if state["config_hash"] != self.config_hash:
                raise UserError(
                    f"{self.folder} holds a run with a different config (hash {state['config_hash']} vs "
                    f"{self.config_hash}); pass another run_dir=... or delete that folder to start over"
                )
            state["path"] = str(path)
            return state
        return None

    @staticmethod
    def restore(state: dict[str, Any], objects: dict[str, Any], rng: bool = True, rank: int = 0) -> None:
        """Load ``state['objects']`` into ``objects`` (by name; every name must be present) and the RNG states
        (this ``rank``'s, for a checkpoint written by a DDP job)."""
        saved = state["objects"]
        missing = sorted(set(objects) - set(saved))
        if missing:
            raise CheckpointError(f"checkpoint {state.get('path', '')} lacks {', '.join(missing)}")
        for name, obj in objects.items():
            try:
                obj.load_state_dict(saved[name])
            except (RuntimeError, KeyError, ValueError) as e:
                first = str(e).strip().splitlines()[0][:200]
                raise CheckpointError(f"checkpoint {state.get('path', '')}: cannot load {name!r}: {first}") from e
        if rng:
            saved_rng = state["rng"]
            if "per_rank" in saved_rng:
                per_rank = saved_rng["per_rank"]
                if rank >= len(per_rank):
                    raise CheckpointError(
                        f"checkpoint {state.get('path', '')} was written by {len(per_rank)} processes; "
                        f"resume it with the same number of processes"
                    )
                saved_rng = per_rank[rank]
            restore_rng(saved_rng)
