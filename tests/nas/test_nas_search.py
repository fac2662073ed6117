"""End-to-end searches at smoke scale: CIFAR-100 in its real format with NB201 split files and a NATS-Bench fixture
read through the real API (killed and resumed), and GDAS on the embedded digits with the look-up off."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from tasks.common.app import compose_config
from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.nas.benchmark import write_fake_tss_benchmark
from tasks.nas.data import write_split_file
from tasks.nas.search import search

SMOKE = ["+exp=darts_sabn", "scale=smoke", "device=cpu", "logger=disabled", "ckpt.every=5"]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def final_state(run_dir: Path) -> dict:
    return load_file(CheckpointManager(run_dir / "checkpoints", "").paths()[-1])


def fixture_accuracies(i: int) -> dict:
    """Distinct fake NB201 numbers for the i-th genotype (TEST DATA, not benchmark results)."""
    return {
        "cifar10-valid": {"x-valid": 80.0 + i, "ori-test": 80.5 + i},
        "cifar10": 90.0 + i,
        "cifar100": {"x-valid": 60.0 + i, "x-test": 61.0 + i, "ori-test": 62.0 + i},
        "ImageNet16-120": {"x-valid": 30.0 + i, "x-test": 31.0 + i, "ori-test": 32.0 + i},
    }


@pytest.mark.slow
def test_cifar100_search_looks_up_the_benchmark_and_resumes_bit_identically(cli, tmp_path, cifar100_root):
    split_dir = tmp_path / "splits"
    split_dir.mkdir()
    write_split_file(split_dir / "cifar100-test-split.txt",
                     {"xvalid": list(range(0, 100, 2)), "xtest": list(range(1, 100, 2))})
    common = [*SMOKE, "data=cifar100", f"data.root={cifar100_root}", f"nas.split_dir={split_dir}"]

    # reference: uninterrupted, look-up off (run in this process: it also tells which genotypes the search derives)
    ref_dir = tmp_path / "ref"
    search(compose_config("nas", [*common, "nas.benchmark_path=null", f"run_dir={ref_dir}"]))
    ref = results(ref_dir)
    assert ref["dataset"] == "CIFAR-100" and ref["metrics"]["nb201_test_acc"]["value"] is None
    genotypes = list(dict.fromkeys(r["genotype"] for r in ref["search_history"]))
    bench = tmp_path / "bench"
    write_fake_tss_benchmark(bench, {g: fixture_accuracies(i) for i, g in enumerate(genotypes)})

    run_dir = tmp_path / "run"
    args = [*common, f"nas.benchmark_path={bench}", f"run_dir={run_dir}"]
    killed = cli([*args, "debug.kill_at_step=7"], tmp_path, module="tasks.nas")
    assert killed.returncode == -9, killed.stderr
    assert not (run_dir / "results.json").exists() and final_state(run_dir)["step"] == 5
    resumed = cli(args, tmp_path, module="tasks.nas")
    assert resumed.returncode == 0, resumed.stderr

    # the same search as the reference, bit for bit
    a, b = final_state(ref_dir), final_state(run_dir)
    assert a["step"] == b["step"] == 12 and b["finished"]
    for name, tensor in a["objects"]["model"].items():
        assert torch.equal(tensor, b["objects"]["model"][name]), name
    out = results(run_dir)
    for key in ("param_free_ops", "alpha_entropy", "supernet_valid_acc", "supernet_train_acc"):
        assert out["metrics"][key]["value"] == ref["metrics"][key]["value"], key
    assert [r["genotype"] for r in out["search_history"]] == [r["genotype"] for r in ref["search_history"]]

    # every epoch's look-up returns the fixture's numbers for that epoch's genotype, through nats_bench
    for record in out["search_history"]:
        i = genotypes.index(record["genotype"])
        assert record["nb201/cifar10_test"] == pytest.approx(90.0 + i)
        assert record["nb201/cifar100_test"] == pytest.approx(62.0 + i)  # ori-test
        assert record["nb201/cifar100_xtest"] == pytest.approx(61.0 + i)
        assert record["nb201/imagenet16_test"] == pytest.approx(32.0 + i)
    final = genotypes.index(out["genotype"])
    assert out["genotype"] == out["search_history"][-1]["genotype"]
    test_acc = out["metrics"]["nb201_test_acc"]
    assert test_acc["value"] == pytest.approx(62.0 + final)  # CIFAR-100 search: CIFAR-100 ori-test
    assert "valtest-accuracy" in test_acc["protocol"]["query"] and "hp='200'" in test_acc["protocol"]["query"]
    assert out["metrics"]["nb201_imagenet16_test"]["value"] == pytest.approx(32.0 + final)
    assert "xvalid" in out["metrics"]["supernet_valid_acc"]["protocol"]["split"]
    assert (run_dir / "search_curve.png").stat().st_size > 10_000


@pytest.mark.slow
def test_gdas_digits_search_without_benchmark_says_the_lookup_is_off(tmp_path, caplog):
    run_dir = tmp_path / "gdas"
    cfg = compose_config("nas", ["+exp=gdas_saauxbn", "scale=smoke", "device=cpu", "logger=disabled",
                                 "nas.benchmark_path=null", f"run_dir={run_dir}"])
    with caplog.at_level(logging.INFO, logger="tasks.nas.search"):
        search(cfg)
    assert sum("look-up off" in r.message for r in caplog.records) == 1
    out = results(run_dir)
    assert out["dataset"] == "digits" and out["model"] == "nb201-supernet-gdas" and out["norm"] == "saauxbn"
    assert out["metrics"]["nb201_test_acc"]["value"] is None
    assert "off" in out["metrics"]["nb201_test_acc"]["protocol"]["lookup"]
    assert 0 <= out["metrics"]["param_free_ops"]["value"] <= 6
    history = out["search_history"]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    taus = [r["tau"] for r in rows if "tau" in r]
    assert taus == pytest.approx([10.0, 5.05, 0.1])  # GDAS: linear 10 -> 0.1 over the 3 epochs
    assert (run_dir / "search_curve.png").is_file()
