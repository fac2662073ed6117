"""PGD L∞ (bounds, strength, branch, mode, determinism, state restoration) and robust-accuracy counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sabn
from tasks.adv.attacks import RobustCounts, evaluate_robust, pgd, using_branch
from tasks.adv.model import PreActResNet18

EPS, STEP = 8 / 255, 2 / 255


def warmed_model(norm: str = "saauxbn", seed: int = 0) -> PreActResNet18:
    """A tiny model whose two branches hold different running statistics, in eval mode."""
    torch.manual_seed(seed)
    model = PreActResNet18(norm, num_classes=5, base_width=4).train()
    with torch.no_grad():
        for branch, shift in ((0, 0.0), (1, 0.3)):
            for _ in range(3):
                model(torch.rand(16, 3, 16, 16) * 0.8 + shift * 0.5, branch=branch)
    return model.eval()


def batch(n: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 16, 16, generator=g)
    x[0] = 0.0  # pixels on the box boundary
    x[1] = 1.0
    return x, torch.randint(0, 5, (n,), generator=g)


def branch_stats(model: PreActResNet18, branch: int) -> list[torch.Tensor]:
    return [layer.bn_list[branch].running_mean.clone() for layer in sabn.conditional_layers(model)]


def reference_official_pgd(model, x, y, eps, step, steps, noise):
    """The official loop: x + U(−ε, ε) (no clamp), then sign step, min/max projection, clamp to [0, 1]."""
    x_adv = x + noise
    for _ in range(steps):
        x_adv.requires_grad_(True)
        grad = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)[0]
        x_adv = x_adv.detach() + step * torch.sign(grad)
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0, 1)
    return x_adv


@pytest.mark.parametrize("norm", ["bn", "auxbn", "saauxbn"])
def test_pgd_stays_in_the_eps_ball_and_the_image_box(norm):
    model = warmed_model(norm)
    x, y = batch()
    x_adv = pgd(model, x, y, eps=EPS, step_size=STEP, steps=5, generator=torch.Generator().manual_seed(0))
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > EPS / 2  # it actually moved


def test_pgd_matches_the_official_update_rule():
    model = warmed_model()
    x, y = batch()
    noise = torch.empty_like(x).uniform_(-EPS, EPS, generator=torch.Generator().manual_seed(3))
    with model.use_branch(1):
        expected = reference_official_pgd(model, x, y, EPS, STEP, 4, noise)
    got = pgd(model, x, y, EPS, STEP, 4, branch=1, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_random_start_is_unclamped_by_default_and_clamped_on_request():
    model = warmed_model()
    x, y = batch()
    start = pgd(model, x, y, EPS, STEP, 0, generator=torch.Generator().manual_seed(0))
    assert start.min() < 0 and start.max() > 1  # x[0] = 0 and x[1] = 1 receive noise of both signs
    assert (start - x).abs().max() <= EPS + 1e-6
    clamped = pgd(model, x, y, EPS, STEP, 0, generator=torch.Generator().manual_seed(0), clamp_start=True)
    assert torch.equal(clamped, start.clamp(0, 1))
    assert torch.equal(pgd(model, x, y, EPS, STEP, 0, random_start=False), x)


@pytest.mark.parametrize("norm", ["bn", "auxbn", "saauxbn"])
def test_pgd_raises_the_loss_over_clean_inputs(norm):
    model = warmed_model(norm)
    x, y = batch(16)
    x_adv = pgd(model, x, y, eps=EPS, step_size=STEP, steps=7, branch=1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), model.use_branch(1):
        clean = F.cross_entropy(model(x), y)
        adv = F.cross_entropy(model(x_adv), y)
        noise = F.cross_entropy(model((x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)), y)
    # A freshly initialised net has small logits, so absolute changes are small; random noise of the same size
    # barely moves the loss, the attack moves it far more.
    assert adv > clean + 0.01
    assert adv - clean > 10 * (noise - clean).abs()


@pytest.mark.parametrize("norm", ["auxbn", "saauxbn"])
@pytest.mark.parametrize("branch", [0, 1])
def test_train_mode_attack_moves_only_the_requested_branch_statistics(norm, branch):
    model = warmed_model(norm)
    x, y = batch()
    other = 1 - branch
    before, before_other = branch_stats(model, branch), branch_stats(model, other)
    pgd(model, x, y, EPS, STEP, 3, branch=branch, mode="eval")
    assert all(torch.equal(a, b) for a, b in zip(branch_stats(model, branch), before))

    model.train()
    tracked = int(sabn.conditional_layers(model)[0].bn_list[branch].num_batches_tracked)
    pgd(model, x, y, EPS, STEP, 3, branch=branch, mode="train")
    assert all(not torch.equal(a, b) for a, b in zip(branch_stats(model, branch), before))
    assert all(torch.equal(a, b) for a, b in zip(branch_stats(model, other), before_other))
    assert int(sabn.conditional_layers(model)[0].bn_list[branch].num_batches_tracked) == tracked + 3
    assert model.branch == 0 and model.training  # restored


def test_keep_mode_attacks_in_the_model_s_current_mode():
    model = warmed_model("auxbn").train()
    x, y = batch()
    before = branch_stats(model, 1)
    pgd(model, x, y, EPS, STEP, 2, branch=1, mode="keep")
    moved = branch_stats(model, 1)
    assert all(not torch.equal(a, b) for a, b in zip(moved, before))
    model.eval()
    pgd(model, x, y, EPS, STEP, 2, branch=1, mode="keep")
    assert all(torch.equal(a, b) for a, b in zip(branch_stats(model, 1), moved))
    assert not model.training


def test_the_attack_runs_through_the_requested_branch():
    model = warmed_model("auxbn")
    x, y = batch()
    kw = {"eps": EPS, "step_size": STEP, "steps": 3}
    through_1 = pgd(model, x, y, branch=1, generator=torch.Generator().manual_seed(0), **kw)
    with model.use_branch(1):
        kept = pgd(model, x, y, branch=None, generator=torch.Generator().manual_seed(0), **kw)
    through_0 = pgd(model, x, y, branch=0, generator=torch.Generator().manual_seed(0), **kw)
    assert torch.equal(through_1, kept)
    assert not torch.equal(through_1, through_0)


def test_pgd_is_deterministic_under_a_seeded_generator():
    model = warmed_model()
    x, y = batch()
    runs = [pgd(model, x, y, EPS, STEP, 3, generator=torch.Generator().manual_seed(s)) for s in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_pgd_leaves_no_parameter_gradients_and_restores_flags():
    model = warmed_model().train()
    model.layer1.eval()  # mixed modes must come back as they were
    model.linear.weight.requires_grad_(False)
    x, y = batch()
    pgd(model, x, y, EPS, STEP, 2, mode="eval")
    assert all(p.grad is None for p in model.parameters())
    assert model.training and not model.layer1.training and not model.layer1[0].bn1.training
    assert model.layer2.training
    assert not model.linear.weight.requires_grad and model.linear.bias.requires_grad
    assert all(p.requires_grad for n, p in model.named_parameters() if n != "linear.weight")


def test_branch_mode_and_requires_grad_are_restored_after_an_exception():
    model = warmed_model().train()
    model.branch = 0
    calls = {"n": 0}

    def explode_on_second_call(module, inputs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("forward failed")

    handle = model.layer2.register_forward_pre_hook(explode_on_second_call)
    x, y = batch()
    with pytest.raises(RuntimeError, match="forward failed"):
        pgd(model, x, y, EPS, STEP, 5, branch=1, mode="eval")
    handle.remove()
    assert calls["n"] == 2
    assert model.branch == 0
    assert all(layer._condition == 0 for layer in sabn.conditional_layers(model))
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_pgd_input_checks():
    model = warmed_model()
    x, y = batch()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd(model, x * 2 - 1, y, EPS, STEP, 1)
    with pytest.raises(ValueError, match="mode"):
        pgd(model, x, y, EPS, STEP, 1, mode="training")
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, y, EPS, STEP, -1)


def test_pgd_works_on_plain_models_without_branches():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 5))
    x, y = batch()
    x_adv = pgd(model, x, y, EPS, STEP, 3, branch=1)
    assert (x_adv - x).abs().max() <= EPS + 1e-6
    with using_branch(model, 1):
        pass


@pytest.mark.parametrize("norm", ["bn", "saauxbn"])
def test_evaluate_robust_counts(norm):
    model = warmed_model(norm).train()
    data = [batch(8, seed=s) for s in range(3)]
    # eps = 0: the attack cannot move, so robust == clean.
    counts = evaluate_robust(model, data, {"eps": 0.0, "step_size": STEP, "steps": 2}, branch=1, device="cpu")
    with torch.no_grad():
        model.eval()
        expected = sum(int((model(x, branch=1).argmax(1) == y).sum()) for x, y in data)
        model.train()
    assert counts == RobustCounts(24, expected, expected)
    assert model.training and model.branch == 0

    attack = {"eps": EPS, "step_size": STEP, "steps": 3, "generator": torch.Generator().manual_seed(0)}
    robust = evaluate_robust(model, data, attack, branch=1, device="cpu", max_batches=2)
    assert robust.total == 16 and robust.robust_correct <= robust.total
    with pytest.raises(ValueError, match="mode"):
        evaluate_robust(model, data, {**attack, "mode": "train"}, branch=1, device="cpu")


def test_robust_counts_aggregate():
    a, b = RobustCounts(10, 8, 4), RobustCounts(6, 3, 1)
    total = a + b
    assert total == RobustCounts(16, 11, 5)
    assert total.clean_accuracy == 11 / 16 and total.robust_accuracy == 5 / 16
    assert RobustCounts.from_tensor(a.to_tensor() + b.to_tensor()) == total
    assert sum([a, b], RobustCounts()) == total
