"""``python -m tasks.gan.demo [key=value ...]``: the README's first command (``make demo``).

Trains SNGAN-32 with CCBN and with SaBN on the embedded digits at demo scale (``+exp=sngan_ccbn scale=demo``,
``+exp=sngan_sabn scale=demo``), evaluates both, writes their per-class sample grids and prints a side-by-side
table. Offline, the metrics come from a small classifier trained on the digits (trained once, cached): the class
accuracy of conditional samples and a Fréchet distance in its features, labelled as stand-ins; when Inception
weights are configured (``$SABN_INCEPTION_WEIGHTS``), IS and FID are added. Budget: 10 minutes on 2 CPU cores.

The classifier is prepared first; then the two runs train side by side, one process each with
``cores // 2`` threads (tiny models gain little from more threads, and two single-threaded processes degrade
gracefully on a busy machine where two-thread OpenMP regions stall). Runs that already finished are reused
(delete ``runs/gan/sngan_*/demo`` to train again); ``key=value`` overrides go to both runs (e.g. ``seed=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from tasks.common.app import OneLineParser, compose_config, main_guarded
from tasks.common.errors import UserError
from tasks.common.runtime import DistEnv, select_device
from tasks.common.tables import load_specs

from .evaluation import DataSource, Evaluator

EXPERIMENTS = (("SNGAN-CCBN", "sngan_ccbn"), ("SNGAN-SaBN", "sngan_sabn"))
POLL_S = 30


def metric_rows() -> list[tuple[str, str, int]]:
    """(metric, label, digits) of the paper table ``gan`` (``conf/paper_tables.yaml``)."""
    return [(c["metric"], c["label"], int(c.get("digits", 2))) for c in load_specs()["gan"]["columns"]]


def side_by_side(results: list[tuple[str, dict]]) -> str:
    """The demo's Markdown table: one column per run, then protocols and stand-ins."""
    lines = ["| metric | " + " | ".join(label for label, _ in results) + " |",
             "|---|" + "---:|" * len(results)]
    notes: dict[str, str] = {}
    stand_ins: list[str] = []
    for metric, label, digits in metric_rows():
        cells = []
        for _, res in results:
            m = res["metrics"].get(metric)
            if m is None or m["value"] is None:
                cells.append("—")
                continue
            cells.append(f"{m['value']:.{digits}f}{'†' if m['stand_in'] else ''}")
            notes.setdefault(label, ", ".join(f"{k}: {v}" for k, v in m["protocol"].items() if k != "step"))
            if m["stand_in"] and m["stand_in"] not in stand_ins:
                stand_ins.append(m["stand_in"])
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {label}: {text}" for label, text in notes.items()]
    lines += [f"- † stand-in: {s}" for s in stand_ins]
    skipped = {k: v for _, res in results for k, v in (res.get("skipped_metrics") or {}).items()}
    if skipped:
        lines.append(f"- IS/FID not computed: {next(iter(skipped.values()))}")
    return "\n".join(lines)


def prepare_metrics(overrides: list[str]) -> None:
    """Train (or find) the cached digits classifier and reference statistics before the runs start, so the two
    runs do not both train it."""
    cfg = compose_config("gan", [f"+exp={EXPERIMENTS[0][1]}", "scale=demo", *overrides])
    Evaluator(cfg, DataSource(cfg.data), 10, select_device(cfg.device, DistEnv())).prepare()


def last_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    lines = path.read_text().strip().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0


def train_side_by_side(runs: list[tuple[str, str, Path]], overrides: list[str], total: int) -> None:
    """Start one ``python -m tasks.gan`` process per run, report progress, fail with the log tail of a failed
    run."""
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 2) // 2))
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    procs = []
    for label, exp, run_dir in runs:
        run_dir.mkdir(parents=True, exist_ok=True)
        log = open(run_dir / "demo_output.log", "w")  # noqa: SIM115 - closed after the process ends
        cmd = [sys.executable, "-m", "tasks.gan", f"+exp={exp}", "scale=demo", *overrides]
        procs.append((label, run_dir, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    print(f"training {' and '.join(label for label, *_ in runs)} side by side ({threads} thread(s) each; "
          f"logs: {', '.join(str(r / 'demo_output.log') for _, r, _, _ in procs)})", flush=True)
    report_at = time.time() + POLL_S
    while any(p.poll() is None for *_, p, _ in procs):
        time.sleep(1)
        if time.time() >= report_at:
            report_at += POLL_S
            print("  " + ", ".join(f"{label} step {last_step(r)}/{total}" for label, r, _, _ in procs), flush=True)
    for label, run_dir, p, log in procs:
        log.close()
        if p.returncode != 0:
            tail = (run_dir / "demo_output.log").read_text().strip().splitlines()[-1:]
            raise UserError(f"{label} failed (exit {p.returncode}): {tail[0] if tail else 'no output'} "
                            f"(see {run_dir / 'demo_output.log'})")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m tasks.gan.demo", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="key=value overrides for both runs (e.g. seed=1)")
    args = parser.parse_args(argv)
    t0 = time.time()
    configs = [(label, compose_config("gan", [f"+exp={exp}", "scale=demo", *args.overrides]))
               for label, exp in EXPERIMENTS]
    todo = []
    for label, cfg in configs:
        if (Path(str(cfg.run_dir)) / "results.json").is_file():
            print(f"{label}: already finished in {cfg.run_dir}; reusing its results")
        else:
            todo.append((label, str(cfg.exp), Path(str(cfg.run_dir))))
    if todo:
        prepare_metrics(args.overrides)
        torch.set_num_threads(1)  # the parent only waits from here on
        train_side_by_side(todo, args.overrides, int(configs[0][1].train.g_steps))
    results = []
    for label, cfg in configs:
        res = json.loads((Path(str(cfg.run_dir)) / "results.json").read_text())
        grids = sorted((Path(str(cfg.run_dir)) / "samples").glob("step_*.png"))
        results.append((label, {**res, "grid": str(grids[-1]) if grids else None}))
    print(f"\n### SNGAN-32 on the digits, demo scale ({results[0][1]['steps']} G steps): CCBN vs SaBN\n")
    print(side_by_side(results))
    for label, res in results:
        print(f"- {label} samples (one row per digit class): {res['grid']}")
    print(f"\ndemo wall time: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    main_guarded(main)
