"""End to end: ``python -m tasks.nst +exp=saadain scale=smoke`` finishes, reports every metric with its protocol and
stand-ins, resumes bit-identically after being killed, and its run directory feeds the stylize command."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tasks.common.app import compose_config
from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.tables import load_specs
from tasks.nst.stylize_cli import main as stylize_main
from tasks.nst.train import train


def smoke(demo_root, run_dir, *extra: str) -> list[str]:
    return ["+exp=saadain", "scale=smoke", "device=cpu", f"data.root={demo_root}", "train.iterations=8",
            "ckpt.every=3", "val.every=4", f"run_dir={run_dir}", *extra]


def final_state(run_dir):
    return load_file(CheckpointManager(run_dir / "checkpoints", "").paths()[-1])


@pytest.mark.slow
def test_smoke_run_reports_resumes_after_a_kill_and_stylizes(cli, tmp_path, demo_root):
    a, b = tmp_path / "a", tmp_path / "b"
    train(compose_config("nst", smoke(demo_root, a)))  # uninterrupted, in this process
    killed = cli(smoke(demo_root, b, "debug.kill_at_step=5"), tmp_path, module="tasks.nst")
    assert killed.returncode == -9, killed.stderr
    assert final_state(b)["step"] == 3 and not (b / "results.json").exists()
    resumed = cli(smoke(demo_root, b), tmp_path, module="tasks.nst")
    assert resumed.returncode == 0, resumed.stderr

    sa, sb = final_state(a), final_state(b)
    assert sa["step"] == sb["step"] == 8 and sb["finished"]
    for part in ("decoder", "style_norm"):
        for name, tensor in sa["objects"][part].items():
            assert torch.equal(tensor, sb["objects"][part][name]), (part, name)
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert ra["metrics"] == rb["metrics"]
    wanted = {col["metric"] for col in load_specs()["nst"]["columns"]}
    assert wanted <= set(rb["metrics"])
    for name in wanted:
        metric = rb["metrics"][name]
        assert metric["value"] > 0 and metric["protocol"]["weighting"].startswith("content ×1, style ×10")
        assert metric["stand_in"].startswith("random VGG-19 encoder (seed 0) — stand-in")
    assert [s.split(":")[0] for s in rb["stand_ins"]] == [metric["stand_in"].split(":")[0], "demo data"]
    assert rb["metrics"]["train_content"]["protocol"]["averaged_over_last_iterations"] == 3
    assert rb["encoder"].startswith("random VGG-19 encoder")
    assert sorted(p.name for p in (b / "samples").iterdir()) == [
        f"step{s:07d}-stand-in-encoder.png" for s in (0, 4, 8)]
    assert (b / "curves.png").stat().st_size > 10_000

    # the stylize command, from the run directory (module entry point) and from one checkpoint file
    content = sorted((demo_root / "content" / "val").iterdir())[0]
    style = sorted((demo_root / "style" / "val").iterdir())[0]
    out = tmp_path / "styled"
    done = cli([f"content={content}", f"style={style}", "size=40", "crop=true", f"ckpt={b}", f"out={out}"],
               tmp_path, module="tasks.nst.stylize")
    assert done.returncode == 0, done.stderr
    assert "stand-in" in done.stderr
    [image] = out.glob("*.png")
    assert Image.open(image).size == (40, 40)
    ckpt = CheckpointManager(b / "checkpoints", "").paths()[-1]
    assert stylize_main([f"content={content}", f"style={style}", "size=24", f"ckpt={ckpt}",
                         f"out={tmp_path / 'one.png'}"]) == 0
    assert min(Image.open(tmp_path / "one.png").size) == 24
    assert stylize_main([f"content={content}", f"style={style}", f"ckpt={b}", f"vgg={ckpt}",
                         f"out={tmp_path}"]) == 2  # trained with the stand-in: a VGG file does not fit


def test_a_sain_run_stylizes_with_style_ids(tmp_path, demo_root, capsys):
    """A sain checkpoint as the training writes it (run config + ckpt) stylises with the ids of its styles."""
    from tasks.nst.train import build_net

    cfg = compose_config("nst", ["+exp=sain", "scale=smoke", f"data.root={demo_root}"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    net = build_net(cfg, "sain", 6)
    CheckpointManager(run_dir / "checkpoints", "x").save(6, {"decoder": net.decoder, "style_norm": net.style_norm})
    content = sorted((demo_root / "content" / "val").iterdir())[0]
    out = tmp_path / "out"
    base = [f"content={content}", "size=32", f"ckpt={run_dir}", f"out={out}"]
    assert stylize_main([*base, "style=2"]) == 0
    assert stylize_main([*base, "style=0,5", "style_weights=1,3"]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"{content.stem}_interpolation.png", f"{content.stem}_stylized_style2.png"]
    capsys.readouterr()
    assert stylize_main([*base, "style=7"]) == 2
    assert "out of range 0..5" in capsys.readouterr().err
    assert stylize_main([*base, f"style={content}"]) == 2
    assert "ids of its training styles" in capsys.readouterr().err
