"""Branch-wise clean / PGD / AutoAttack evaluation and the ``python -m tasks.adv.evaluate`` command."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from tasks.adv import evaluate as evaluate_cli
from tasks.adv.evaluation import BranchView, PGDSettings, evaluate_branches
from tasks.adv.model import PreActResNet18

SETTINGS = PGDSettings(eps=8 / 255, step_size=2 / 255)
CPU = torch.device("cpu")


def warmed(norm: str, classes: int = 5, seed: int = 0) -> PreActResNet18:
    torch.manual_seed(seed)
    model = PreActResNet18(norm, num_classes=classes, base_width=4).train()
    with torch.no_grad():
        for b, shift in ((0, 0.0), (1, 0.2)):
            model(torch.rand(16, 3, 16, 16) * 0.8 + shift, branch=b)
    return model.eval()


def data(n_batches: int = 2, classes: int = 5) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(8, 3, 16, 16, generator=g), torch.randint(0, classes, (8,), generator=g))
            for _ in range(n_batches)]


def test_names_values_and_losses_for_a_model_with_branches():
    model = warmed("auxbn").train()
    out = evaluate_branches(model, data(), branches=(0, 1), pgd_steps=[2, 3], settings=SETTINGS, device=CPU,
                            with_loss=True)
    assert set(out) == {f"{k}_{m}_b{b}" for k in ("clean", "pgd2", "pgd3") for m in ("acc", "loss") for b in (0, 1)}
    with torch.no_grad():
        model.eval()
        clean = [100 * sum(int((model(x, branch=b).argmax(1) == y).sum()) for x, y in data()) / 16 for b in (0, 1)]
        model.train()
    assert [out["clean_acc_b0"], out["clean_acc_b1"]] == clean
    assert all(out[f"pgd3_acc_b{b}"] <= out[f"clean_acc_b{b}"] for b in (0, 1))
    assert all(out[f"pgd3_loss_b{b}"] > out[f"clean_loss_b{b}"] for b in (0, 1))
    assert model.training and model.branch == 0  # restored
    again = evaluate_branches(model, data(), branches=(0, 1), pgd_steps=[2, 3], settings=SETTINGS, device=CPU,
                              with_loss=True)
    assert again == out  # seeded random starts


def test_a_model_without_branches_is_evaluated_once_under_both_names():
    model = warmed("bn")
    calls = {"n": 0}
    model.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    out = evaluate_branches(model, data(1), branches=(0, 1), pgd_steps=[2], settings=SETTINGS, device=CPU)
    assert out["clean_acc_b0"] == out["clean_acc_b1"] and out["pgd2_acc_b0"] == out["pgd2_acc_b1"]
    assert calls["n"] == 1 + 2 + 1  # one clean pass, two attack steps, one robust pass: not twice


def test_zero_eps_makes_robust_equal_clean_and_restarts_never_help():
    model = warmed("saauxbn")
    zero = evaluate_branches(model, data(), branches=(1,), pgd_steps=[3], settings=PGDSettings(0.0, 2 / 255),
                             device=CPU)
    assert zero["pgd3_acc_b1"] == zero["clean_acc_b1"]
    strong = PGDSettings(0.1, 0.03, restarts=1)
    one = evaluate_branches(model, data(), branches=(1,), pgd_steps=[3], settings=strong, device=CPU)
    three = evaluate_branches(model, data(), branches=(1,), pgd_steps=[3],
                              settings=PGDSettings(0.1, 0.03, restarts=3), device=CPU)
    assert three["pgd3_acc_b1"] <= one["pgd3_acc_b1"]


def test_branch_view_runs_through_its_branch():
    model = warmed("auxbn")
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(BranchView(model, 1)(x), model(x, branch=1))
        assert not torch.equal(BranchView(model, 0)(x), model(x, branch=1))
    assert model.branch == 0


def test_autoattack_through_torchattacks():
    pytest.importorskip("torchattacks")
    model = warmed("saauxbn", classes=10)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        pred = model(x, branch=1).argmax(1)
    # Two images right, two wrong; a huge radius flips the right ones within APGD, so the slow Square stage (5,000
    # queries per still-robust image) never runs.
    y = torch.cat([pred[:2], (pred[2:] + 1) % 10])
    out = evaluate_branches(model, [(x, y)], branches=(0, 1), pgd_steps=[], settings=PGDSettings(0.5, 0.1),
                            device=CPU, autoattack_branches=(1,), autoattack_samples=4, num_classes=10)
    assert set(out) == {"clean_acc_b0", "clean_acc_b1", "autoattack_acc_b1"}
    assert out["clean_acc_b1"] == 50.0 and out["autoattack_acc_b1"] == 0.0
    assert model.branch == 0 and not model.training


# -- the command line ----------------------------------------------------------------------------------------------


def official_file(tmp_path, norm: str = "saauxbn"):
    """An official-layout checkpoint as Adv/train.py writes it: {'epoch', 'state_dict', ...}."""
    model = warmed(norm, classes=10)
    path = tmp_path / "model_epoch190.pt"
    torch.save({"epoch": 191, "state_dict": model.state_dict(), "best_prec1": 80.0}, path)
    return path, model


def test_cli_on_an_official_state_dict_file(tmp_path, cifar10_root, capsys):
    path, _ = official_file(tmp_path)
    out = tmp_path / "eval.json"
    rc = evaluate_cli.main([str(path), "--data-root", str(cifar10_root), "--steps", "2", "--branch", "1",
                            "--samples", "16", "--eps", "8/255", "--device", "cpu", "--out", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert rc == 0, captured.err
    assert "| 1 (adversarial) |" in printed and "PGD-2" in printed and "norm=saauxbn" in printed
    doc = json.loads(out.read_text())
    assert set(doc["metrics"]) == {"clean_acc_b1", "pgd2_acc_b1"}
    proto = doc["metrics"]["pgd2_acc_b1"]["protocol"]
    assert proto["samples"] == 16 and proto["steps"] == 2 and proto["branch"] == 1 and proto["eps_255"] == 8
    assert proto["split"] == "CIFAR-10 test" and doc["layout"]["norm"] == "saauxbn"


def test_cli_bn_model_reports_both_branches_with_a_note(tmp_path, cifar10_root, capsys):
    path, _ = official_file(tmp_path, "bn")
    rc = evaluate_cli.main([str(path), "--data-root", str(cifar10_root), "--attack", "none", "--split", "val",
                            "--val-size", "20", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0 and "no branches" in printed
    doc = json.loads((tmp_path / "model_epoch190.eval-val-none.json").read_text())
    assert doc["metrics"]["clean_acc_b0"]["value"] == doc["metrics"]["clean_acc_b1"]["value"]
    assert doc["metrics"]["clean_acc_b0"]["protocol"]["samples"] == 20


@pytest.mark.parametrize(("args", "message"), [
    (["{missing}"], r"checkpoint not found: .*nope\.pt"),
    (["{ckpt}", "--branch", "2"], r"branch 2 does not exist: the model has branches 0\.\.1"),
    (["{ckpt}", "--which", "best"], r"--which best needs a run directory"),
    (["{ckpt}", "--samples", "0"], r"--samples must be >= 1"),
    (["{ckpt}", "--data-root", "{tmp}/empty"], r"CIFAR-10 not found"),
    (["{garbage}"], r"cannot read checkpoint"),
    (["{ckpt}", "--eps", "eight"], r"argument --eps: not a number or fraction: 'eight'"),
    (["{ckpt}", "--attack", "fgsm"], r"argument --attack: invalid choice"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, cifar10_root, capsys, args, message):
    path, _ = official_file(tmp_path)
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    names = {"missing": tmp_path / "nope.pt", "ckpt": path, "tmp": tmp_path, "garbage": tmp_path / "garbage.pt"}
    argv = [a.format(**names) for a in args]
    if "--data-root" not in argv:
        argv += ["--data-root", str(cifar10_root)]
    with pytest.raises(SystemExit) as info:
        sys.exit(evaluate_cli.main([*argv, "--device", "cpu"]))
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    import re

    assert re.search(message, err), err


def test_cli_autoattack_without_torchattacks(tmp_path, cifar10_root, capsys, monkeypatch):
    path, _ = official_file(tmp_path)
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    rc = evaluate_cli.main([str(path), "--attack", "autoattack", "--data-root", str(cifar10_root), "--device", "cpu"])
    assert rc == 2 and "pip install -e '.[attacks]'" in capsys.readouterr().err
