"""Pieces of the training loop: LR schedule, the official split, augmentation, the objective, best weights,
curves."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import sabn
from tasks.adv.curves import plot_curves
from tasks.adv.data import first, official_split, train_transform
from tasks.adv.model import PreActResNet18
from tasks.adv.train import AdvObjective, BestWeights, lr_at
from tasks.common.errors import UserError

OFFICIAL = OmegaConf.create({"lr": 0.1, "warmup_iters": 200, "warmup_start_lr": 0.01, "milestones": [50, 150],
                             "gamma": 0.1})


def test_lr_schedule_is_the_official_warm_up_then_steps():
    spe = 351  # 45,000 / 128, last partial batch dropped
    for i in (0, 1, 100, 199):
        # official warmup_lr(i): 0.01 + i * (0.1 - 0.01) / 200, in epoch 0
        assert lr_at(i, spe, OFFICIAL) == pytest.approx(0.01 + i * 0.09 / 200)
    assert lr_at(200, spe, OFFICIAL) == lr_at(350, spe, OFFICIAL) == 0.1
    assert lr_at(49 * spe + spe - 1, spe, OFFICIAL) == 0.1
    assert lr_at(50 * spe, spe, OFFICIAL) == pytest.approx(0.01)
    assert lr_at(150 * spe - 1, spe, OFFICIAL) == pytest.approx(0.01)
    assert lr_at(150 * spe, spe, OFFICIAL) == pytest.approx(0.001)


def test_the_split_is_the_official_numpy_shuffle():
    # Adv/train.py: indices = list(range(n)); np.random.seed(10); np.random.shuffle(indices); valid = first 10 %
    indices = list(range(500))
    state = np.random.get_state()
    np.random.seed(10)
    np.random.shuffle(indices)
    np.random.set_state(state)
    train, val = official_split(500, 50, seed=10)
    assert val == indices[:50] and train == indices[50:]
    assert sorted(train + val) == list(range(500))
    assert official_split(500, 50, seed=11)[1] != val
    with pytest.raises(UserError, match="train.val_size"):
        official_split(100, 100, seed=10)


def test_augmentation_keeps_images_in_the_unit_box_and_first_checks_its_count():
    aug = train_transform(16, crop_padding=2, flip=True)
    x = torch.rand(3, 16, 16)
    torch.manual_seed(0)
    outs = [aug(x) for _ in range(8)]
    assert all(o.shape == x.shape and 0 <= o.min() and o.max() <= 1 for o in outs)
    assert any(not torch.equal(o, x) for o in outs)
    assert train_transform(16, 0, False) is None
    data = list(range(10))
    assert len(first(data, 4)) == 4 and first(data, None) is data
    with pytest.raises(UserError, match="between 1 and 10"):
        first(data, 11)


def tiny(norm: str) -> PreActResNet18:
    torch.manual_seed(0)
    return PreActResNet18(norm, num_classes=5, base_width=4).train()


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(8, 3, 16, 16, generator=g)
    return x, (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1), torch.randint(0, 5, (8,), generator=g)


@pytest.mark.parametrize("norm", ["bn", "auxbn", "saauxbn"])
def test_mixed_objective_is_half_clean_plus_half_adversarial(norm):
    x, x_adv, y = batch()
    net = tiny(norm)
    reference = PreActResNet18(norm, num_classes=5, base_width=4).train()
    reference.load_state_dict(net.state_dict())
    loss, logits_clean, logits_adv = AdvObjective(net, 0.5, 0.5)(x, x_adv, y)
    expected = 0.5 * F.cross_entropy(reference(x_adv, branch=1), y) + 0.5 * F.cross_entropy(reference(x, branch=0), y)
    torch.testing.assert_close(loss, expected)
    assert logits_clean.shape == logits_adv.shape == (8, 5)


def test_each_branch_sees_only_its_own_inputs():
    x, x_adv, y = batch()
    net = tiny("saauxbn")
    layer = sabn.conditional_layers(net)[0]  # layer1.0.bn1 sees the stem output of each pass
    AdvObjective(net, 0.5, 0.5)(x, x_adv, y)
    with torch.no_grad():
        stem_clean, stem_adv = net.conv1(net.normal(x)), net.conv1(net.normal(x_adv))
    expected = lambda h: 0.1 * h.mean(dim=(0, 2, 3))  # noqa: E731 - momentum 0.1 from zero
    torch.testing.assert_close(layer.bn_list[0].running_mean, expected(stem_clean))
    torch.testing.assert_close(layer.bn_list[1].running_mean, expected(stem_adv))


def test_adversarial_only_objective_skips_the_clean_pass():
    x, x_adv, y = batch()
    net = tiny("auxbn")
    loss, logits_clean, _ = AdvObjective(net, 0.0, 1.0)(x, x_adv, y)
    loss.backward()
    assert logits_clean is None
    layer = sabn.conditional_layers(net)[0]
    assert layer.bn_list[0].weight.grad is None and layer.bn_list[1].weight.grad is not None
    assert int(layer.bn_list[0].num_batches_tracked) == 0


def test_best_weights_keep_the_strictly_better_epoch_and_round_trip_through_a_file():
    net = tiny("saauxbn")
    best = BestWeights("val/pgd10_acc_b1")
    assert best.offer(10.0, 1, 5, net)
    first_weights = {k: v.clone() for k, v in best.weights.items()}
    with torch.no_grad():
        net.linear.weight.add_(1.0)
    assert not best.offer(10.0, 2, 10, net)  # a tie keeps the earlier epoch
    assert best.epoch == 1 and torch.equal(best.weights["linear.weight"], first_weights["linear.weight"])
    assert best.offer(12.5, 3, 15, net) and best.epoch == 3
    assert torch.equal(best.weights["linear.weight"], net.linear.weight)
    buf = io.BytesIO()
    torch.save(best.state_dict(), buf)
    buf.seek(0)
    again = BestWeights("other")
    again.load_state_dict(torch.load(buf, weights_only=True))
    assert (again.criterion, again.value, again.epoch, again.step) == ("val/pgd10_acc_b1", 12.5, 3, 15)
    loaded = PreActResNet18("saauxbn", num_classes=5, base_width=4)
    loaded.load_state_dict(again.weights)  # official layout, loads strictly
    assert torch.equal(loaded.linear.weight, net.linear.weight)


def test_curves_are_written(tmp_path):
    history = [{"epoch": e, "val/clean_acc_b0": 50 + e, "val/pgd10_acc_b1": 20 + e, "val/clean_loss_b0": 1.0 / e}
               for e in (1, 2, 3)]
    path = plot_curves(history, tmp_path / "curves.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]
