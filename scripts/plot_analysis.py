"""Curves of gradient balance and diversity over training (CCBN vs SaBN, AuxBN vs SaAuxBN), one figure per task,
and a summary table (mean over training, mean ± std over seeds).

    python scripts/plot_analysis.py --task gan --scale demo --runs runs --out runs/analysis/gan-demo

Reads the ``analysis/<prefix>/{balance,diversity,shared_grad_norm}`` rows that ``analysis.every=N`` writes into
each run's ``metrics.jsonl`` (see tasks/common/analysis.py) and writes ``<out>.png`` and ``<out>.md``.
Balance = coefficient of variation of the per-condition gradient norms (lower = more balanced); diversity = mean
pairwise cosine similarity of the per-condition gradients (lower = more diverse).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

METRICS = ("balance", "diversity", "shared_grad_norm")


def load_runs(runs: Path, task: str, scale: str | None) -> dict[str, list[dict]]:
    """exp -> list of {"seed", "series": {prefix: {metric: [(step, value)]}}} for runs with analysis rows."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for cfg_path in sorted(runs.glob(f"{task}/**/config.yaml")):
        run_dir = cfg_path.parent
        metrics = run_dir / "metrics.jsonl"
        if not metrics.is_file():
            continue
        cfg = _read_yaml(cfg_path)
        if scale is not None and cfg.get("scale_name") != scale:
            continue
        series: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
        for line in metrics.read_text().splitlines():
            row = json.loads(line)
            for key, value in row.items():
                parts = key.split("/")
                if len(parts) == 3 and parts[0] == "analysis" and parts[2] in METRICS and isinstance(value, float):
                    series[parts[1]][parts[2]].append((row["step"], value))
        if series:
            groups[str(cfg.get("exp"))].append({"seed": cfg.get("seed"), "series": series})
    return groups


def _read_yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def plot(groups: dict[str, list[dict]], title: str, out: Path) -> None:
    prefixes = sorted({p for runs in groups.values() for r in runs for p in r["series"]})
    fig, axes = plt.subplots(len(prefixes), 2, figsize=(11, 3.6 * len(prefixes)), squeeze=False)
    for row, prefix in enumerate(prefixes):
        for col, metric in enumerate(("balance", "diversity")):
            ax = axes[row][col]
            for exp, runs in sorted(groups.items()):
                curves = [dict(r["series"][prefix][metric]) for r in runs if r["series"].get(prefix, {}).get(metric)]
                if not curves:
                    continue
                steps = sorted(set.intersection(*(set(c) for c in curves)))
                mean = [statistics.fmean(c[s] for c in curves) for s in steps]
                line = ax.plot(steps, mean, label=f"{exp} (n={len(curves)})")[0]
                if len(curves) > 1:
                    lo = [min(c[s] for c in curves) for s in steps]
                    hi = [max(c[s] for c in curves) for s in steps]
                    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)
            ax.set_xlabel("step")
            ax.set_ylabel(metric)
            ax.set_title(f"{prefix}: {'CV of per-condition grad norms (lower = balanced)' if metric == 'balance' else 'mean pairwise cosine (lower = diverse)'}",
                         fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def summary(groups: dict[str, list[dict]]) -> str:
    lines = ["| experiment | model part | balance ↓ | diversity ↓ | shared grad norm | seeds |", "|---|---|---|---|---|---|"]
    for exp, runs in sorted(groups.items()):
        prefixes = sorted({p for r in runs for p in r["series"]})
        for prefix in prefixes:
            cells = []
            for metric in METRICS:
                per_seed = [statistics.fmean(v for _, v in r["series"][prefix][metric])
                            for r in runs if r["series"].get(prefix, {}).get(metric)]
                if not per_seed:
                    cells.append("—")
                elif len(per_seed) == 1:
                    cells.append(f"{per_seed[0]:.4f}")
                else:
                    cells.append(f"{statistics.fmean(per_seed):.4f} ± {statistics.stdev(per_seed):.4f}")
            lines.append(f"| {exp} | {prefix} | {' | '.join(cells)} | {len(runs)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="gan, adv, nas, ...")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--scale", default=None)
    parser.add_argument("--out", default=None, help="output path without extension (default runs/analysis/<task>)")
    args = parser.parse_args()
    groups = load_runs(Path(args.runs), args.task, args.scale)
    if not groups:
        print(f"error: no {args.task} runs with analysis rows under {args.runs} (train with analysis.every=N)",
              file=sys.stderr)
        return 2
    out = Path(args.out or Path(args.runs) / "analysis" / f"{args.task}{'-' + args.scale if args.scale else ''}")
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"{args.task}: gradient balance and diversity of the conditional affines"
    plot(groups, title, out.with_suffix(".png"))
    text = (f"### {title}\n\nMean over logged steps; mean ± std over seeds. Balance = std/mean of per-condition "
            f"gradient norms; diversity = mean pairwise cosine similarity.\n\n{summary(groups)}\n")
    out.with_suffix(".md").write_text(text)
    print(text)
    print(f"(figure: {out.with_suffix('.png')}, table: {out.with_suffix('.md')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
