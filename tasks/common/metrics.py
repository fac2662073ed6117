"""Metrics shared by several tasks."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext

import torch
from torch import nn

from .runtime import all_reduce_sum, eval_mode


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable, device: torch.device, autocast: object = None) -> float:
    """Top-1 accuracy (%) of ``model`` in eval mode over ``batches`` of (x, y), summed over DDP ranks."""
    counts = torch.zeros(2, dtype=torch.float64, device=device)
    with eval_mode(model), (autocast or nullcontext()):
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            counts[0] += (model(x).argmax(1) == y).sum()
            counts[1] += y.numel()
    all_reduce_sum(counts)
    return float(100.0 * counts[0] / counts[1].clamp_min(1))
