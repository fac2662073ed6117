"""A killed run resumes bit-identically; a finished run says so; a NaN loss stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tasks.common.checkpoint import CheckpointManager, load_file

SMOKE = ["+exp=convnet_bn", "scale=smoke", "device=cpu", "train.epochs=3", "ckpt.every=7", "ckpt.keep=2"]


def final_state(run_dir: Path) -> dict:
    path = CheckpointManager(run_dir / "checkpoints", "").paths()[-1]
    return load_file(path)


@pytest.mark.slow
def test_killed_run_resumes_bit_identically(cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ok = cli([*SMOKE, f"run_dir={a}"], tmp_path, module="tasks.cls")
    assert ok.returncode == 0, ok.stderr
    killed = cli([*SMOKE, f"run_dir={b}", "debug.kill_at_step=24"], tmp_path, module="tasks.cls")
    assert killed.returncode == -9, killed.stderr  # SIGKILL: nothing after step 24 ran
    assert not (b / "results.json").exists()
    assert final_state(b)["step"] == 21  # the newest checkpoint before the crash
    resumed = cli([*SMOKE, f"run_dir={b}"], tmp_path, module="tasks.cls")
    assert resumed.returncode == 0, resumed.stderr
    sa, sb = final_state(a), final_state(b)
    assert sa["step"] == sb["step"] == 66 and sb["finished"]
    for name, tensor in sa["objects"]["model"].items():
        assert torch.equal(tensor, sb["objects"]["model"][name]), name
    assert sa["objects"]["opt"]["state"][0]["momentum_buffer"].equal(sb["objects"]["opt"]["state"][0]["momentum_buffer"])
    import json

    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    # accuracies are identical; the memory probe is a measurement of the machine, not of the run
    assert {k: ra["metrics"][k] for k in ("test_acc_final", "test_acc_best")} == {
        k: rb["metrics"][k] for k in ("test_acc_final", "test_acc_best")}

    again = cli([*SMOKE, f"run_dir={b}"], tmp_path, module="tasks.cls")
    assert again.returncode == 0 and "already finished" in again.stdout
    other = cli([*SMOKE, f"run_dir={b}", "train.lr=0.05"], tmp_path, module="tasks.cls")
    assert other.returncode == 2 and "different config" in other.stderr


@pytest.mark.slow
def test_nan_loss_stops_with_one_line_and_keeps_checkpoints(cli, tmp_path):
    run_dir = tmp_path / "nan"
    result = cli([*SMOKE, f"run_dir={run_dir}", "train.lr=1e30", "train.warmup_epochs=0"], tmp_path,
                 module="tasks.cls")
    assert result.returncode == 2, result.stderr
    assert "error: loss is nan" in result.stderr.lower() or "became nan" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    for path in CheckpointManager(run_dir / "checkpoints", "").paths():
        state = load_file(path)
        assert all(torch.isfinite(t).all() for t in state["objects"]["model"].values() if t.is_floating_point())
