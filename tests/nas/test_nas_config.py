"""Config composition of the NAS task: every experiment × scale × dataset, the protocol values, one-line errors."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tasks.common.app import CONF_DIR, compose_config, ensure_schema, group_options
from tasks.common.config import validate
from tasks.common.errors import UserError
from tasks.nas.search import search_epochs

ALGORITHMS = ("darts", "gdas")
NORMS = ("bn", "ccbn", "sabn", "saauxbn")
EXPS = sorted(f"{a}_{n}" for a in ALGORITHMS for n in NORMS)
DATA = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16_120": "imagenet16-120"}


def test_every_experiment_scale_and_dataset_composes():
    assert group_options("nas", "exp") == EXPS
    assert group_options("nas", "scale") == ["demo", "full", "smoke"]
    ensure_schema("nas")
    GlobalHydra.instance().clear()
    # one Hydra initialisation for all 96 combinations (compose_config re-initialises per call: 3x slower)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for exp in EXPS:
            algorithm, norm = exp.split("_")
            for scale in ("full", "demo", "smoke"):
                for option in (None, *DATA):
                    overrides = [f"+exp={exp}", f"scale={scale}"] + ([f"data={option}"] if option else [])
                    cfg = compose(config_name="nas", overrides=overrides)
                    validate("nas", cfg)
                    OmegaConf.resolve(cfg)
                    assert (cfg.exp, cfg.scale_name, cfg.norm.name, cfg.train.algorithm) == (exp, scale, norm,
                                                                                             algorithm)
                    default = "cifar100" if scale == "full" else "digits"
                    assert cfg.data.name == (DATA[option] if option else default)
                    assert cfg.run_dir == f"runs/nas/{exp}/{scale}/seed0"
                    assert 1 <= search_epochs(cfg.train) <= cfg.train.epochs
    GlobalHydra.instance().clear()


def test_protocol_values_are_the_official_ones():
    darts = compose_config("nas", ["+exp=darts_sabn"])
    t = darts.train
    assert (t.algorithm, t.order, t.epochs, t.stop_epoch, t.batch_size) == ("darts", "w_first", 50, 35, 64)
    assert (t.lr, t.lr_min, t.momentum, t.nesterov, t.weight_decay, t.grad_clip) == (0.025, 0.001, 0.9, True, 5e-4, 5.0)
    assert (t.arch_lr, list(t.arch_betas), t.arch_weight_decay) == (3e-4, [0.5, 0.999], 1e-3)
    m = darts.model
    assert (m.channels, m.num_cells, m.track_running_stats, m.bn_affine, m.condition_mode) == (16, 5, False, False,
                                                                                                "sample")
    gdas = compose_config("nas", ["+exp=gdas_bn"]).train
    assert (gdas.epochs, gdas.stop_epoch, gdas.tau_max, gdas.tau_min, gdas.grad_clip) == (250, None, 10.0, 0.1, 5.0)
    assert search_epochs(gdas) == 250
    # DARTS-V2 is a setting on top of any DARTS experiment
    v2 = compose_config("nas", ["+exp=darts_sabn", "algorithm=darts_v2"])
    assert (v2.norm.name, v2.train.algorithm, v2.train.order, v2.train.unrolled_r) == ("sabn", "darts_v2",
                                                                                       "alpha_first", 0.01)
    # demo keeps DARTS's 35-of-50 schedule and shortens GDAS to 50 epochs
    assert search_epochs(compose_config("nas", ["+exp=darts_bn", "scale=demo"]).train) == 35
    assert search_epochs(compose_config("nas", ["+exp=gdas_bn", "scale=demo"]).train) == 50


def test_split_and_benchmark_paths_come_from_config_or_environment(monkeypatch):
    monkeypatch.delenv("NB201_SPLITS", raising=False)
    monkeypatch.delenv("NB201_BENCHMARK", raising=False)
    cfg = compose_config("nas", ["+exp=darts_bn"])
    assert cfg.nas.split_dir == "data/nb201-splits" and cfg.nas.benchmark_path is None
    monkeypatch.setenv("NB201_SPLITS", "/somewhere/splits")
    monkeypatch.setenv("NB201_BENCHMARK", "/somewhere/bench")
    cfg = compose_config("nas", ["+exp=darts_bn"])
    assert cfg.nas.split_dir == "/somewhere/splits" and cfg.nas.benchmark_path == "/somewhere/bench"
    assert compose_config("nas", ["+exp=darts_bn", "nas.benchmark_path=null"]).nas.benchmark_path is None


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.stop_epoch=60"], r"train.stop_epoch=60 must lie in 1..train.epochs=50"),
    (["train.algorithm=enas"], r"unknown train.algorithm=enas; valid: darts, darts_v2, gdas"),
    (["train.order=both"], r"unknown train.order=both"),
])
def test_bad_protocol_values_are_one_line_errors(overrides, message):
    cfg = compose_config("nas", ["+exp=darts_bn", *overrides])
    with pytest.raises(UserError, match=message):
        search_epochs(cfg.train)


def test_unknown_options_are_one_line_errors():
    with pytest.raises(UserError, match=r"unknown option 'darts_v3' for 'algorithm'.*did you mean 'darts_v2'"):
        compose_config("nas", ["+exp=darts_bn", "algorithm=darts_v3"])
    with pytest.raises(UserError, match=r"unknown config key 'nas.benchmark'"):
        compose_config("nas", ["+exp=darts_bn", "nas.benchmark=/x"])
