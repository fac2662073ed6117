"""Style-transfer configs: every experiment × scale composes, the data options, and one-line errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks.common.app import compose_config, group_options
from tasks.common.errors import UserError
from tasks.common.tables import load_specs


def test_every_experiment_and_scale_composes_with_its_norm():
    exps = group_options("nst", "exp")
    assert exps == ["adain", "saadain", "sain"]
    for exp in exps:
        for scale in group_options("nst", "scale"):
            cfg = compose_config("nst", [f"+exp={exp}", f"scale={scale}"])
            assert cfg.exp == exp and cfg.norm.name == exp and cfg.scale_name == scale
            assert cfg.run_dir == f"runs/nst/{exp}/{scale}/seed0"
            assert cfg.norm.shared_init_std == 0.0  # the official SaAdaIN starts at exactly (1, 0)
            assert cfg.data.image_size <= cfg.data.load_size


def test_full_scale_is_the_official_protocol_and_demo_shortens_it():
    full = compose_config("nst", ["+exp=saadain"])
    t = full.train
    assert (t.iterations, t.batch_size, t.lr, t.lr_decay, t.content_weight, t.style_weight) == (
        160_000, 8, 1e-4, 5e-5, 1.0, 10.0)
    assert (full.data.name, full.data.load_size, full.data.image_size) == ("image_folders", 512, 256)
    assert full.data.content_dir.endswith("coco/train2017") and full.data.val_style_dir.endswith("wikiart/test")
    assert full.model.vgg_path is None and full.val.every == 10_000 and full.val.num_pairs is None
    demo = compose_config("nst", ["+exp=saadain", "scale=demo"])
    assert demo.data.name == "skimage_demo" and demo.train.lr == t.lr and demo.train.iterations < 1000
    assert demo.data.content_dir == f"{demo.data.root}/content/train"
    custom = compose_config("nst", ["+exp=adain", "data.content_dir=/photos", "model.vgg_path=/w/vgg.pth"])
    assert custom.data.content_dir == "/photos" and custom.model.vgg_path == "/w/vgg.pth"


def test_data_options_include_the_shared_ones_and_still_compose():
    options = group_options("nst", "data")
    assert {"coco_wikiart", "skimage_demo", "digits"} <= set(options)
    # a shared option composes into the NST data schema (its folders keep their defaults under data.root)
    cfg = compose_config("nst", ["+exp=adain", "data=digits"])
    assert cfg.data.name == "digits" and cfg.data.style_dir.endswith("wikiart/train")


@pytest.mark.parametrize(("overrides", "message"), [
    (["+exp=saadin"], r"unknown experiment 'saadin' for task 'nst'.*did you mean 'saadain'"),
    (["data.content_dirr=x"], r"unknown config key 'data.content_dirr' — did you mean 'data.content_dir'"),
    (["val.every=often"], r"val.every: .*often"),
])
def test_bad_overrides_give_one_line_errors(overrides, message):
    with pytest.raises(UserError, match=message) as info:
        compose_config("nst", overrides)
    assert "\n" not in str(info.value)


def test_the_paper_table_rows_are_experiments_and_its_metrics_are_reported():
    from tasks.nst.train import LossTracker, final_metrics

    spec = load_specs()["nst"]
    assert spec["task"] == "nst"
    assert {row["exp"] for row in spec["rows"]} <= set(group_options("nst", "exp"))
    cfg = compose_config("nst", ["+exp=saadain", "scale=smoke"])
    data = SimpleNamespace(name="demo", val_description="2 pairs")
    val = {"loss_content": 1.0, "loss_style": 2.0, "loss_content_adain_target": 3.0}
    metrics = final_metrics(cfg, data, LossTracker(3), val, stand_in="random encoder")
    assert {col["metric"] for col in spec["columns"]} <= set(metrics)
    assert all(m.stand_in == "random encoder" and m.protocol for m in metrics.values())
    assert metrics["val_content_adain_target"].value == 3.0
    assert "AdaIN" in metrics["val_content_adain_target"].protocol["content_target"]
