"""scripts/plot_analysis.py turns analysis rows of metrics.jsonl files into a figure and a summary table."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tasks.common.app import REPO_ROOT


def fake_run(root, exp, seed, balance):
    d = root / "gan" / exp / "demo" / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"exp": exp, "seed": seed, "scale_name": "demo"}))
    rows = [{"step": s, "analysis/G/balance": balance + 0.01 * s, "analysis/G/diversity": 0.5,
             "analysis/G/shared_grad_norm": 1.0} for s in (10, 20, 30)]
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_plot_analysis_writes_figure_and_summary(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path, "sngan_ccbn", seed, 0.5 + seed * 0.1)
        fake_run(tmp_path, "sngan_sabn", seed, 0.3)
    out = tmp_path / "fig"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "plot_analysis.py"), "--task", "gan",
                             "--runs", str(tmp_path), "--scale", "demo", "--out", str(out)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fig.png").stat().st_size > 10_000
    text = (tmp_path / "fig.md").read_text()
    assert "| sngan_ccbn | G | 0.7500 ± 0.0707 | 0.5000 ± 0.0000 | 1.0000 ± 0.0000 | 2 |" in text
    assert "| sngan_sabn | G | 0.5000 ± 0.0000" in text


def test_plot_analysis_without_runs_says_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "plot_analysis.py"), "--task", "gan",
                             "--runs", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "analysis.every=N" in result.stderr
