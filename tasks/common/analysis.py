"""The training hook behind ``analysis.every=N``: gradient balance and diversity of the conditional affines
(:mod:`sabn.analysis`) recorded into metrics.jsonl and W&B.

In a training loop::

    analysis = GradientAnalysis(cfg.analysis, G, run, prefix="G")
    with analysis.measure(step):      # does nothing unless step % every == 0
        loss_g.backward()             # the forward may be inside or before the block, see below
    opt_g.step()

Which conditions count as present is recorded by the layers during forward passes inside the block, so put the
forward pass of the measured loss inside it too. With ``analysis.window=W`` the per-condition gradients of the W
steps ending at each measured step are summed first — needed when each step sees one condition per layer, as in
NAS, where a single step gives nothing to compare. Keys: ``analysis/<prefix>/{balance,diversity,shared_grad_norm}``
(means over layers) and, for models with at most ``analysis.per_layer_max`` conditional layers,
``analysis/<prefix>/<layer>/{balance,diversity,grad_norm_mean,shared_grad_norm}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig
from torch import nn

from sabn import ConditionalNorm
from sabn import analysis as sa

from .runtime import unwrap


class GradientAnalysis:
    def __init__(self, cfg: DictConfig, model: nn.Module, run: Any, prefix: str) -> None:
        self.every = int(cfg.every)
        self.window = max(1, int(cfg.window))
        self.per_layer_max = int(cfg.per_layer_max)
        self.model = model
        self.run = run
        self.prefix = prefix
        self._acc: dict[str, list] = {}  # layer name -> [summed grads, present mask, summed shared grads]

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def active(self, step: int) -> bool:
        """Whether ``step`` belongs to the window of steps accumulated for the next measurement."""
        return self.every > 0 and (-step) % self.every < self.window

    @contextmanager
    def measure(self, step: int) -> Iterator[None]:
        if not self.active(step):
            yield
            return
        with sa.recording(unwrap(self.model)):
            yield
        self._accumulate()
        if self.due(step):
            self.log(step, [sa.stats_from_grads(name, g, present, shared)
                            for name, (g, present, shared) in self._acc.items()])
            self._acc = {}

    def _accumulate(self) -> None:
        # Summing over a window lets conditions that appear one per step (NAS op conditions) be compared.
        for name, layer in unwrap(self.model).named_modules():
            if not isinstance(layer, ConditionalNorm):
                continue
            grads = layer.condition_affine_grads()
            if grads is None or layer._present is None:
                continue
            shared = layer.shared_affine_grads()
            if name not in self._acc:
                self._acc[name] = [grads.clone(), layer._present.clone(), None if shared is None else shared.clone()]
            else:
                acc = self._acc[name]
                acc[0] += grads
                acc[1] |= layer._present
                if shared is not None:
                    acc[2] += shared

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
