"""Two CPU processes under torchrun compute what one process computes with the global batch."""

from __future__ import annotations

import pytest
import torch

from tasks.common.checkpoint import CheckpointManager, load_file

# No normalisation and no augmentation: CPU DDP has no SyncBatchNorm, and augmentation seeds follow each rank's
# own batch, so only then are the two runs mathematically the same computation. A small learning rate keeps the
# float-rounding differences of the gradient all-reduce from being amplified over the steps.
ARGS = ["+exp=convnet_nonorm", "scale=smoke", "device=cpu", "train.crop_padding=0", "train.flip=false",
        "train.rotation=0", "train.epochs=1", "train.lr=0.02"]


def final_weights(run_dir):
    return load_file(CheckpointManager(run_dir / "checkpoints", "").paths()[-1])["objects"]["model"]


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(cli, tmp_path):
    single = cli([*ARGS, f"run_dir={tmp_path / 'single'}"], tmp_path, module="tasks.cls")
    assert single.returncode == 0, single.stderr
    ddp = cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "tasks.cls", *ARGS,
               f"run_dir={tmp_path / 'ddp'}"], tmp_path)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    w1, w2 = final_weights(tmp_path / "single"), final_weights(tmp_path / "ddp")
    assert w1.keys() == w2.keys()
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-5, msg=name)
    # the test accuracy is all-reduced over the ranks' shards: the same number
    import json

    acc = [json.loads((tmp_path / d / "results.json").read_text())["metrics"]["test_acc_final"]["value"]
           for d in ("single", "ddp")]
    assert acc[0] == pytest.approx(acc[1])
