"""Gradient-norm balance and gradient-direction diversity of the condition-specific affines.

The paper explains SaBN's effect as "balanced gradient norms while still preserving diverse gradient directions"
across conditions; its measurement protocol is not published, so this module fixes one:

For every conditional layer, after a backward pass, take the gradient of each condition's independent affine
``g_i = (∂L/∂γ_i, ∂L/∂β_i)`` (a 2C vector), for the conditions present in the batches since recording started
(absent ones are excluded, not counted as zeros). Then

- **balance** = coefficient of variation of the norms, ``std_i ‖g_i‖ / mean_i ‖g_i‖`` (population std; 0 = perfectly
  balanced, larger = less balanced);
- **diversity** = mean pairwise cosine similarity ``mean_{i<j} cos(g_i, g_j)`` (1 = all conditions pushed the same
  way, 0 = orthogonal, lower = more diverse);
- the norm of the shared affine's gradient ``‖(∂L/∂γ_sa, ∂L/∂β_sa)‖`` for sandwich layers.

Usage::

    with sabn.analysis.recording(model) as rec:   # tracks which conditions each layer sees
        loss = criterion(model(x, y), target)
        loss.backward()
    stats = rec.stats()                            # one LayerGradStats per conditional layer

Imports only torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .convert import conditional_layers
from .layers import ConditionalNorm


@dataclass
class LayerGradStats:
    """Balance and diversity of one conditional layer's per-condition affine gradients."""

    name: str
    conditions: list[int]  # the conditions present (those the statistics are over)
    grad_norms: list[float]  # ‖g_i‖ for each present condition, same order
    balance: float | None  # coefficient of variation of grad_norms (None with fewer than 2 conditions)
    diversity: float | None  # mean pairwise cosine similarity (None with fewer than 2 conditions)
    shared_grad_norm: float | None  # norm of the shared affine's gradient (None without a shared affine)


def balance(norms: Tensor) -> float | None:
    """Coefficient of variation std/mean of a vector of gradient norms (population std)."""
    if norms.numel() < 2:
        return None
    mean = norms.mean()
    if mean <= 0:
        return 0.0
    return float(norms.std(correction=0) / mean)


def diversity(vectors: Tensor, eps: float = 1e-12) -> float | None:
    """Mean pairwise cosine similarity of the rows of ``vectors`` (K, D)."""
    k = vectors.shape[0]
    if k < 2:
        return None
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(eps)
    cos = unit @ unit.T
    iu = torch.triu_indices(k, k, offset=1, device=cos.device)
    return float(cos[iu[0], iu[1]].mean())


def stats_from_grads(name: str, grads: Tensor, present: Tensor | None = None,
                     shared: Tensor | None = None) -> LayerGradStats:
    """Statistics of per-condition gradient rows ``grads`` (K, D) over the conditions in ``present`` (bool mask over
    K; default all); ``shared`` is the shared affine's gradient, if any."""
    if present is None:
        present = torch.ones(grads.shape[0], dtype=torch.bool, device=grads.device)
    idx = torch.nonzero(present.to(grads.device), as_tuple=False).flatten()
    rows = grads[idx].double()
    norms = rows.norm(dim=1)
    return LayerGradStats(
        name=name, conditions=idx.tolist(), grad_norms=norms.tolist(), balance=balance(norms),
        diversity=diversity(rows), shared_grad_norm=None if shared is None else float(shared.double().norm()),
    )


def layer_stats(name: str, layer: ConditionalNorm, present: Tensor | None = None) -> LayerGradStats | None:
    """Statistics of one layer from its current ``.grad`` values; ``present`` (bool mask over K) selects the
    conditions (default: those the layer recorded, else all). None when the layer has no gradient yet."""
    grads = layer.condition_affine_grads()
    if grads is None:
        return None
    return stats_from_grads(name, grads, layer._present if present is None else present,
                            layer.shared_affine_grads())


def gradient_stats(model: nn.Module) -> list[LayerGradStats]:
    """:func:`layer_stats` for every conditional layer of ``model`` that has gradients, in module order."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, ConditionalNorm):
            s = layer_stats(name or type(module).__name__, module)
            if s is not None:
                out.append(s)
    return out


def summarize(stats: list[LayerGradStats]) -> dict[str, float]:
    """Means over layers (layers with fewer than two present conditions are skipped)."""
    bal = [s.balance for s in stats if s.balance is not None]
    div = [s.diversity for s in stats if s.diversity is not None]
    shared = [s.shared_grad_norm for s in stats if s.shared_grad_norm is not None]
    out = {}
    if bal:
        out["balance"] = sum(bal) / len(bal)
    if div:
        out["diversity"] = sum(div) / len(div)
    if shared:
        out["shared_grad_norm"] = sum(shared) / len(shared)
    out["layers"] = float(len(stats))
    return out


class Recording:
    """Result handle of :func:`recording`: call :meth:`stats` after the backward pass."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def stats(self) -> list[LayerGradStats]:
        return gradient_stats(self.model)


@contextmanager
def recording(model: nn.Module) -> Iterator[Recording]:
    """Track which conditions every conditional layer of ``model`` sees inside the block.

    Read :meth:`Recording.stats` after the backward pass (inside or after the block; the presence masks are kept
    until the next recording starts). Outside a recording the layers track nothing.
    """
    layers = conditional_layers(model)
    for layer in layers:
        device = next((p.device for p in layer.parameters()), None)
        layer._present = torch.zeros(layer.num_conditions, dtype=torch.bool, device=device)
        layer._recording = True
    try:
        yield Recording(model)
    finally:
        for layer in layers:
            layer._recording = False
