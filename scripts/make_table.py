"""Render a paper table (mean ± std over seeds, beside the paper's numbers) from the runs' results.json files.

    python scripts/make_table.py gan --runs runs --scale full [--out tables/gan.md]
    python scripts/make_table.py --list
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.common.errors import UserError
from tasks.common.tables import load_specs, make_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", help="table name from conf/paper_tables.yaml")
    parser.add_argument("--runs", default="runs", help="folder searched for results.json files")
    parser.add_argument("--scale", default=None, help="only results of this scale (full, demo, smoke)")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    parser.add_argument("--list", action="store_true", help="list the available tables")
    args = parser.parse_args()
    if args.list or not args.table:
        for name, spec in load_specs().items():
            print(f"{name}: {spec.get('title', '')}")
        return 0
    try:
        text = make_table(args.table, args.runs, args.scale)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
