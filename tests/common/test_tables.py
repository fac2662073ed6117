"""Tables: mean ± std over seeds beside the paper's numbers, with protocols and stand-ins listed."""

from __future__ import annotations

import pytest
import yaml

from tasks.common.errors import UserError
from tasks.common.results import Metric, read_results, write_results
from tasks.common.tables import load_specs, make_table

SPEC = {
    "toy": {
        "title": "Toy table", "task": "toy", "source": "made up for the test",
        "columns": [{"metric": "acc", "label": "Acc", "digits": 1}, {"metric": "loss", "label": "Loss", "digits": 3}],
        "rows": [{"label": "A", "exp": "a", "paper": {"acc": 90.0}}, {"label": "B", "exp": "b", "paper": {"acc": 91.5}}],
    }
}


def write(root, exp, seed, acc, stand_in=None):
    d = root / exp / f"seed{seed}"
    d.mkdir(parents=True)
    write_results(d / "results.json", task="toy", exp=exp, scale="demo", seed=seed, model="m", norm="n",
                  dataset="d", steps=10, metrics={"acc": Metric(acc, {"split": "test", "samples": 100}, stand_in),
                                                  "loss": Metric(float("nan"))})


def test_table_mean_std_paper_numbers_protocols_and_stand_ins(tmp_path):
    specs = tmp_path / "tables.yaml"
    specs.write_text(yaml.safe_dump(SPEC))
    runs = tmp_path / "runs"
    for seed, acc in enumerate([80.0, 82.0, 84.0]):
        write(runs, "a", seed, acc)
    write(runs, "b", 0, 70.0, stand_in="random weights")
    text = make_table("toy", runs, "demo", specs)
    assert "| A | 90.0 | 82.0 ± 2.0 (n=3) | — | — |" in text
    assert "| B | 91.5 | 70.0† (n=1) | — | — |" in text
    assert "Acc protocol: split: test, samples: 100" in text
    assert "† stand-in: random weights" in text
    assert "made up for the test" in text
    assert "no results" in make_table("toy", runs, "full", specs)


def test_results_json_round_trip_and_nan_becomes_null(tmp_path):
    write(tmp_path, "a", 0, 50.0)
    data = read_results(tmp_path / "a" / "seed0" / "results.json")
    assert data["metrics"]["loss"]["value"] is None and data["metrics"]["acc"]["protocol"]["samples"] == 100


def test_unknown_table_lists_the_available_ones(tmp_path):
    specs = tmp_path / "tables.yaml"
    specs.write_text(yaml.safe_dump(SPEC))
    with pytest.raises(UserError, match="unknown table 'nope'; available: toy"):
        make_table("nope", tmp_path, None, specs)


def test_the_papers_tables_file_is_well_formed():
    for name, spec in load_specs().items():
        assert {"title", "task", "columns", "rows"} <= set(spec), name
        metrics = {c.get("key", c["metric"]) for c in spec["columns"]}
        for row in spec["rows"]:
            assert set(row.get("paper") or {}) <= metrics, (name, row["label"])


def test_ratio_columns_divide_by_the_baseline_row(tmp_path):
    spec = {"m": {"title": "t", "task": "toy", "columns": [
        {"metric": "mem", "label": "mem", "digits": 0},
        {"metric": "mem", "key": "ratio", "label": "ratio", "digits": 3, "ratio": True}],
        "rows": [{"label": "BN", "exp": "a"}, {"label": "Mimic", "exp": "b", "baseline": "a", "paper": {"ratio": 0.9}}]}}
    specs = tmp_path / "t.yaml"
    specs.write_text(yaml.safe_dump(spec))
    for exp, seed, mem in (("a", 0, 100.0), ("a", 1, 110.0), ("b", 0, 84.0)):
        d = tmp_path / "runs" / exp / str(seed)
        d.mkdir(parents=True)
        write_results(d / "results.json", task="toy", exp=exp, scale="demo", seed=seed, model="m", norm="n",
                      dataset="d", steps=1, metrics={"mem": Metric(mem)})
    text = make_table("m", tmp_path / "runs", "demo", specs)
    assert "| BN | — | 105 ± 7 (n=2) | — | — |" in text
    assert "| Mimic | — | 84 (n=1) | 0.900 | 0.800 |" in text
