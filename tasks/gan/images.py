"""Pictures of a run: per-class sample grids (one row per class) and loss/metric curves."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torchvision.utils import make_grid


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] → uint8 by truncation of 127.5·x + 127.5 (the official evaluation's conversion)."""
    return (images.detach().float() * 127.5 + 127.5).clamp(0, 255).to(torch.uint8)


def save_class_grid(images: Tensor, rows: int, cols: int, row_labels: Sequence[str], path: str | os.PathLike,
                    min_cell: int = 64) -> Path:
    """Save ``rows × cols`` images in [-1, 1] (row-major: one row per class) as a PNG with the class names on the
    left; cells are enlarged (nearest) to at least ``min_cell`` pixels so small digits stay readable."""
    if images.shape[0] != rows * cols:
        raise ValueError(f"expected {rows * cols} images for a {rows}×{cols} grid, got {images.shape[0]}")
    grid = make_grid(to_uint8(images).cpu(), nrow=cols, padding=2, pad_value=255)
    picture = Image.fromarray(grid.permute(1, 2, 0).numpy())
    factor = max(1, math.ceil(min_cell / images.shape[-1]))
    if factor > 1:
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    margin = 8 + 7 * max((len(s) for s in row_labels), default=1)
    canvas = Image.new("RGB", (picture.width + margin, picture.height), "white")
    canvas.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    cell = picture.height / rows
    for r, label in enumerate(row_labels):
        draw.text((4, int(r * cell + cell / 2 - 6)), str(label), fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    canvas.save(tmp)
    os.replace(tmp, path)
    return path


def plot_curves(rows: list[dict], path: str | os.PathLike) -> Path | None:
    """Loss curves (D and G hinge losses) and every evaluated metric against G steps, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("train/d_loss", "train/g_loss") if any(k in r for r in rows)]
    keys += sorted({k for r in rows for k in r if k.startswith("eval/")})
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o" if key.startswith("eval/") else None, markersize=3, linewidth=1)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("G step", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
