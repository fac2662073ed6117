"""``results.json``: what a finished run reports, with the protocol of every number.

Schema (``schema: 1``)::

    {
      "schema": 1,
      "task": "gan", "exp": "sngan_sabn", "scale": "demo", "seed": 0,
      "model": "sngan32", "norm": "sabn", "dataset": "digits",
      "steps": 2000,                       # training steps done
      "metrics": {
        "<name>": {
          "value": 12.3,                   # a number (or null when it could not be computed)
          "protocol": {...},               # how it was measured: sample count, split, BN mode, EMA, weights ...
          "stand_in": null | "<what>"      # set when a stand-in was involved (untrained weights, synthetic data)
        }, ...
      },
      "stand_ins": ["..."],                # every stand-in of the run, also those not tied to one metric
      "config_hash": "…", "git": {"commit": "…", "dirty": false},
      "wall_time_s": 123.4, "finished_at": "2026-11-22T10:00:00+00:00"
    }

``scripts/make_table.py`` reads these files and never anything else.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = 1


@dataclass
class Metric:
    """One reported number and how it was measured."""

    value: float | None
    protocol: dict[str, Any] = field(default_factory=dict)
    stand_in: str | None = None

    def __post_init__(self) -> None:
        if self.value is not None:
            v = float(self.value)
            self.value = v if math.isfinite(v) else None


def write_results(path: str | os.PathLike, *, task: str, exp: str, scale: str, seed: int, model: str, norm: str,
                  dataset: str, steps: int, metrics: dict[str, Metric], stand_ins: list[str] | None = None,
                  config_hash: str = "", git: dict[str, Any] | None = None, wall_time_s: float | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``results.json`` atomically and return its content."""
    stand_ins = list(dict.fromkeys([*(stand_ins or []), *(m.stand_in for m in metrics.values() if m.stand_in)]))
    data = {
        "schema": SCHEMA, "task": task, "exp": exp, "scale": scale, "seed": int(seed), "model": model,
        "norm": norm, "dataset": dataset, "steps": int(steps),
        "metrics": {name: asdict(m) for name, m in metrics.items()},
        "stand_ins": stand_ins, "config_hash": config_hash, "git": git or {},
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 2),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return data


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    with open(path) as f:
        data = json.load(f)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: unsupported results schema {data.get('schema')!r}")
    return data


def find_results(root: str | os.PathLike) -> list[Path]:
    """Every ``results.json`` under ``root``."""
    root = Path(root)
    return sorted(root.rglob("results.json")) if root.is_dir() else []
