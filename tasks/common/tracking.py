"""Metric logging: ``metrics.jsonl`` is the source of truth, W&B mirrors it (plus images); tqdm progress bars.

W&B never needs an account: the mode comes from ``logger.mode``, else ``$WANDB_MODE``, else ``offline`` (runs are
written under ``<run_dir>/wandb`` and can be uploaded later with ``wandb sync``). Runs are grouped by experiment,
named ``<exp>-<scale>-seed<seed>``, tagged with task, model, norm, dataset and seed, and carry the resolved config.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def wandb_mode(configured: object) -> str:
    """``logger.mode`` if set, else ``$WANDB_MODE``, else ``offline``."""
    if configured is not None:
        return str(getattr(configured, "value", configured))
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("offline", "online", "disabled"):
        return env
    if env == "dryrun":
        return "offline"
    return "offline"


def _plain(value: Any) -> Any:
    """JSON-friendly numbers (tensors and NumPy scalars become floats)."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class RunLogger:
    """Appends ``{"step": ..., **metrics}`` lines to ``metrics.jsonl`` and mirrors them to W&B (rank 0 only)."""

    def __init__(self, run_dir: str | os.PathLike, config: dict[str, Any], *, enabled: bool = True,
                 project: str = "sabn-suite", entity: str | None = None, mode: object = None,
                 group: str | None = None, name: str | None = None, tags: list[str] | None = None,
                 run_id: str | None = None, images: bool = True) -> None:
        self.enabled = enabled
        self.images = images
        self.path = Path(run_dir) / "metrics.jsonl"
        self.mode = wandb_mode(mode)
        self._wandb_run = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.mode != "disabled":
            import wandb

            os.environ.setdefault("WANDB_SILENT", "true")
            self._wandb_run = wandb.init(
                project=project, entity=entity, mode=self.mode, group=group, name=name, tags=tags,
                config=config, dir=str(Path(run_dir)), id=run_id, resume="allow", reinit="finish_previous",
                settings=wandb.Settings(console="off", x_disable_stats=True),
            )

    @property
    def wandb_dir(self) -> str | None:
        return None if self._wandb_run is None else str(Path(self._wandb_run.dir).parent)

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._wandb_run is not None:
            self._wandb_run.log({k: v for k, v in row.items() if k != "step"}, step=int(step))

    def log_image(self, step: int, key: str, path: str | os.PathLike, caption: str | None = None) -> None:
        """Send an image file (sample grid, figure) to W&B; the file itself stays in the run directory."""
        if self.enabled and self.images and self._wandb_run is not None:
            import wandb

            self._wandb_run.log({key: wandb.Image(str(path), caption=caption)}, step=int(step))

    def summary(self, values: dict[str, Any]) -> None:
        if self.enabled and self._wandb_run is not None:
            for k, v in values.items():
                self._wandb_run.summary[k] = _plain(v)

    def finish(self) -> None:
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def progress(iterable: Iterable | None = None, *, total: int | None = None, initial: int = 0, desc: str = "",
             enabled: bool = True, **kwargs: Any) -> tqdm:
    """A tqdm bar that stays quiet off rank 0, when not attached to a terminal, or when ``enabled`` is False."""
    quiet = not enabled or not sys.stderr.isatty() or "PYTEST_CURRENT_TEST" in os.environ
    return tqdm(iterable, total=total, initial=initial, desc=desc, disable=quiet, dynamic_ncols=True,
                leave=False, **kwargs)


def quiet_non_main(is_main: bool) -> None:
    """Only rank 0 prints INFO messages (Hydra configures logging in every process; its log file is
    ``<run_dir>/train.log``)."""
    logging.getLogger().setLevel(logging.INFO if is_main else logging.WARNING)
