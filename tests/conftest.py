"""Shared fixtures: environment for tests, tiny datasets in their real on-disk formats, and a CLI runner."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never talk to W&B unless a test asks for offline mode explicitly.
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist runs one worker per core: more threads per worker only makes them wait for each other.
    import torch

    torch.set_num_threads(1)


def _write_pickle(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def class_pattern_images(labels: np.ndarray, seed: int, size: int = 32) -> np.ndarray:
    """uint8 N×3×size×size images whose colour and stripes depend on the label (learnable), plus noise."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    yy, xx = np.mgrid[0:size, 0:size]
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, lab in enumerate(labels):
        freq = 1 + lab % 5
        stripes = 0.5 + 0.5 * np.sin((xx if lab % 2 else yy) * freq * np.pi / size)
        colour = np.array([(lab * 37) % 255, (lab * 91) % 255, (lab * 151) % 255]) / 255.0
        images[i] = colour[:, None, None] * 0.5 + stripes[None] * 0.5
    images += rng.normal(0, 0.05, images.shape)
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def write_cifar10(root: Path, per_batch: int = 20, test: int = 40, seed: int = 0) -> Path:
    """A tiny ``cifar-10-batches-py`` folder in the real pickle format (5 train batches, 1 test batch, meta)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for b in range(1, 6):
        labels = rng.integers(0, 10, per_batch)
        data = class_pattern_images(labels, seed + b).reshape(per_batch, -1)
        _write_pickle(folder / f"data_batch_{b}", {
            "batch_label": f"training batch {b} of 5", "labels": labels.tolist(), "data": data,
            "filenames": [f"img_{b}_{i}.png" for i in range(per_batch)],
        })
    labels = rng.integers(0, 10, test)
    _write_pickle(folder / "test_batch", {
        "batch_label": "testing batch 1 of 1", "labels": labels.tolist(),
        "data": class_pattern_images(labels, seed + 99).reshape(test, -1),
        "filenames": [f"test_{i}.png" for i in range(test)],
    })
    _write_pickle(folder / "batches.meta", {
        "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
        "num_cases_per_batch": per_batch, "num_vis": 3072,
    })
    return root


def write_cifar100(root: Path, train: int = 200, test: int = 100, seed: int = 0) -> Path:
    """A tiny ``cifar-100-python`` folder in the real pickle format (train, test, meta)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, n in (("train", train), ("test", test)):
        fine = rng.integers(0, 100, n)
        _write_pickle(folder / name, {
            "filenames": [f"{name}_{i}.png" for i in range(n)], "batch_label": name,
            "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
            "data": class_pattern_images(fine, seed + len(name)).reshape(n, -1),
        })
    _write_pickle(folder / "meta", {
        "fine_label_names": [f"class{i}" for i in range(100)],
        "coarse_label_names": [f"super{i}" for i in range(20)],
    })
    return root


@pytest.fixture(scope="session")
def cifar10_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar10"))


@pytest.fixture(scope="session")
def cifar100_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cifar100(tmp_path_factory.mktemp("cifar100"))


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
            module: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args...`` (or ``python args...``) in ``cwd`` with W&B disabled, one CPU thread."""
    full_env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0",
                "PYTHONWARNINGS": "ignore", **(env or {})}
    cmd = [sys.executable, *(["-m", module] if module else []), *args]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli
