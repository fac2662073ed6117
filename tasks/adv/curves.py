"""Per-epoch validation curves (accuracy and loss, clean and PGD, per branch) as a PNG (matplotlib, Agg)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never a display
import matplotlib.pyplot as plt


def plot_curves(history: Sequence[dict[str, Any]], path: str | os.PathLike, title: str = "") -> Path:
    """Plot every ``<split>/<kind>_acc_b<k>`` and ``..._loss_b<k>`` series of ``history`` (one dict per validated
    epoch, with an ``epoch`` key) against the epoch; write ``path`` atomically and return it."""
    path = Path(path)
    keys = sorted({k for row in history for k in row if "/" in k and ("_acc_" in k or "_loss_" in k)})
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for key in keys:
        points = [(row["epoch"], row[key]) for row in history if key in row]
        ax = ax_acc if "_acc_" in key else ax_loss
        style = "-" if "clean" in key else "--"
        ax.plot([e for e, _ in points], [v for _, v in points], style, marker="." if len(points) < 30 else None,
                label=key.replace("_acc", "").replace("_loss", ""))
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path
