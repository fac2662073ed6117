"""Every GAN experiment composes at every scale, the full scale is the official protocol, the presets shrink it,
and each composed model generates images of the data's size."""

from __future__ import annotations

import pytest

from tasks.common.app import compose_config, group_options
from tasks.common.errors import UserError
from tasks.gan.config import choice
from tasks.gan.train import build_models

EXPERIMENTS = ["autogan_ccbn", "autogan_sabn", "biggan_ccbn", "biggan_sabn", "sngan128_ccbn", "sngan128_sabn",
               "sngan_ccbn", "sngan_sabn"]


def test_the_issues_experiments_exist_with_three_scales():
    assert group_options("gan", "exp") == EXPERIMENTS
    assert group_options("gan", "scale") == ["demo", "full", "smoke"]


@pytest.mark.parametrize("exp", EXPERIMENTS)
def test_every_experiment_composes_at_every_scale_and_builds(exp):
    for scale in ("full", "demo", "smoke"):
        cfg = compose_config("gan", [f"+exp={exp}", f"scale={scale}"])
        assert cfg.exp == exp and cfg.scale_name == scale
        assert cfg.run_dir == f"runs/gan/{exp}/{scale}/seed0"
        assert cfg.norm.name == exp.rsplit("_", 1)[1]
        assert cfg.data.image_size == cfg.model.resolution
        if scale == "full":
            assert cfg.data.name == ("imagenet_dogcat" if exp.startswith("sngan128") else "cifar10")
            assert cfg.model.width_factor == 1.0
            assert cfg.eval.classifier.enabled == (not exp.startswith("sngan128"))
        else:
            assert cfg.data.name == "digits" and cfg.model.width_factor < 1 and cfg.eval.classifier.enabled
    G, _ = build_models(cfg, num_classes=10)  # the smoke model: tiny, the experiment's architecture
    assert G.resolution == cfg.model.resolution


def test_full_scale_is_the_official_sabn_protocol():
    for exp in ("sngan_sabn", "autogan_ccbn"):
        cfg = compose_config("gan", [f"+exp={exp}"])
        t, e = cfg.train, cfg.eval
        assert (t.g_steps, t.n_critic, t.d_batch_size, t.g_batch_size) == (50_000, 5, 64, 128)
        assert (t.lr_g, t.lr_d, t.beta1, t.beta2) == (2e-4, 2e-4, 0.0, 0.9)
        assert (t.ema_decay, choice(t.ema_buffers), t.ema_start, t.joint_d_forward) == (0.999, "live", 0, False)
        assert cfg.model.init == "xavier_uniform" and cfg.norm.init_std == 0.02
        assert (e.num_samples, choice(e.bn_mode), choice(e.weights), choice(e.reference_split)) == (
            50_000, "eval", "ema", "train")
        assert e.inception.is_splits == 10
    assert compose_config("gan", ["+exp=autogan_sabn"]).model.name == "autogan32"
    big = compose_config("gan", ["+exp=biggan_sabn"])
    t = big.train
    assert (t.g_steps, t.n_critic, t.d_batch_size, t.g_batch_size, t.beta2) == (125_000, 4, 50, 50, 0.999)
    assert (t.ema_decay, t.ema_start, choice(t.ema_buffers), t.joint_d_forward) == (0.9999, 1000, "ema", True)
    assert big.model.init == "N02" and choice(big.eval.bn_mode) == "batch" and big.eval.batch_size == 50
    img = compose_config("gan", ["+exp=sngan128_ccbn"])
    assert (img.train.g_steps, img.train.d_batch_size, img.train.g_batch_size) == (450_000, 16, 32)
    assert (img.model.name, img.data.image_size) == ("sngan128", 128)


def test_presets_shorten_the_protocol_and_overrides_still_win():
    demo = compose_config("gan", ["+exp=sngan_sabn", "scale=demo"])
    t = demo.train
    assert (t.beta1, t.beta2, t.n_critic, t.g_steps) == (0.0, 0.9, 2, 1000)
    # the two documented demo changes: a larger step size and a shorter EMA horizon for 1,000 steps
    assert (t.lr_g, t.lr_d, t.ema_decay) == (2e-3, 2e-3, 0.99)
    assert demo.eval.inception.download is False  # the demo never waits for a download
    mixed = compose_config("gan", ["+exp=sngan_sabn", "scale=smoke", "data.name=cifar10", "data.root=/x",
                                   "train.g_steps=3"])
    assert (mixed.data.name, mixed.data.root, mixed.train.g_steps) == ("cifar10", "/x", 3)


def test_unsupported_norm_and_resolution_mismatch_are_one_line_errors():
    with pytest.raises(UserError, match="norm=bn is not available for the gan task; choose one of: ccbn, sabn"):
        build_models(compose_config("gan", ["+exp=sngan_sabn", "scale=smoke", "norm=bn"]), 10)
    with pytest.raises(UserError, match=r"generates 16×16 images, but model.resolution is 32"):
        build_models(compose_config("gan", ["+exp=sngan_sabn", "scale=smoke", "model.bottom_width=2"]), 10)
    with pytest.raises(UserError, match="unknown GAN model 'dcgan'"):
        build_models(compose_config("gan", ["+exp=sngan_sabn", "scale=smoke", "model.name=dcgan"]), 10)
    with pytest.raises(UserError, match="eval.bn_mode"):
        compose_config("gan", ["+exp=sngan_sabn", "eval.bn_mode=standing"])
