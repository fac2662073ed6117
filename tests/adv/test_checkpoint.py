"""Loading official (or this project's) checkpoints: wrappers, detection, and one-line errors."""

from __future__ import annotations

import pytest
import torch

from tasks.adv.model import (
    CheckpointError,
    PreActResNet18,
    detect_layout,
    load_official_checkpoint,
    read_checkpoint,
)


class NotATensor:
    """A pickled object that weights_only loading refuses."""


def tiny(norm: str, width: int = 4, num_classes: int = 10, seed: int = 0) -> PreActResNet18:
    torch.manual_seed(seed)
    model = PreActResNet18(norm, num_classes=num_classes, base_width=width)
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(4, 3, 16, 16), branch=0)
            model(torch.rand(4, 3, 16, 16), branch=1)
    return model.eval()


def same_outputs(a: PreActResNet18, b: PreActResNet18) -> bool:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return all(torch.equal(a.eval()(x, branch=k), b.eval()(x, branch=k)) for k in (0, 1))


def test_checkpoint_error_is_the_suite_s_one_line_user_error():
    from tasks.common import errors

    assert issubclass(CheckpointError, errors.CheckpointError)
    assert issubclass(CheckpointError, errors.UserError)


@pytest.mark.parametrize("norm", ["bn", "auxbn", "saauxbn"])
@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 190},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},
        lambda sd: {"format": 1, "objects": {"model": sd, "optimizer": {"state": {}}}},
    ],
    ids=["plain", "state_dict", "model+module", "objects"],
)
def test_round_trip_through_a_file_with_common_wrappers(tmp_path, norm, wrap):
    model = tiny(norm)
    path = tmp_path / "model_epoch190.pt"
    torch.save(wrap(model.state_dict()), path)
    into = PreActResNet18(norm, base_width=4)
    assert load_official_checkpoint(path, into) is into
    assert same_outputs(model, into)


@pytest.mark.parametrize("norm", ["bn", "auxbn", "saauxbn"])
def test_the_model_is_built_from_the_checkpoint_layout(tmp_path, norm):
    model = tiny(norm, width=8, num_classes=7)
    path = tmp_path / "ckpt.pt"
    torch.save(model.state_dict(), path)
    layout = detect_layout(read_checkpoint(path))
    assert layout == {"norm": norm, "num_classes": 7, "base_width": 8, "in_channels": 3, "num_branches": 2}
    built = load_official_checkpoint(path)
    assert (built.norm, built.base_width, built.num_classes) == (norm, 8, 7)
    assert same_outputs(model, built)


def test_sabn_native_saauxbn_layout_loads_too():
    model = tiny("saauxbn")
    # The layout sabn's own SaAuxBN writes (shared affine as separate parameters, K-row embed).
    native = {}
    for name, module in model.named_modules():
        for key, t in module._parameters.items():
            if t is None:  # the affine-free BatchNorms inside SaAuxBN
                continue
            native[f"{name}.{key}" if name else key] = t.detach().clone()
        for key, t in module._buffers.items():
            native[f"{name}.{key}" if name else key] = t.clone()
    assert "layer1.0.bn1.shared_weight" in native and native["layer1.0.bn1.embed.weight"].shape[0] == 2
    into = load_official_checkpoint(native, PreActResNet18("saauxbn", base_width=4))
    assert same_outputs(model, into)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*nope\.pt"):
        load_official_checkpoint(tmp_path / "nope.pt", PreActResNet18("bn", base_width=4))
    with pytest.raises(CheckpointError, match="not a file"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint" * 10], ids=["empty", "garbage"])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*broken\.pt") as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.pt"
    torch.save(tiny("bn").state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"model": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="pickled objects other than tensors"):
        read_checkpoint(path)


def test_not_a_model_state_dict(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"epoch": torch.tensor(3), "weights": {"a": 1}}, path)
    with pytest.raises(CheckpointError, match="no model state dict; top-level keys: epoch, weights"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="not an adversarial PreAct ResNet-18 state dict"):
        load_official_checkpoint({"fc.weight": torch.zeros(2, 2)})


@pytest.mark.parametrize(("saved", "built"), [("bn", "auxbn"), ("auxbn", "saauxbn"), ("saauxbn", "bn")])
def test_layout_mismatch_names_the_matching_variant(tmp_path, saved, built):
    path = tmp_path / "ckpt.pt"
    torch.save(tiny(saved).state_dict(), path)
    with pytest.raises(CheckpointError, match=f"has the norm='{saved}' layout .* build it with norm='{saved}'") as info:
        load_official_checkpoint(path, PreActResNet18(built, base_width=4))
    assert "\n" not in str(info.value)


def test_width_and_class_mismatch_names_the_matching_configuration(tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save(tiny("auxbn", width=4, num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"shape mismatch.*build the model with norm='auxbn', base_width=4, num_classes=10"):
        load_official_checkpoint(path, PreActResNet18("auxbn", base_width=8))
    with pytest.raises(CheckpointError, match=r"linear\.weight: \(10, 32\) in the checkpoint, \(100, 32\) in the model"):
        load_official_checkpoint(path, PreActResNet18("auxbn", base_width=4, num_classes=100))


def test_missing_keys_are_reported(tmp_path):
    state = tiny("bn").state_dict()
    del state["layer3.1.conv2.weight"]
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\), e\.g\. layer3\.1\.conv2\.weight"):
        load_official_checkpoint(state, PreActResNet18("bn", base_width=4))
