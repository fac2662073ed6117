"""Pieces of the style-transfer training loop: learning-rate schedule, loss bookkeeping, validation, sample grids,
and the curves plot."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from tasks.common.app import compose_config
from tasks.common.runtime import DistEnv
from tasks.nst.data import build_data
from tasks.nst.plot import main as plot_main
from tasks.nst.plot import read_curves
from tasks.nst.train import LOSS_NAMES, LossTracker, build_net, lr_factor, sample_grid, validate


def test_inverse_time_decay_is_the_official_schedule():
    assert lr_factor(0, 5e-5) == 1.0
    assert lr_factor(20_000, 5e-5) == pytest.approx(0.5)
    assert lr_factor(160_000, 5e-5) == pytest.approx(1 / 9)


def fake_losses(content: float, style: float, adain: float) -> SimpleNamespace:
    return SimpleNamespace(weighted_content=torch.tensor(content), weighted_style=torch.tensor(10 * style),
                           content_weight=1.0, content_adain_target=torch.tensor(adain))


def test_loss_tracker_means_survive_a_checkpoint_round_trip():
    tracker = LossTracker(window=3)
    for i in range(5):
        tracker.add(fake_losses(i, i, 2 * i))
    assert tracker.pop_interval() == dict(zip(LOSS_NAMES, [2.0, 20.0, 4.0]))  # steps 0..4
    tracker.add(fake_losses(5, 5, 10))
    state = tracker.state_dict()
    restored = LossTracker(window=99)
    restored.load_state_dict(state)
    assert restored.window_mean() == tracker.window_mean() == dict(zip(LOSS_NAMES, [4.0, 40.0, 8.0]))  # 3, 4, 5
    assert restored.pop_interval() == tracker.pop_interval() == dict(zip(LOSS_NAMES, [5.0, 50.0, 10.0]))


@pytest.fixture(scope="module")
def smoke(demo_root):
    def make(exp: str, *extra: str):
        cfg = compose_config("nst", [f"+exp={exp}", "scale=smoke", f"data.root={demo_root}", *extra])
        torch.manual_seed(0)
        net = build_net(cfg, exp, 6)
        return cfg, net, build_data(cfg, conditional=exp == "sain")

    return make


def test_validation_is_the_mean_over_pairs_whatever_the_batch(smoke):
    run = SimpleNamespace(device=torch.device("cpu"), env=DistEnv())
    cfg, net, data = smoke("saadain", "val.num_pairs=3", "val.batch_size=3")
    with torch.no_grad():
        net.style_norm.shared_bias.fill_(0.3)  # the own target now differs from the AdaIN target
    whole = validate(net, data, cfg, run)
    cfg.val.batch_size = 2  # batches of 2 and 1
    assert validate(net, data, cfg, run) == pytest.approx(whole, rel=1e-5)
    singles = []
    for k in range(3):
        content, style, _ = data.val[k]
        losses = net(content[None], style[None])
        singles.append([losses.weighted_content.item(), losses.weighted_style.item(),
                        losses.content_adain_target.item()])
    expected = [sum(col) / 3 for col in zip(*singles)]
    assert [whole[k] for k in LOSS_NAMES] == pytest.approx(expected, rel=1e-5)
    assert whole["loss_content"] != pytest.approx(whole["loss_content_adain_target"], rel=1e-3)


def test_sample_grid_has_a_header_row_and_column(smoke):
    _, net, data = smoke("sain")
    grid = sample_grid(net, data, torch.device("cpu"))
    side, pad = 32, 2
    assert grid.shape == (3, 3 * (side + pad) + pad, 3 * (side + pad) + pad)  # (1 + 2 contents) × (1 + 2 styles)
    corner = grid[:, pad:pad + side, pad:pad + side]
    assert torch.equal(corner, torch.ones_like(corner))
    first_style = grid[:, pad:pad + side, 2 * pad + side:2 * (pad + side)]
    assert torch.allclose(first_style, data.grid_style[0], atol=1e-6)


def test_curves_overlay_runs_and_drop_repeated_steps(tmp_path, capsys):
    for exp, scale in (("adain", 1.0), ("saadain", 0.9)):
        run_dir = tmp_path / exp
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text(f"exp: {exp}\nscale_name: demo\nseed: 0\nmodel: {{vgg_path: null}}\n")
        rows = [{"step": s, "train/loss_content": scale * 2 / s, "train/loss_style": scale * 30 / s,
                 "train/loss_content_adain_target": 2 / s} for s in (10, 20, 30)]
        rows += [{"step": 20, "train/loss_content": scale * 2 / 20, "train/loss_style": scale * 1.5,
                  "train/loss_content_adain_target": 0.1}]  # a resumed run repeats step 20
        rows += [{"step": s, "val/loss_content": scale, "val/loss_style": 3 * scale,
                  "val/loss_content_adain_target": 1.0} for s in (0, 30)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    steps, values = read_curves(tmp_path / "saadain")["train/loss_style"]
    assert steps == [10, 20, 30] and values[1] == pytest.approx(0.9 * 1.5)
    out = tmp_path / "curves.png"
    assert plot_main([str(tmp_path / "adain"), str(tmp_path / "saadain"), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000 and "curves written" in capsys.readouterr().out
    assert plot_main([str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
