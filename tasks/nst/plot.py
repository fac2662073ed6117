"""Loss curves of style-transfer runs from their ``metrics.jsonl``, several runs overlaid (AdaIN vs SaAdaIN)::

    python -m tasks.nst.plot runs/nst/adain/demo/seed0 runs/nst/saadain/demo/seed0 --out curves.png

Four panels: training content loss, training style loss, validation content loss, validation style loss (weighted
as the paper plots them: content ×1, style ×10; log scale). Content panels draw the loss against the network's own
target solid and against the plain AdaIN target dashed. Training points are means over each logging interval.
Stand-ins (random encoder, demo data) are printed under the figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from tasks.common.errors import UserError
from tasks.common.results import read_results
from tasks.common.tracking import read_metrics

PANELS = (
    ("training content loss", "train/loss_content", "train/loss_content_adain_target"),
    ("training style loss (×10)", "train/loss_style", None),
    ("validation content loss", "val/loss_content", "val/loss_content_adain_target"),
    ("validation style loss (×10)", "val/loss_style", None),
)


def read_curves(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``{metric: (steps, values)}`` from ``metrics.jsonl``; a step logged twice (a resumed run repeats the steps
    after its last checkpoint) keeps its last value."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"no metrics.jsonl in {run_dir} (is it a run directory of tasks.nst?)")
    series: dict[str, dict[int, float]] = {}
    for row in read_metrics(path):
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                series.setdefault(key, {})[int(row["step"])] = float(value)
    return {k: (sorted(v), [v[s] for s in sorted(v)]) for k, v in series.items()}


def describe_run(run_dir: Path) -> tuple[str, list[str]]:
    """A label (experiment, scale, seed) and the stand-ins of a run (results.json, else its config)."""
    cfg: dict[str, Any] = {}
    if (run_dir / "config.yaml").is_file():
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    label = f"{cfg.get('exp', run_dir.name)} ({cfg.get('scale_name', '?')}, seed {cfg.get('seed', '?')})"
    if (run_dir / "results.json").is_file():
        return label, list(read_results(run_dir / "results.json").get("stand_ins") or [])
    model = cfg.get("model") or {}
    stand_ins = [] if model.get("vgg_path") else ["random VGG-19 encoder — stand-in, not vgg_normalised.pth"]
    if (cfg.get("data") or {}).get("name") == "skimage_demo":
        stand_ins.append("demo data: scikit-image photos as content, its textures + generated patterns as styles")
    return label, stand_ins


def save_curves(run_dirs: list[str | Path], out: str | Path, title: str | None = None) -> Path:
    """Draw the runs' curves into ``out`` (PNG); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [Path(r) for r in run_dirs]
    if not runs:
        raise UserError("give at least one run directory")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    notes: list[str] = []
    labels = []
    for i, run_dir in enumerate(runs):
        curves = read_curves(run_dir)
        label, stand_ins = describe_run(run_dir)
        labels.append(label.split(" (")[0])
        notes += [s for s in stand_ins if s not in notes]
        colour = f"C{i}"
        for ax, (_, own, adain) in zip(axes.flat, PANELS):
            if own in curves:
                ax.plot(*curves[own], color=colour, marker="o" if own.startswith("val") else None, ms=3,
                        label=label)
            if adain and adain in curves and curves[adain] != curves.get(own):  # identical for AdaIN
                ax.plot(*curves[adain], color=colour, ls="--", marker="o" if adain.startswith("val") else None,
                        ms=3, label=f"{label}, vs AdaIN target")
    for ax, (name, _, _) in zip(axes.flat, PANELS):
        ax.set_title(name)
        ax.set_xlabel("iteration")
        if any(line.get_ydata().size and (line.get_ydata() > 0).all() for line in ax.get_lines()):
            ax.set_yscale("log")
        if ax.get_lines():
            ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or " vs ".join(dict.fromkeys(labels)) + " — style-transfer losses")
    if notes:
        fig.text(0.01, 0.005, "\n".join(f"stand-in: {n}" for n in notes), fontsize=8, color="firebrick",
                 va="bottom")
    fig.tight_layout(rect=(0, 0.03 * (1 + len(notes)), 1, 0.97))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (each holds metrics.jsonl)")
    parser.add_argument("--out", default="nst-curves.png", help="PNG file to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    try:
        path = save_curves(args.runs, args.out, args.title)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"curves written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
