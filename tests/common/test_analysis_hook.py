"""The analysis.every hook: logs balance/diversity when due, does nothing otherwise."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf
from torch import nn

import sabn
from tasks.common.analysis import GradientAnalysis


class FakeRun:
    def __init__(self) -> None:
        self.rows: list[tuple[int, dict]] = []

    def log(self, step, metrics, force=False):
        self.rows.append((step, metrics))


def model_and_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), sabn.SandwichBatchNorm2d(4, 3), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1), sabn.CategoricalConditionalBatchNorm2d(4, 3))
    return model, torch.randn(6, 3, 5, 5), torch.tensor([0, 1, 2, 0, 1, 2])


def step(model, x, y):
    with sabn.conditioned(model, y):
        return model(x).square().mean()


def test_hook_logs_means_and_per_layer_values_when_due():
    model, x, y = model_and_batch()
    run = FakeRun()
    hook = GradientAnalysis(OmegaConf.create({"every": 2, "window": 1, "per_layer_max": 32}), model, run, "G")
    for s in (1, 2):
        model.zero_grad()
        with hook.measure(s):
            step(model, x, y).backward()
    assert [r[0] for r in run.rows] == [2]
    row = run.rows[0][1]
    assert 0 <= row["analysis/G/balance"] and -1 <= row["analysis/G/diversity"] <= 1
    assert "analysis/G/1/shared_grad_norm" in row and "analysis/G/4/balance" in row
    assert "analysis/G/4/shared_grad_norm" not in row  # CCBN has no shared affine


def test_hook_off_records_nothing():
    model, x, y = model_and_batch()
    run = FakeRun()
    hook = GradientAnalysis(OmegaConf.create({"every": 0, "window": 1, "per_layer_max": 32}), model, run, "G")
    with hook.measure(10):
        assert not any(layer._recording for layer in sabn.conditional_layers(model))
        step(model, x, y).backward()
    assert run.rows == [] and all(layer._present is None for layer in sabn.conditional_layers(model))


def test_window_sums_steps_with_one_condition_each():
    model, x, _ = model_and_batch()
    run = FakeRun()
    hook = GradientAnalysis(OmegaConf.create({"every": 5, "window": 3, "per_layer_max": 32}), model, run, "net")
    for s in range(1, 6):  # steps 3, 4, 5 are accumulated; each sees a single condition
        model.zero_grad()
        with hook.measure(s):
            step(model, x, s % 3).backward()
    assert [r[0] for r in run.rows] == [5]
    row = run.rows[0][1]
    assert "analysis/net/balance" in row and "analysis/net/diversity" in row
    assert not any(layer._recording for layer in sabn.conditional_layers(model))
