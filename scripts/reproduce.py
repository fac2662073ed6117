"""Train and evaluate every run a paper table needs, then render the table (``make reproduce-table-*``).

    python scripts/reproduce.py gan --scale full --seeds 0 1 2
    python scripts/reproduce.py nas_smoke --scale smoke --seeds 0 --set device=cpu
    python scripts/reproduce.py adv_clean adv_adv --scale full --seeds 0 1 2
    python scripts/reproduce.py adv_clean --scale full --nproc 4      # each run under torchrun with 4 processes

For every row of the table (``conf/paper_tables.yaml``), every variant of the table (e.g. the search dataset) and
every seed, it runs ``python -m tasks.<task> +exp=<row> scale=<scale> seed=<seed> <variant> <row overrides>
<extra overrides>``. Runs already finished are skipped by the task itself, so an interrupted reproduction resumes
where it stopped. The table is printed and written to ``<runs>/tables/<table>-<scale>.md``. On a cluster, use the
Hydra submitit launcher instead (see the README).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tasks.common.tables import load_specs, make_table


def commands(spec: dict, scale: str, seeds: list[int], extra: list[str], nproc: int) -> list[list[str]]:
    prefix = [sys.executable]
    if nproc > 1:
        prefix += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    out = []
    for row in spec["rows"]:
        for variant in spec.get("variants") or [[]]:
            for seed in seeds:
                out.append([*prefix, "-m", f"tasks.{spec['task']}", f"+exp={row['exp']}", f"scale={scale}",
                            f"seed={seed}", *variant, *row.get("overrides", []), *extra])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", metavar="table",
                        help="table name(s) from conf/paper_tables.yaml (runs shared by several tables run once)")
    parser.add_argument("--scale", default="full", choices=["full", "demo", "smoke"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs", default="runs", help="where results.json files are collected from")
    parser.add_argument("--nproc", type=int, default=1, help="processes per run (torchrun); 1 = plain python")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="an override passed to every run (repeatable), e.g. --set device=cpu")
    args = parser.parse_args()
    specs = load_specs()
    unknown = [t for t in args.tables if t not in specs]
    if unknown:
        print(f"error: unknown table {unknown[0]!r}; available: {', '.join(sorted(specs))}", file=sys.stderr)
        return 2
    cmds: list[list[str]] = []
    for table in args.tables:
        for cmd in commands(specs[table], args.scale, args.seeds, args.extra, args.nproc):
            if cmd not in cmds:
                cmds.append(cmd)
    failed = []
    for i, cmd in enumerate(cmds, 1):
        line = shlex.join(["python", *cmd[1:]])
        print(f"[{i}/{len(cmds)}] {line}", flush=True)
        if args.dry_run:
            continue
        t0 = time.time()
        if subprocess.run(cmd).returncode != 0:
            failed.append(line)
            print(f"    failed after {time.time() - t0:.0f} s", flush=True)
    if args.dry_run:
        return 0
    for table in args.tables:
        text = make_table(table, args.runs, args.scale)
        out = Path(args.runs) / "tables" / f"{table}-{args.scale}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print()
        print(text)
        print(f"(written to {out})")
    if failed:
        print(f"error: {len(failed)} run(s) failed:", *failed, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
