"""The training hook behind ``analysis.every=N``: gradient balance and diversity of the conditional affines
(:mod:`sabn.analysis`) recorded into metrics.jsonl and W&B.

In a training loop::

    analysis = GradientAnalysis(cfg.analysis, G, run, prefix="G")
    with analysis.measure(step):      # does nothing unless step % every == 0
        loss_g.backward()             # the forward may be inside or before the block, see below
    opt_g.step()

Which conditions count as present is recorded by the layers during forward passes inside the block, so put the
forward pass of the measured loss inside it too. Keys: ``analysis/<prefix>/{balance,diversity,shared_grad_norm}``
(means over layers) and, for models with at most ``analysis.per_layer_max`` conditional layers,
``analysis/<prefix>/<layer>/{balance,diversity,grad_norm_mean,shared_grad_norm}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig
from torch import nn

from sabn import analysis as sa

from .runtime import unwrap


class GradientAnalysis:
    def __init__(self, cfg: DictConfig, model: nn.Module, run: Any, prefix: str) -> None:
        self.every = int(cfg.every)
        self.per_layer_max = int(cfg.per_layer_max)
        self.model = model
        self.run = run
        self.prefix = prefix

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    @contextmanager
    def measure(self, step: int) -> Iterator[None]:
        if not self.due(step):
            yield
            return
        with sa.recording(unwrap(self.model)) as rec:
            yield
        self.log(step, rec.stats())

    def log(self, step: int, stats: list[sa.LayerGradStats]) -> dict[str, float]:
        p = f"analysis/{self.prefix}"
        row = {f"{p}/{k}": v for k, v in sa.summarize(stats).items()}
        if len(stats) <= self.per_layer_max:
            for s in stats:
                for key, value in (("balance", s.balance), ("diversity", s.diversity),
                                   ("shared_grad_norm", s.shared_grad_norm)):
                    if value is not None:
                        row[f"{p}/{s.name}/{key}"] = value
                if s.grad_norms:
                    row[f"{p}/{s.name}/grad_norm_mean"] = sum(s.grad_norms) / len(s.grad_norms)
        self.run.log(step, row, force=True)
        return row
