"""sabn.analysis: per-condition affine gradients, balance and diversity."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import sabn
from sabn.analysis import balance, diversity, gradient_stats, layer_stats, recording


@pytest.mark.parametrize("name", ["ccbn", "sabn", "saauxbn", "sain", "auxbn"])
def test_per_condition_gradients_equal_autograd_rows(name):
    torch.manual_seed(0)
    layer = sabn.build_norm(name, 4, num_conditions=5)
    x = torch.randn(8, 4, 3, 3)
    y = torch.tensor([0, 1, 1, 3, 3, 3, 0, 1])
    w = torch.randn(8, 4, 3, 3)
    with recording(layer) as rec:
        loss = (layer(x, y) * w).sum()
        params = [layer.embed.weight] if hasattr(layer, "embed") else [p for bn in layer.bn_list for p in (bn.weight, bn.bias)]
        expected = [torch.zeros_like(p) if g is None else g
                    for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))]
        loss.backward()
    grads = layer.condition_affine_grads()
    if hasattr(layer, "embed"):
        torch.testing.assert_close(grads, expected[0])
    else:
        rows = torch.stack([torch.cat([expected[2 * k], expected[2 * k + 1]]) for k in range(5)])
        torch.testing.assert_close(grads, rows)
    (stats,) = rec.stats()
    assert stats.conditions == [0, 1, 3]  # 2 and 4 are absent: excluded, not zeros
    torch.testing.assert_close(torch.tensor(stats.grad_norms, dtype=torch.float64),
                               grads[[0, 1, 3]].double().norm(dim=1))
    assert (stats.shared_grad_norm is not None) == (name in ("sabn", "saauxbn", "sain"))


def test_identical_gradients_are_balanced_and_fully_aligned():
    g = torch.randn(6)
    vectors = torch.stack([g, g, g])
    assert balance(vectors.norm(dim=1)) == pytest.approx(0.0, abs=1e-7)
    assert diversity(vectors) == pytest.approx(1.0)


def test_orthogonal_gradients_have_zero_diversity_and_known_balance():
    vectors = torch.eye(4)[:3] * torch.tensor([[1.0], [2.0], [3.0]])
    assert diversity(vectors) == pytest.approx(0.0, abs=1e-7)
    norms = torch.tensor([1.0, 2.0, 3.0])
    assert balance(norms) == pytest.approx(math.sqrt(2 / 3) / 2)


def test_opposite_gradients_have_negative_similarity():
    g = torch.randn(5)
    assert diversity(torch.stack([g, -g])) == pytest.approx(-1.0)


def test_absent_conditions_are_excluded_even_with_zero_gradients_elsewhere():
    layer = sabn.CategoricalConditionalBatchNorm2d(2, 4)
    layer.embed.weight.grad = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 0]])
    present = torch.tensor([True, False, True, False])
    stats = layer_stats("l", layer, present)
    assert stats.conditions == [0, 2] and stats.balance == pytest.approx(0.0) and stats.diversity == pytest.approx(1.0)
    single = layer_stats("l", layer, torch.tensor([True, False, False, False]))
    assert single.balance is None and single.diversity is None


def test_no_recording_means_no_tracking_work():
    model = nn.Sequential(sabn.SandwichBatchNorm2d(3, 4))
    model[0](torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 3]))
    assert model[0]._present is None and not model[0]._recording
    with recording(model):
        model[0](torch.randn(4, 3, 2, 2), 2)
    model[0](torch.randn(4, 3, 2, 2), 3)  # after the block: not recorded
    assert model[0]._present.tolist() == [False, False, True, False]
    assert gradient_stats(model) == []  # no backward yet
