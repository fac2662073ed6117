"""Model-level tools: drop-in conversion of BatchNorm models, feeding conditions, and exact inference folding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .layers import (
    AuxBatchNorm2d,
    CategoricalConditionalBatchNorm2d,
    Condition,
    ConditionalNorm,
    SandwichAuxBatchNorm2d,
    SandwichBatchNorm2d,
)

CONVERT_VARIANTS = ("ccbn", "sabn", "auxbn", "saauxbn", "mimicnorm")


def conditional_layers(model: nn.Module) -> list[ConditionalNorm]:
    """Every layer of ``model`` that takes a condition id (any :class:`ConditionalNorm`), in module order."""
    return [m for m in model.modules() if isinstance(m, ConditionalNorm)]


def set_condition(model: nn.Module, y: Condition | None) -> int:
    """Set the condition every conditional layer of ``model`` uses when called without one; returns how many.

    ``None`` clears it. For a scoped change that is undone afterwards (even on an exception) use
    :func:`conditioned`.
    """
    layers = conditional_layers(model)
    for layer in layers:
        layer._condition = y
    return len(layers)


@contextmanager
def conditioned(model: nn.Module, y: Condition) -> Iterator[nn.Module]:
    """Run ``model`` with condition ``y`` without changing its ``forward`` signature.

    >>> with sabn.conditioned(model, labels):      # per-sample ids, shape (N,)
    ...     logits = model(x)
    >>> with sabn.conditioned(model, 1):           # the whole batch through branch 1
    ...     logits = model(x_adv)

    The previous conditions are restored on exit, also when the body raises.
    """
    layers = conditional_layers(model)
    previous = [layer._condition for layer in layers]
    for layer in layers:
        layer._condition = y
    try:
        yield model
    finally:
        for layer, prev in zip(layers, previous):
            layer._condition = prev


def _replace_modules(model: nn.Module, select, build) -> tuple[nn.Module, int]:
    """Replace every module m with ``select(m)`` by ``build(m)``, without descending into replaced or conditional
    layers (whose inner BatchNorms are part of them). Returns the model (or its replacement) and the count."""
    if select(model):
        return build(model), 1
    if isinstance(model, ConditionalNorm):
        return model, 0
    count = 0
    for name, child in list(model.named_children()):
        new, n = _replace_modules(child, select, build)
        if new is not child:
            setattr(model, name, new)
        count += n
    return model, count


def _copy_stats(src: _BatchNorm, dst: _BatchNorm) -> None:
    if src.track_running_stats and dst.track_running_stats:
        dst.running_mean.copy_(src.running_mean)
        dst.running_var.copy_(src.running_var)
        dst.num_batches_tracked.copy_(src.num_batches_tracked)


def _bn_affine(bn: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    c = bn.num_features
    if bn.affine:
        return bn.weight.detach(), bn.bias.detach()
    like = bn.running_mean if bn.running_mean is not None else torch.empty(c)
    return torch.ones(c, dtype=like.dtype, device=like.device), torch.zeros(c, dtype=like.dtype, device=like.device)


def _identity_rows(layer: ConditionalNorm) -> None:
    c = layer.num_features
    layer.embed.weight[:, :c] = 1.0
    layer.embed.weight[:, c:] = 0.0


@torch.no_grad()
def _from_bn(bn: _BatchNorm, variant: str, num_conditions: int) -> ConditionalNorm:
    c = bn.num_features
    opts = {"eps": bn.eps, "momentum": bn.momentum, "track_running_stats": bn.track_running_stats}
    weight, bias = _bn_affine(bn)
    like = weight
    if variant == "ccbn":
        layer = CategoricalConditionalBatchNorm2d(c, num_conditions, **opts).to(like)
        _copy_stats(bn, layer.bn)
        layer.embed.weight[:, :c] = weight
        layer.embed.weight[:, c:] = bias
    elif variant == "sabn":
        layer = SandwichBatchNorm2d(c, num_conditions, **opts).to(like)
        _copy_stats(bn, layer.bn)
        layer.bn.weight.copy_(weight)
        layer.bn.bias.copy_(bias)
        _identity_rows(layer)
    elif variant == "auxbn":
        layer = AuxBatchNorm2d(c, num_conditions, **opts).to(like)
        for branch in layer.bn_list:
            _copy_stats(bn, branch)
            branch.weight.copy_(weight)
            branch.bias.copy_(bias)
    elif variant == "saauxbn":
        layer = SandwichAuxBatchNorm2d(c, num_conditions, **opts).to(like)
        for branch in layer.bn_list:
            _copy_stats(bn, branch)
        layer.shared_weight.copy_(weight)
        layer.shared_bias.copy_(bias)
        _identity_rows(layer)
    else:  # pragma: no cover - guarded by convert()
        raise AssertionError(variant)
    layer.train(bn.training)
    return layer


def convert(model: nn.Module, variant: str, num_conditions: int | None = None, **kwargs) -> nn.Module:
    """Replace every BatchNorm of ``model`` (1d/2d/3d/SyncBatchNorm) by the conditional ``variant``, in place.

    The BN's running statistics and affine are carried over — into the shared affine for ``sabn``/``saauxbn``
    (independent affines start at the identity), into every condition's affine for ``ccbn``/``auxbn``, and into
    every branch's statistics for the ``aux`` variants — so the converted model computes exactly the same function
    as before for every condition. Feed the condition with :func:`conditioned`. Returns the model.

    ``variant="mimicnorm"`` instead removes every BN and adds weight-centred convolutions and one BN on the logits
    (:func:`sabn.mimicnorm.to_mimicnorm`; pass ``num_classes=`` and its options as keywords).
    """
    if variant not in CONVERT_VARIANTS:
        raise ValueError(f"unknown conversion variant {variant!r}; valid: {', '.join(CONVERT_VARIANTS)}")
    if variant == "mimicnorm":
        from .mimicnorm import to_mimicnorm

        if "num_classes" not in kwargs:
            raise ValueError("convert(model, 'mimicnorm', ...) needs num_classes=")
        return to_mimicnorm(model, **kwargs)
    if kwargs:
        raise TypeError(f"convert({variant!r}) takes no options {sorted(kwargs)}")
    if num_conditions is None or num_conditions < 1:
        raise ValueError(f"num_conditions must be >= 1, got {num_conditions}")
    model, count = _replace_modules(
        model, lambda m: isinstance(m, _BatchNorm), lambda m: _from_bn(m, variant, num_conditions)
    )
    if count == 0:
        raise ValueError("convert: the model has no BatchNorm layer to replace")
    return model


@torch.no_grad()
def _fold_layer(layer: nn.Module) -> nn.Module:
    c, k = layer.num_features, layer.num_conditions
    if isinstance(layer, SandwichBatchNorm2d):
        gamma, beta = layer.embed.weight[:, :c], layer.embed.weight[:, c:]
        bn = layer.bn
        new = CategoricalConditionalBatchNorm2d(
            c, k, eps=bn.eps, momentum=bn.momentum, track_running_stats=bn.track_running_stats
        ).to(layer.embed.weight)
        _copy_stats(bn, new.bn)
        new.embed.weight[:, :c] = gamma * bn.weight
        new.embed.weight[:, c:] = torch.addcmul(beta, gamma, bn.bias)
    else:
        gamma, beta = layer.embed.weight[:, :c], layer.embed.weight[:, c:]
        ref = layer.bn_list[0]
        new = AuxBatchNorm2d(
            c, k, eps=ref.eps, momentum=ref.momentum, track_running_stats=ref.track_running_stats
        ).to(layer.embed.weight)
        for i, (src, dst) in enumerate(zip(layer.bn_list, new.bn_list)):
            _copy_stats(src, dst)
            dst.weight.copy_(gamma[i] * layer.shared_weight)
            dst.bias.copy_(torch.addcmul(beta[i], gamma[i], layer.shared_bias))
    new.train(layer.training)
    new._condition = layer._condition
    return new


def fold(model: nn.Module) -> nn.Module:
    """Fold every SaBN into an equivalent CCBN and every SaAuxBN into an equivalent AuxBN, in place.

    γ'_i = γ_i ⊙ γ_sa and β'_i = γ_i ⊙ β_sa + β_i, statistics unchanged: the outputs are the same (up to float
    rounding) and inference costs exactly what the baseline costs. Returns the model.
    """
    model, _ = _replace_modules(
        model, lambda m: isinstance(m, (SandwichBatchNorm2d, SandwichAuxBatchNorm2d)), _fold_layer
    )
    return model
