"""metrics.jsonl is the source of truth; W&B offline mirrors it; disabled W&B writes nothing."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from tasks.common.tracking import RunLogger, read_metrics, wandb_mode


def wandb_history_keys(run_file: Path) -> list[set[str]]:
    """Logged keys per history row, read from an offline ``run-*.wandb`` file (LevelDB-style log of protobufs)."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf, rows = 7, 32768, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        buf += chunk
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buf)
            buf = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or ".".join(item.nested_key) for item in record.history.item})
    return rows


def test_offline_wandb_logs_the_same_keys_as_metrics_jsonl(tmp_path):
    logger = RunLogger(tmp_path, {"lr": 0.1}, mode="offline", project="test", name="t", run_id="abc123def")
    logger.log(1, {"train/loss": 1.0, "lr": 0.1})
    logger.log(2, {"train/loss": 0.5, "lr": 0.1, "test/acc": 50.0})
    logger.finish()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    # W&B's writer process flushes the run file shortly after finish() returns
    deadline = time.time() + 30
    while len(history := wandb_history_keys(files[0])) < len(rows) and time.time() < deadline:
        time.sleep(0.2)
    expected = [set(r) - {"step"} for r in rows]
    got = [{k for k in h if not k.startswith("_")} for h in history]
    assert got == expected


def test_disabled_wandb_writes_nothing_but_metrics(tmp_path):
    logger = RunLogger(tmp_path, {}, mode="disabled")
    logger.log(3, {"x": 1})
    logger.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_non_main_ranks_write_nothing(tmp_path):
    logger = RunLogger(tmp_path / "r1", {}, enabled=False, mode="offline")
    logger.log(1, {"x": 1})
    assert not (tmp_path / "r1").exists()


@pytest.mark.parametrize(("configured", "env", "expected"), [
    (None, "", "offline"), (None, "disabled", "disabled"), (None, "online", "online"), ("disabled", "online", "disabled"),
])
def test_mode_comes_from_config_then_environment_then_offline(monkeypatch, configured, env, expected):
    monkeypatch.setenv("WANDB_MODE", env)
    assert wandb_mode(configured) == expected


def test_non_finite_numbers_stay_valid_json(tmp_path):
    logger = RunLogger(tmp_path, {}, mode="disabled")
    logger.log(1, {"loss": float("nan")})
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["loss"] == "nan"
