"""Paper-style tables from ``results.json`` files: mean ± std over seeds beside the paper's numbers.

The paper's numbers and the layout of each table live in one data file, ``conf/paper_tables.yaml``::

    <table name>:
      title: "..."                     # printed as the heading
      task: gan                        # results.json "task" to collect
      source: "where the paper numbers come from"
      columns:                         # one column pair (paper, ours) per metric
        - {metric: is, label: "IS ↑", digits: 2}
      rows:
        - {label: "SNGAN", exp: sngan_ccbn, paper: {is: 8.76}}
        - {label: "SNGAN-SaBN", exp: sngan_sabn, paper: {is: 8.89}, match: {norm: sabn}}

A column with ``ratio: true`` shows mean(row) / mean(row's ``baseline`` experiment) of its metric (e.g. memory
of MimicNorm over BN); rows without a ``baseline`` show "—" there.

``match`` (optional, on a row or a column) filters results by top-level results.json fields, e.g. a column
``{metric: nb201_test_acc, match: {dataset: CIFAR-100}}`` takes its runs from CIFAR-100 searches only. A row may
also carry ``overrides`` (extra command-line overrides used by ``scripts/reproduce.py`` for that row). Cells computed with a stand-in are marked
``†`` and every stand-in and every distinct protocol is listed under the table, so no number appears without how it
was measured.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .results import find_results, read_results

PAPER_TABLES = Path(__file__).resolve().parents[2] / "conf" / "paper_tables.yaml"


def load_specs(path: str | Path = PAPER_TABLES) -> dict[str, dict[str, Any]]:
    with open(path) as f:
        specs = yaml.safe_load(f) or {}
    return specs


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    stand_in: bool = False

    def text(self, digits: int) -> str:
        if not self.values:
            return "—"
        mean = statistics.fmean(self.values)
        mark = "†" if self.stand_in else ""
        if len(self.values) == 1:
            return f"{mean:.{digits}f}{mark} (n=1)"
        return f"{mean:.{digits}f} ± {statistics.stdev(self.values):.{digits}f}{mark} (n={len(self.values)})"


def collect(runs_root: str | Path, task: str, scale: str | None) -> list[dict[str, Any]]:
    """Every readable ``results.json`` of ``task`` (and ``scale``) under ``runs_root``."""
    out = []
    for path in find_results(runs_root):
        try:
            data = read_results(path)
        except (OSError, ValueError, json.JSONDecodeError):
            continue
        if data.get("task") == task and (scale is None or data.get("scale") == scale):
            data["_path"] = str(path)
            out.append(data)
    return out


def render(name: str, spec: dict[str, Any], results: list[dict[str, Any]], scale: str | None = None) -> str:
    """The Markdown table ``name`` for ``results``."""
    columns = spec["columns"]
    header = ["row"]
    for col in columns:
        header += [f"{col['label']} (paper)", f"{col['label']} (ours)"]
    lines = [f"### {spec.get('title', name)}" + (f" — scale `{scale}`" if scale else ""), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    protocols: dict[str, set[str]] = {}
    stand_ins: set[str] = set()
    for row in spec["rows"]:
        match = row.get("match", {})
        rows = [r for r in results if r.get("exp") == row["exp"] and all(r.get(k) == v for k, v in match.items())]
        cells = [row["label"]]
        for col in columns:
            metric, digits = col["metric"], int(col.get("digits", 2))
            key = col.get("key", metric)
            paper = (row.get("paper") or {}).get(key)
            cells.append("—" if paper is None else f"{paper:.{digits}f}" if isinstance(paper, (int, float)) else str(paper))
            cell = Cell()
            col_match = col.get("match", {})
            col_rows = [r for r in rows if all(r.get(k) == v for k, v in col_match.items())]
            if col.get("ratio"):
                base = [r for r in results if r.get("exp") == row.get("baseline")
                        and all(r.get(k) == v for k, v in {**match, **col_match}.items())]
                cells.append(_ratio(col_rows, base, metric, digits))
                continue
            for r in sorted(col_rows, key=lambda r: r.get("seed", 0)):
                m = r.get("metrics", {}).get(metric)
                if not m or m.get("value") is None:
                    continue
                cell.values.append(float(m["value"]))
                cell.seeds.append(int(r.get("seed", 0)))
                if m.get("stand_in"):
                    cell.stand_in = True
                    stand_ins.add(m["stand_in"])
                protocols.setdefault(col["label"], set()).add(json.dumps(m.get("protocol", {})))
            for r in col_rows:
                stand_ins.update(r.get("stand_ins") or [])
            cells.append(cell.text(digits))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if spec.get("source"):
        lines.append(f"Paper numbers: {spec['source']}.")
    for label, protos in protocols.items():
        for p in sorted(protos):
            desc = ", ".join(f"{k}: {v}" for k, v in json.loads(p).items())
            lines.append(f"- {label} protocol: {desc}")
    for s in sorted(stand_ins):
        lines.append(f"- † stand-in: {s}")
    if not results:
        lines.append("- no results found yet: run the experiments first")
    return "\n".join(lines) + "\n"


def _ratio(rows: list[dict[str, Any]], base: list[dict[str, Any]], metric: str, digits: int) -> str:
    def mean(rs: list[dict[str, Any]]) -> float | None:
        vals = [r["metrics"][metric]["value"] for r in rs
                if r.get("metrics", {}).get(metric, {}).get("value") is not None]
        return statistics.fmean(vals) if vals else None

    a, b = mean(rows), mean(base)
    return "—" if a is None or not b else f"{a / b:.{digits}f}"


def make_table(name: str, runs_root: str | Path = "runs", scale: str | None = None,
               specs_path: str | Path = PAPER_TABLES) -> str:
    specs = load_specs(specs_path)
    if name not in specs:
        raise UserError(f"unknown table {name!r}; available: {', '.join(sorted(specs))}")
    spec = specs[name]
    return render(name, spec, collect(runs_root, spec["task"], scale), scale)
