"""Atomic checkpoints, fallback to the previous one when the newest is corrupt, RNG capture."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from tasks.common.checkpoint import CheckpointManager, atomic_torch_save, capture_rng, load_file, restore_rng
from tasks.common.errors import CheckpointError, UserError


def objects():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    return {"model": model, "opt": opt, "sched": sched}


def test_save_writes_atomically_and_keeps_the_newest(tmp_path):
    mgr = CheckpointManager(tmp_path, "hash1", keep=2)
    for step in (10, 20, 30):
        mgr.save(step, objects(), extra={"best": step})
    names = [p.name for p in mgr.paths()]
    assert names == ["ckpt_00000020.pt", "ckpt_00000030.pt"]
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]
    state = mgr.load_latest()
    assert state["step"] == 30 and state["extra"] == {"best": 30}
    fresh = {"model": nn.Linear(4, 3), "opt": None, "sched": None}
    fresh["opt"] = torch.optim.SGD(fresh["model"].parameters(), lr=0.1, momentum=0.9)
    fresh["sched"] = torch.optim.lr_scheduler.StepLR(fresh["opt"], 2)
    CheckpointManager.restore(state, fresh)
    ref = objects()
    torch.testing.assert_close(fresh["model"].weight, ref["model"].weight, rtol=0, atol=0)
    assert fresh["opt"].state_dict()["state"][0]["momentum_buffer"].shape == (3, 4)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    mgr = CheckpointManager(tmp_path, "h", keep=3)
    mgr.save(1, objects())
    mgr.save(2, objects())
    newest = mgr.paths()[-1]
    newest.write_bytes(newest.read_bytes()[:100])  # truncated by a crash mid-copy
    with caplog.at_level("WARNING"):
        state = mgr.load_latest()
    assert state["step"] == 1
    assert "ckpt_00000002.pt" in caplog.text and "previous" in caplog.text


def test_all_corrupt_means_a_fresh_start(tmp_path):
    mgr = CheckpointManager(tmp_path, "h")
    (tmp_path / "ckpt_00000005.pt").write_bytes(b"garbage")
    assert mgr.load_latest() is None


def test_different_config_in_the_same_folder_is_refused(tmp_path):
    CheckpointManager(tmp_path, "aaa").save(1, objects())
    with pytest.raises(UserError, match="different config .* run_dir"):
        CheckpointManager(tmp_path, "bbb").load_latest()


def test_load_file_errors_are_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint file not found: .*nothing.pt"):
        load_file(tmp_path / "nothing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*bad.pt") as info:
        load_file(bad)
    assert "\n" not in str(info.value)


def test_load_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_file(path)


def test_restore_reports_mismatching_objects(tmp_path):
    mgr = CheckpointManager(tmp_path, "h")
    mgr.save(1, {"model": nn.Linear(4, 3)})
    state = mgr.load_latest()
    with pytest.raises(CheckpointError, match="cannot load 'model'"):
        CheckpointManager.restore(state, {"model": nn.Linear(5, 3)})
    with pytest.raises(CheckpointError, match="lacks opt"):
        CheckpointManager.restore(state, {"model": nn.Linear(4, 3), "opt": None})


def test_rng_capture_restore_round_trip_through_a_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = capture_rng()
    atomic_torch_save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item(), np.random.randn())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng(load_file(tmp_path / "rng.pt"))
    assert (random.random(), np.random.rand(), torch.rand(1).item(), np.random.randn()) == expected
