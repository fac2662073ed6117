"""The adv task's configs: every experiment × scale composes, protocols, and one-line errors for bad settings."""

from __future__ import annotations

import sys

import pytest

from tasks.adv.config import AdvConfig
from tasks.adv.train import best_key, check_settings
from tasks.common.app import compose_config, group_options
from tasks.common.errors import UserError

EXPS = {"pgd_bn": ("bn", 0.5), "pgd_auxbn": ("auxbn", 0.5), "pgd_saauxbn": ("saauxbn", 0.5), "pgd_at": ("bn", 0.0)}


def test_the_schema_is_registered():
    assert AdvConfig().task == "adv"


def test_every_experiment_and_scale_composes_and_names_itself():
    assert set(group_options("adv", "exp")) == set(EXPS)
    assert set(group_options("adv", "scale")) == {"full", "demo", "smoke"}
    for exp, (norm, clean_weight) in EXPS.items():
        for scale in ("full", "demo", "smoke"):
            cfg = compose_config("adv", [f"+exp={exp}", f"scale={scale}"])
            assert (cfg.exp, cfg.scale_name, cfg.norm.name) == (exp, scale, norm)
            assert cfg.objective.clean_weight == clean_weight
            assert cfg.objective.adv_weight == (1.0 if exp == "pgd_at" else 0.5)
            assert cfg.run_dir == f"runs/adv/{exp}/{scale}/seed0"
            assert sorted(cfg.eval.pgd_steps) == [10, 20]  # the metric names promise PGD-10 and PGD-20
            check_settings(cfg)


def test_full_scale_is_the_official_protocol():
    cfg = compose_config("adv", ["+exp=pgd_saauxbn"])
    t, a, e = cfg.train, cfg.train.attack, cfg.eval
    assert cfg.data.name == "cifar10" and cfg.model.base_width == 64 and cfg.model.input_norm.value == "imagenet"
    assert (t.epochs, t.batch_size, t.lr, t.momentum, t.weight_decay, list(t.milestones), t.gamma) == (
        200, 128, 0.1, 0.9, 5e-4, [50, 150], 0.1)
    assert (t.warmup_iters, t.warmup_start_lr, t.crop_padding, t.flip, t.val_size, t.split_seed) == (
        200, 0.01, 4, True, 5000, 10)
    assert a.eps == pytest.approx(8 / 255) and a.step_size == pytest.approx(2 / 255)
    assert (a.steps, a.random_start, a.clamp_start, a.mode.value) == (7, True, False, "train")
    assert e.eps == pytest.approx(8 / 255) and e.step_size == pytest.approx(2 / 255) and e.random_start
    assert best_key(cfg) == "val/pgd10_acc_b1"
    assert best_key(compose_config("adv", ["+exp=pgd_saauxbn", "eval.best_by=val_clean_b0"])) == "val/clean_acc_b0"


def test_demo_and_smoke_run_on_the_embedded_digits_with_a_small_eps():
    for scale in ("demo", "smoke"):
        cfg = compose_config("adv", ["+exp=pgd_auxbn", f"scale={scale}"])
        assert cfg.data.name == "digits" and cfg.model.input_norm.value == "dataset"
        assert cfg.train.attack.eps == cfg.eval.eps and cfg.eval.step_size == pytest.approx(cfg.eval.eps / 4)
    assert compose_config("adv", ["+exp=pgd_auxbn", "scale=smoke", "data=cifar10"]).data.name == "cifar10"


@pytest.mark.parametrize(("overrides", "message"), [
    (["norm=sabn"], r"norm=sabn is not available for the adv task; choose one of: bn, auxbn, saauxbn"),
    (["objective.adv_weight=0"], r"objective weights must be"),
    (["eval.pgd_steps=[0]"], r"eval.pgd_steps .* must be >= 1"),
    (["eval.every_epochs=0"], r"every_epochs"),
])
def test_bad_settings_give_one_line_errors(overrides, message):
    cfg = compose_config("adv", ["+exp=pgd_saauxbn", "scale=smoke", *overrides])
    with pytest.raises(UserError, match=message) as info:
        check_settings(cfg)
    assert "\n" not in str(info.value)


def test_bad_overrides_are_refused_at_composition():
    with pytest.raises(UserError, match=r"unknown experiment 'pgd_sabn'.*did you mean"):
        compose_config("adv", ["+exp=pgd_sabn"])
    with pytest.raises(UserError, match=r"eval.best_by: .*val_robust_b1"):
        compose_config("adv", ["+exp=pgd_bn", "eval.best_by=val_robust"])
    with pytest.raises(UserError, match=r"train.attack.mode"):
        compose_config("adv", ["+exp=pgd_bn", "train.attack.mode=training"])


def test_autoattack_without_torchattacks_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # makes `import torchattacks` raise ImportError
    cfg = compose_config("adv", ["+exp=pgd_bn", "scale=smoke", "eval.autoattack=true"])
    with pytest.raises(UserError, match=r"torchattacks: pip install -e '\.\[attacks\]'") as info:
        check_settings(cfg)
    assert "\n" not in str(info.value)
