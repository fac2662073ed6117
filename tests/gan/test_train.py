"""The training steps do what the protocol says, and ``python -m tasks.gan`` on fixture CIFAR-10 finishes, writes
results.json with protocols, resumes bit-identically after a SIGKILL, and its checkpoints sample and evaluate
without the data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tasks.common.app import main_guarded
from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.errors import UserError
from tasks.gan import evaluate as evaluate_cli
from tasks.gan import sample as sample_cli
from tasks.gan.models import build_gan
from tasks.gan.train import Latents, adam, d_step, frozen, g_step

TINY = {"gf_dim": 8, "df_dim": 8, "n_classes": 3}


def params(model):
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def test_d_step_trains_d_only_and_g_step_trains_g_only():
    torch.manual_seed(0)
    G, D = build_gan("sngan32", **TINY)
    betas = OmegaConf.create({"beta1": 0.0, "beta2": 0.9})
    opt_g, opt_d = adam(G, 2e-4, betas), adam(D, 2e-4, betas)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    real, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 0])
    g0, d0, bn0 = params(G), params(D), G.block2.b1.bn.running_mean.clone()
    latents = Latents(0, 0, 128, 3, torch.device("cpu"))
    for joint in (False, True):
        out = d_step(G, D, real, y, *latents(4, 1, int(joint)), opt_d, scaler, joint, "none")
        assert set(out) == {"d_loss", "d_real", "d_fake"} and torch.isfinite(out["d_loss"])
    assert all(torch.equal(p, g0[k]) for k, p in params(G).items())
    assert not torch.equal(G.block2.b1.bn.running_mean, bn0)  # fakes come from G in train mode (official)
    d1 = params(D)
    assert any(not torch.equal(p, d0[k]) for k, p in d1.items())
    d_grads = [p.grad.clone() for p in D.parameters()]
    g_step(G, D, *latents(6, 1, 2), opt_g, scaler, "none")
    assert all(torch.equal(p, d1[k]) for k, p in params(D).items())
    # the G step computes no D weight gradients (the last D step's stay as they were) and unfreezes D again
    assert all(torch.equal(p.grad, g) for p, g in zip(D.parameters(), d_grads))
    assert all(p.requires_grad for p in D.parameters())
    assert any(not torch.equal(p, g0[k]) for k, p in params(G).items())


def test_latents_depend_on_seed_rank_step_and_slot_only():
    a, b = Latents(3, 0, 8, 10, torch.device("cpu")), Latents(3, 0, 8, 10, torch.device("cpu"))
    torch.manual_seed(123)  # the global RNG plays no part
    za, ya = a(5, 7, 1)
    torch.rand(10)
    zb, yb = b(5, 7, 1)
    assert torch.equal(za, zb) and torch.equal(ya, yb) and ya.max() < 10
    assert not torch.equal(a(5, 7, 2)[0], za) and not torch.equal(a(5, 8, 1)[0], za)
    assert not torch.equal(Latents(3, 1, 8, 10, torch.device("cpu"))(5, 7, 1)[0], za)


def test_frozen_restores_the_flags_it_found():
    layer = torch.nn.Linear(2, 2)
    layer.bias.requires_grad_(False)
    with frozen(layer):
        assert not any(p.requires_grad for p in layer.parameters())
    assert layer.weight.requires_grad and not layer.bias.requires_grad


def newest(run_dir: Path) -> dict:
    return load_file(CheckpointManager(run_dir / "checkpoints", "").paths()[-1])


def assert_same_objects(a: dict, b: dict) -> None:
    for name in ("G", "D", "ema"):
        for key, tensor in a["objects"][name].items():
            assert torch.equal(tensor, b["objects"][name][key]), f"{name}.{key}"
    for name in ("opt_g", "opt_d"):
        for idx, state in a["objects"][name]["state"].items():
            assert torch.equal(state["exp_avg"], b["objects"][name]["state"][idx]["exp_avg"]), name


@pytest.mark.slow
def test_smoke_run_on_fixture_cifar_resumes_after_a_kill_and_evaluates_from_its_checkpoint(
        cli, cifar10_root, tmp_path, capsys):
    cache = tmp_path / "cache"
    smoke = ["+exp=sngan_sabn", "scale=smoke", "data.name=cifar10", f"data.root={cifar10_root}",
             f"eval.cache_dir={cache}", "device=cpu", "logger=disabled"]
    a, b = tmp_path / "a", tmp_path / "b"
    done = cli([*smoke, f"run_dir={a}"], tmp_path, module="tasks.gan")
    assert done.returncode == 0, done.stderr
    results = json.loads((a / "results.json").read_text())
    assert results["steps"] == 12 and results["dataset"] == "CIFAR-10"
    assert set(results["metrics"]) == {"class_acc", "fd_classifier"}
    acc = results["metrics"]["class_acc"]
    assert acc["protocol"]["weights"].startswith("EMA of the parameters (decay 0.999)")
    assert acc["protocol"]["step"] == 12 and "not Inception" in acc["stand_in"]
    assert "no Inception weights" in results["skipped_metrics"]["fid"]
    assert sorted(p.name for p in (a / "samples").iterdir()) == ["step_0000006.png", "step_0000012.png"]
    assert (a / "curves.png").is_file()

    killed = cli([*smoke, f"run_dir={b}", "debug.kill_at_step=7"], tmp_path, module="tasks.gan")
    assert killed.returncode == -9 and not (b / "results.json").exists()
    assert newest(b)["step"] == 4
    resumed = cli([*smoke, f"run_dir={b}"], tmp_path, module="tasks.gan")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_objects(newest(a), newest(b))
    assert json.loads((b / "results.json").read_text())["metrics"] == results["metrics"]

    # sampling and evaluating a run need no data once the classifier and the statistics are cached
    no_data = ["data.root=/nonexistent", f"eval.cache_dir={cache}"]
    assert sample_cli.main([str(a), *no_data, "--out", str(tmp_path / "grid.png"), "--classes", "1,2"]) == 0
    assert (tmp_path / "grid.png").is_file()
    assert evaluate_cli.main([str(a / "checkpoints" / "ckpt_00000012.pt"), *no_data, "--weights", "live",
                              "--out", str(tmp_path / "eval.json")]) == 0
    out = json.loads((tmp_path / "eval.json").read_text())
    assert out["metrics"]["class_acc"]["protocol"]["weights"] == "live generator (no EMA)"
    assert "| class_acc |" in capsys.readouterr().out
    with pytest.raises(UserError, match=r"needs the train data: CIFAR-10 not found"):
        evaluate_cli.main([str(a), "data.root=/nonexistent", f"eval.cache_dir={tmp_path / 'empty'}"])


def test_cli_errors_are_one_line_with_exit_status_2(cli, tmp_path, capsys):
    result = cli([str(tmp_path / "missing.pt")], tmp_path, module="tasks.gan.evaluate")
    assert result.returncode == 2 and result.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'missing.pt'}"
    weights = tmp_path / "gen.pth"
    torch.save(build_gan("sngan32", **TINY)[0].state_dict(), weights)
    for args, message in [
        ([str(weights)], "is not in a run folder of this suite: say which generator it is"),
        ([str(weights), "+exp=sngan_sabn", "--num", "3"], "--num and --npz go together"),
        ([str(weights), "+exp=sngan_sabn", "--per-class", "x"], "argument --per-class: invalid int value"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main_guarded(lambda args=args: sample_cli.main(args))
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and "\n" not in err and message in err, err


def test_a_plain_weights_file_samples_with_its_experiment(tmp_path):
    torch.manual_seed(0)
    G, _ = build_gan("sngan32", norm="ccbn", gf_dim=8, df_dim=8, n_classes=10)
    torch.save({"avg_gen_state_dict": G.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pth")
    args = [str(tmp_path / "checkpoint.pth"), "+exp=sngan_ccbn", "scale=smoke", "model.width_factor=0.03125",
            "device=cpu", "--out", str(tmp_path / "zoo.png"), "--num", "4", "--npz", str(tmp_path / "s.npz")]
    assert sample_cli.main(args) == 0
    import numpy as np

    with np.load(tmp_path / "s.npz") as z:
        assert z["images"].shape == (4, 32, 32, 3) and z["images"].dtype == np.uint8
        assert "avg_gen_state_dict" in str(z["protocol"])


def test_g_step_feeds_the_gradient_analysis_of_the_generator_class_affines():
    from tasks.common.analysis import GradientAnalysis

    class FakeRun:
        def __init__(self) -> None:
            self.rows: list = []

        def log(self, step, metrics, force=False):
            self.rows.append((step, metrics))

    torch.manual_seed(0)
    G, D = build_gan("sngan32", norm="sabn", **TINY)
    opt = adam(G, 2e-4, OmegaConf.create({"beta1": 0.0, "beta2": 0.9}))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    run = FakeRun()
    hook = GradientAnalysis(OmegaConf.create({"every": 2, "window": 1, "per_layer_max": 32}), G, run, "G")
    latents = Latents(0, 0, 128, 3, torch.device("cpu"))
    for step in (1, 2):
        g_step(G, D, *latents(6, step, 0), opt, scaler, "none", hook.measure(step))
    assert [s for s, _ in run.rows] == [2]
    row = run.rows[0][1]
    assert row["analysis/G/balance"] >= 0 and -1 <= row["analysis/G/diversity"] <= 1
    assert row["analysis/G/shared_grad_norm"] > 0  # SaBN's shared affine got a gradient
