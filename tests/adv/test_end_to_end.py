"""``python -m tasks.adv +exp=pgd_saauxbn scale=smoke`` on the tiny CIFAR-10 fixture: finishes, writes results.json
with every table metric and its protocol, resumes bit-identically after a SIGKILL, and its checkpoints evaluate
with ``python -m tasks.adv.evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.tables import load_specs

TABLE_METRICS = ["clean_acc_b0", "clean_acc_b1", "pgd10_acc_b0", "pgd10_acc_b1", "pgd20_acc_b0", "pgd20_acc_b1"]


def smoke(cifar10_root: Path, run_dir: Path, *extra: str) -> list[str]:
    # 100 fixture training images - 32 validation = 68 → 2 batches of 32 per epoch; 3 epochs = 6 steps.
    return ["+exp=pgd_saauxbn", "scale=smoke", "device=cpu", "data=cifar10", f"data.root={cifar10_root}",
            "train.val_size=32", "train.batch_size=32", "eval.val_samples=null", "eval.test_samples=null",
            "train.epochs=3", "ckpt.every=2", "ckpt.keep=2", "analysis.every=3", f"run_dir={run_dir}", *extra]


def newest(run_dir: Path) -> dict:
    return load_file(CheckpointManager(run_dir / "checkpoints", "").paths()[-1])


@pytest.mark.slow
def test_smoke_run_finishes_resumes_and_evaluates(cli, tmp_path, cifar10_root):
    a, b = tmp_path / "a", tmp_path / "b"
    done = cli(smoke(cifar10_root, a), tmp_path, module="tasks.adv")
    assert done.returncode == 0, done.stderr

    results = json.loads((a / "results.json").read_text())
    assert (results["task"], results["exp"], results["norm"], results["steps"]) == ("adv", "pgd_saauxbn", "saauxbn", 6)
    specs = load_specs()
    needed = {c["metric"] for t in ("adv_clean", "adv_adv") for c in specs[t]["columns"]}
    assert needed <= set(TABLE_METRICS)
    assert set(results["metrics"]) == set(TABLE_METRICS) | {f"best_{m}" for m in TABLE_METRICS}
    for name, metric in results["metrics"].items():
        assert 0 <= metric["value"] <= 100, name
        p = metric["protocol"]
        assert p["samples"] == 40 and p["split"] == "CIFAR-10 test" and p["branch"] == int(name[-1])
        assert ("best validation epoch" in p["checkpoint"]) == name.startswith("best_")
        if "pgd" in name:
            assert p["steps"] == int(name.split("_")[-3][3:]) and p["eps"] == 0.1 and p["restarts"] == 1
            assert "eval" in p["bn_mode"] and "train mode" in p["train"]
    assert results["best_checkpoint"]["criterion"] == "val/pgd10_acc_b1"
    assert (a / "curves.png").is_file() and (a / "model_best.pt").is_file() and (a / "model_last.pt").is_file()
    rows = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if "val/pgd10_acc_b1" in r]
    assert [r["epoch"] for r in epochs] == [1, 2, 3] and all("val/clean_loss_b0" in r for r in epochs)
    analysed = [r for r in rows if "analysis/model/balance" in r]  # gradient balance of the branch affines
    assert [r["step"] for r in analysed] == [3, 6] and analysed[0]["analysis/model/layers"] == 16

    killed = cli(smoke(cifar10_root, b, "debug.kill_at_step=5"), tmp_path, module="tasks.adv")
    assert killed.returncode == -9, killed.stderr
    assert newest(b)["step"] == 4 and not (b / "results.json").exists()
    resumed = cli(smoke(cifar10_root, b), tmp_path, module="tasks.adv")
    assert resumed.returncode == 0, resumed.stderr
    sa, sb = newest(a), newest(b)
    assert sa["step"] == sb["step"] == 6 and sb["finished"]
    for part in ("model", "best"):
        state_a = sa["objects"][part] if part == "model" else sa["objects"][part]["weights"]
        state_b = sb["objects"][part] if part == "model" else sb["objects"][part]["weights"]
        for k, v in state_a.items():
            assert torch.equal(v, state_b[k]), (part, k)
    assert sa["objects"]["best"]["epoch"] == sb["objects"]["best"]["epoch"]
    assert json.loads((b / "results.json").read_text())["metrics"] == results["metrics"]

    evaluated = cli([str(a), "--which", "best", "--split", "val", "--steps", "3", "--device", "cpu"], tmp_path,
                    module="tasks.adv.evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    doc = json.loads((a / "eval" / "best-val-pgd.json").read_text())
    assert set(doc["metrics"]) == {"clean_acc_b0", "clean_acc_b1", "pgd3_acc_b0", "pgd3_acc_b1"}
    assert doc["metrics"]["pgd3_acc_b1"]["protocol"]["samples"] == 32  # the run's own validation split
    assert "best-validation weights" in doc["checkpoint"]
