"""load_generator_checkpoint: the accepted wrappings, and one-line errors for every way a checkpoint can be bad."""

from __future__ import annotations

import argparse
from collections import OrderedDict

import pytest
import torch

from tasks.gan.checkpoint import CheckpointError, load_generator_checkpoint
from tasks.gan.models import AutoGANGenerator32, SNGANGenerator32


def generator(seed: int, **kwargs) -> SNGANGenerator32:
    torch.manual_seed(seed)
    return SNGANGenerator32(n_classes=3, gf_dim=8, **kwargs)


def assert_same_weights(model, sd):
    for key, value in model.state_dict().items():
        assert torch.equal(value, sd[key]), key


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_plain_state_dict_file_loads(tmp_path):
    sd = generator(1).state_dict()
    path = tmp_path / "sngan_sabn_cifar10_gen_state_dict.pth"
    torch.save(sd, path)
    model = load_generator_checkpoint(path, generator(2))
    assert_same_weights(model, sd)
    assert_same_weights(load_generator_checkpoint(str(path), generator(3)), sd)


def test_official_training_checkpoint_prefers_the_ema_weights(tmp_path):
    live, avg = generator(1).state_dict(), generator(2).state_dict()
    path = tmp_path / "checkpoint.pth"
    torch.save({"epoch": 3, "model": "sngan", "gen_state_dict": live, "avg_gen_state_dict": avg,
                "dis_state_dict": {"l5.weight_orig": torch.zeros(1, 8)}, "best_fid": 1e4}, path)
    assert_same_weights(load_generator_checkpoint(path, generator(0)), avg)
    assert_same_weights(load_generator_checkpoint(path, generator(0), key="gen_state_dict"), live)


def test_suite_checkpoint_objects_and_module_prefixes_are_handled():
    sd = generator(1).state_dict()
    assert_same_weights(load_generator_checkpoint({"step": 5, "objects": {"ema": sd}}, generator(0)), sd)
    wrapped = OrderedDict((f"module.{k}", v) for k, v in sd.items())  # DataParallel
    assert_same_weights(load_generator_checkpoint(wrapped, generator(0)), sd)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError) as e:
        load_generator_checkpoint(tmp_path / "nope.pth", generator(0))
    assert one_line_error(e) == f"generator checkpoint not found: {tmp_path / 'nope.pth'}"
    with pytest.raises(CheckpointError, match="not a file"):
        load_generator_checkpoint(tmp_path, generator(0))


@pytest.mark.parametrize("content", ["garbage", "truncated"])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "broken.pth"
    if content == "garbage":
        path.write_bytes(b"this is not a torch file")
    else:
        torch.save(generator(1).state_dict(), path)
        path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError) as e:
        load_generator_checkpoint(path, generator(0))
    assert one_line_error(e).startswith(f"cannot read generator checkpoint {path}: ")


def test_pickled_objects_are_refused_by_weights_only_loading(tmp_path):
    path = tmp_path / "args.pth"
    torch.save({"gen_state_dict": generator(1).state_dict(), "args": argparse.Namespace(lr=2e-4)}, path)
    with pytest.raises(CheckpointError) as e:
        load_generator_checkpoint(path, generator(0))
    assert one_line_error(e).startswith("cannot read generator checkpoint")


def test_mismatching_keys_are_listed():
    sd = generator(1, norm="sabn").state_dict()
    with pytest.raises(CheckpointError) as e:
        load_generator_checkpoint(sd, generator(0, norm="ccbn"))  # sabn weights into a ccbn model
    message = one_line_error(e)
    assert "does not fit SNGANGenerator32" in message
    assert "unexpected keys: block2.b1.bn.weight, block2.b1.bn.bias, block2.b2.bn.weight, ... (12 in all)" in message
    assert "missing keys" not in message
    with pytest.raises(CheckpointError, match=r"missing keys: cell1\.c1\.weight.*unexpected keys: block2"):
        load_generator_checkpoint(sd, AutoGANGenerator32(n_classes=3, gf_dim=8))


def test_mismatching_shapes_are_reported():
    with pytest.raises(CheckpointError) as e:
        load_generator_checkpoint(generator(1).state_dict(), SNGANGenerator32(n_classes=5, gf_dim=8))
    assert "shape mismatches: block2.b1.embed.weight (3, 16) vs model (5, 16)" in one_line_error(e)


def test_dicts_without_generator_weights():
    with pytest.raises(CheckpointError, match=r"holds no generator state dict \(top-level keys: epoch, model\)"):
        load_generator_checkpoint({"epoch": 1, "model": "sngan"}, generator(0))
    with pytest.raises(CheckpointError, match="has no entry 'G'"):
        load_generator_checkpoint({"gen_state_dict": generator(1).state_dict()}, generator(0), key="G")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_generator_checkpoint([1, 2], generator(0))


def test_checkpoint_error_is_the_suites_one_line_user_error():
    from tasks.common import errors

    assert issubclass(CheckpointError, errors.CheckpointError)
    assert issubclass(CheckpointError, errors.UserError)
