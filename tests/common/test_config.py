"""Config composition, structured-config validation and one-line CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.common.app import CONF_DIR, compose_config, group_options
from tasks.common.config import config_hash
from tasks.common.errors import UserError


def test_every_cls_experiment_and_scale_composes_and_names_itself():
    exps = group_options("cls", "exp")
    assert exps, "no experiments found"
    for exp in exps:
        for scale in group_options("cls", "scale"):
            cfg = compose_config("cls", [f"+exp={exp}", f"scale={scale}"])
            assert cfg.exp == exp, f"conf/cls/exp/{exp}.yaml must set exp: {exp}"
            assert cfg.scale_name == scale
            assert cfg.run_dir == f"runs/cls/{exp}/{scale}/seed0"


def test_scale_selects_its_data_and_overrides_the_protocol():
    full = compose_config("cls", ["+exp=convnet_bn"])
    demo = compose_config("cls", ["+exp=convnet_bn", "scale=demo"])
    assert full.data.name == "cifar100" and full.train.epochs == 150
    assert demo.data.name == "digits" and demo.train.epochs < 50
    # a command-line override beats the scale preset
    mixed = compose_config("cls", ["+exp=convnet_bn", "scale=demo", "data=cifar10", "train.epochs=3"])
    assert mixed.data.name == "cifar10" and mixed.train.epochs == 3


@pytest.mark.parametrize(("overrides", "message"), [
    (["+exp=convnet_bnn"], r"unknown experiment 'convnet_bnn' for task 'cls'; available: .*convnet_bn.*did you mean 'convnet_bn'"),
    (["norm=sabnn"], r"unknown option 'sabnn' for 'norm'; available: .*sabn"),
    (["scale=tiny"], r"unknown option 'tiny' for 'scale'; available: demo, full, smoke"),
    (["train.lrr=0.1"], r"unknown config key 'train.lrr' — did you mean 'train.lr'\?"),
    (["+train.lrr=0.1"], r"unknown config key 'train.lrr'"),
    (["train.epochs=abc"], r"train.epochs: .*abc"),
    (["device.amp=fp32"], r"device.amp: .*fp32.*(none|bf16|fp16)"),
])
def test_bad_overrides_give_one_line_errors(overrides, message):
    with pytest.raises(UserError, match=message) as info:
        compose_config("cls", overrides)
    assert "\n" not in str(info.value)


def test_config_hash_ignores_where_and_how_it_runs():
    a = compose_config("cls", ["+exp=convnet_bn", "scale=smoke"])
    b = compose_config("cls", ["+exp=convnet_bn", "scale=smoke", "run_dir=/tmp/elsewhere", "logger=disabled",
                               "ckpt.every=3", "progress=false", "debug.kill_at_step=5", "device=cpu"])
    c = compose_config("cls", ["+exp=convnet_bn", "scale=smoke", "train.lr=0.2"])
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_every_shared_group_option_composes():
    for group in ("device", "logger", "norm", "data"):
        for option in group_options("cls", group):
            overrides = [f"{group}={option}"] + (["data.root=/some/folder"] if option == "imagefolder" else [])
            cfg = compose_config("cls", overrides)
            assert cfg[group] is not None
    assert set(group_options("cls", "norm")) >= {"bn", "ccbn", "sabn", "auxbn", "saauxbn", "in", "sain", "adain",
                                                  "saadain"}


def test_norm_files_match_the_sabn_registry():
    import sabn

    names = {p.stem for p in (CONF_DIR / "norm").glob("*.yaml")}
    assert names == set(sabn.norm_names())


def test_cluster_launcher_config_composes():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="cls", overrides=["hydra/launcher=cluster"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == 1


@pytest.mark.parametrize(("args", "message"), [
    (["+exp=nope"], "unknown experiment 'nope'"),
    (["+exp=convnet_bn", "train.lrr=1"], "unknown config key 'train.lrr'"),
    (["+exp=convnet_bn", "scale=smoke", "data=cifar10", "data.root=missing_folder"], "CIFAR-10 not found"),
    (["+exp=convnet_bn", "scale=smoke", "device=cuda"], "no CUDA device is visible"),
    (["+exp=convnet_bn", "scale=smoke", "norm=sabn"], "norm=sabn is not available for model convnet in the cls task"),
])
def test_cli_user_errors_exit_2_with_one_line_and_no_traceback(cli, tmp_path: Path, args, message):
    try:
        import torch

        if "device=cuda" in args and torch.cuda.is_available():
            pytest.skip("CUDA is present")
    except ImportError:
        pass
    result = cli(args, tmp_path, module="tasks.cls")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1
