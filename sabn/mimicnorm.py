"""MimicNorm (Fei et al., arXiv 2010.09278): weight-centred convolutions plus one BatchNorm on the logits, instead
of a BatchNorm after every convolution.

Three ingredients, each a setting with the official code's values as defaults:

1. **Weight mean.** For every selected convolution, each output channel's filter is centred over (input channels,
   kernel): ``W[o] -= W[o].mean()``. The official code projects the weights after initialisation and after every
   optimiser step (:func:`weight_mean_`, :func:`project_after_steps`); :func:`parametrize_weight_mean` is the
   equivalent re-parameterisation ``W = V − mean(V)`` (``torch.nn.utils.parametrize``). Under SGD (momentum,
   Nesterov, L2 weight decay — all linear in the gradient) both give the same weights; under Adam/AdamW they differ,
   because the per-coordinate step sizes do not commute with the centring.
   Which convolutions: the CIFAR rule ``fan_in > 50`` (skips the RGB stem, depthwise and thin 1×1 convs) or the
   ImageNet rule ``groups == 1`` (skips only depthwise).
2. **Last BN.** ``BatchNorm1d(num_classes, affine=False)`` on the logits, straight into the loss (:func:`last_bn`).
3. **BN-free residual scalars and init gains.** A learnable scalar at the end of each residual branch, initialised
   to ``1.2**k / l`` (k = convolutions in the branch, l = 1-based block index; the paper writes 1/√l), 1.2 on
   projection shortcuts; He-normal initialisation (variance 2/fan_in; 2.8/fan_in for plain VGG-style stacks).

:func:`to_mimicnorm` (also ``sabn.convert(model, "mimicnorm", num_classes=...)``) turns a standard BN network — e.g.
torchvision's resnet18 — into this form. Imports only torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils import parametrize

Rule = str | Callable[[nn.Conv2d], bool]
RULES = ("fan_in>50", "groups==1", "all")

#: The official code's residual-branch scalar: 1.2^k / l.
CODE_SCALE_BASE = 1.2


def _rule_fn(rule: Rule) -> Callable[[nn.Conv2d], bool]:
    if callable(rule):
        return rule
    if rule == "fan_in>50":  # Cifar100/main.py: in_channels * kH * kW / groups > 50
        return lambda c: c.in_channels // c.groups * c.kernel_size[0] * c.kernel_size[1] > 50
    if rule == "groups==1":  # ImageNet/main.py
        return lambda c: c.groups == 1
    if rule == "all":
        return lambda c: True
    raise ValueError(f"unknown weight-mean rule {rule!r}; valid: {', '.join(RULES)} or a callable")


def selected_convs(model: nn.Module, rule: Rule = "fan_in>50") -> list[nn.Conv2d]:
    """The convolutions the weight-mean rule applies to, in module order."""
    keep = _rule_fn(rule)
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and keep(m)]


def _raw_weight(conv: nn.Conv2d) -> Tensor:
    if parametrize.is_parametrized(conv, "weight"):
        return conv.parametrizations.weight.original
    return conv.weight


@torch.no_grad()
def weight_mean_(model: nn.Module, rule: Rule = "fan_in>50") -> int:
    """Centre every selected filter in place, per output channel over (C_in/groups, kH, kW); returns how many convs.

    Bias untouched, Linear layers never centred (as the official code)."""
    convs = selected_convs(model, rule)
    for conv in convs:
        w = _raw_weight(conv)
        w.sub_(w.mean(dim=(1, 2, 3), keepdim=True))
    return len(convs)


def project_after_steps(optimizer: torch.optim.Optimizer, model: nn.Module, rule: Rule = "fan_in>50"):
    """Centre the selected filters after every ``optimizer.step()`` (the official training procedure).

    Uses the optimiser's own post-step hook; returns the handle (``.remove()`` stops it). Call :func:`weight_mean_`
    once after initialisation as well.
    """
    return optimizer.register_step_post_hook(lambda *_: weight_mean_(model, rule))


class CenteredWeight(nn.Module):
    """Parametrization ``W = V − mean(V)`` per output channel."""

    def forward(self, v: Tensor) -> Tensor:
        return v - v.mean(dim=(1, 2, 3), keepdim=True)


def parametrize_weight_mean(model: nn.Module, rule: Rule = "fan_in>50") -> int:
    """Re-parameterise every selected conv as ``W = V − mean(V)`` (no projection step needed); returns how many."""
    convs = selected_convs(model, rule)
    for conv in convs:
        if not parametrize.is_parametrized(conv, "weight"):
            parametrize.register_parametrization(conv, "weight", CenteredWeight())
    return len(convs)


def last_bn(num_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> nn.BatchNorm1d:
    """The last BN: ``BatchNorm1d(num_classes, affine=False)`` on the logits (running statistics in eval mode)."""
    return nn.BatchNorm1d(num_classes, eps=eps, momentum=momentum, affine=False)


class ResidualScale(nn.Module):
    """A learnable scalar ``y = s·x`` (shape [1]) ending a BN-free residual branch or projection shortcut."""

    def __init__(self, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init)]))

    def extra_repr(self) -> str:
        return f"init={self.scale.item():.4g}"

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.to(x.dtype)


def branch_scale_init(convs_in_branch: int, block_index: int, rule: str = "code") -> float:
    """Initial residual scalar: ``1.2**k / l`` (official code, default) or ``1/sqrt(l)`` (paper)."""
    if block_index < 1:
        raise ValueError("block_index is 1-based")
    if rule == "code":
        return CODE_SCALE_BASE**convs_in_branch / block_index
    if rule == "paper":
        return block_index**-0.5
    raise ValueError(f"unknown scale rule {rule!r}; valid: code, paper")


@torch.no_grad()
def he_init_(model: nn.Module, variance_scale: float = 2.0, mode: str = "fan_in") -> None:
    """Convs and Linears ~ N(0, variance_scale / fan), biases 0 (2.0 = He; the official VGG uses 2.8)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            fan = fan_in if mode == "fan_in" else m.weight.shape[0] * m.weight[0, 0].numel()
            m.weight.normal_(0.0, (variance_scale / fan) ** 0.5)
            if m.bias is not None:
                m.bias.zero_()


# --- converting a BN network ----------------------------------------------------------------------------------


def _named_children_recursive(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module, nn.Module]]:
    for name, child in module.named_children():
        yield name, child, module
        yield from _named_children_recursive(child, f"{prefix}{name}.")


def _residual_blocks(model: nn.Module) -> list[nn.Module]:
    """Modules that look like ResNet blocks: conv1..convK with bn1..bnK and a ``downsample`` attribute."""
    return [m for m in model.modules()
            if hasattr(m, "conv1") and hasattr(m, "bn1") and hasattr(m, "downsample")]


def to_mimicnorm(model: nn.Module, num_classes: int, *, weight_mean: bool = True, last: bool = True,
                 rule: Rule = "fan_in>50", scale_rule: str = "code", reinit: bool = True,
                 classifier: nn.Linear | None = None) -> nn.Module:
    """Turn a standard BN network into its MimicNorm form, in place; returns the model.

    - every BatchNorm is removed; the convolution before it (in module order) gets a zero-initialised bias;
    - in ResNet-style blocks (``conv1..convK``/``bn1..bnK``/``downsample``, e.g. torchvision's BasicBlock and
      Bottleneck) the branch's last BN becomes a :class:`ResidualScale` initialised by ``scale_rule`` and a
      projection shortcut's BN becomes ``ResidualScale(1.2)``;
    - ``reinit``: He-normal weights, zero biases (MimicNorm trains from scratch);
    - ``last``: the classifier (``classifier`` or the last ``nn.Linear``) is followed by :func:`last_bn`;
    - ``weight_mean``: selected filters are centred now; keep them centred during training with
      :func:`project_after_steps` or use :func:`parametrize_weight_mean` instead.

    ``weight_mean=False, last=True`` is the "last BN only" ablation; both False is the "no BN" body.
    """
    # 1. residual scalars replace the last BN of each residual branch and the projection-shortcut BNs
    scales: dict[int, float] = {}
    for index, block in enumerate(_residual_blocks(model), start=1):
        k = max(int(n[4:]) for n, _ in block.named_children() if n.startswith("conv") and n[4:].isdigit())
        last_bn_name = f"bn{k}"
        if isinstance(getattr(block, last_bn_name, None), _BatchNorm):
            scales[id(getattr(block, last_bn_name))] = branch_scale_init(k, index, scale_rule)
        ds = block.downsample
        if isinstance(ds, nn.Sequential):
            for m in ds:
                if isinstance(m, _BatchNorm):
                    scales[id(m)] = CODE_SCALE_BASE
    # 2. remove every BN; the conv before it gets a bias
    last_conv: nn.Conv2d | None = None
    replaced = 0
    for name, child, parent in list(_named_children_recursive(model)):
        if isinstance(child, nn.Conv2d):
            last_conv = child
        elif isinstance(child, _BatchNorm):
            if last_conv is not None and last_conv.bias is None:
                last_conv.bias = nn.Parameter(torch.zeros(last_conv.out_channels, device=last_conv.weight.device,
                                                          dtype=last_conv.weight.dtype))
            new = ResidualScale(scales[id(child)]) if id(child) in scales else nn.Identity()
            setattr(parent, name, new.to(child.running_mean.device) if child.running_mean is not None else new)
            replaced += 1
    if replaced == 0:
        raise ValueError("to_mimicnorm: the model has no BatchNorm layer")
    if reinit:
        he_init_(model)
    # 3. the last BN on the logits
    if last:
        head = classifier
        if head is None:
            linears = [(n, m, p) for n, m, p in _named_children_recursive(model) if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError("to_mimicnorm: no nn.Linear classifier found; pass classifier=")
            name, head, parent = linears[-1]
        else:
            name, parent = next((n, p) for n, m, p in _named_children_recursive(model) if m is head)
        if head.out_features != num_classes:
            raise ValueError(f"classifier has {head.out_features} outputs but num_classes={num_classes}")
        setattr(parent, name, nn.Sequential(head, last_bn(num_classes).to(head.weight.device)))
    if weight_mean:
        weight_mean_(model, rule)
    return model


def has_intermediate_bn(model: nn.Module) -> bool:
    """Whether any BatchNorm remains other than a last BN (an affine-free BatchNorm1d right after a Linear)."""
    last_bns = {id(m[1]) for m in model.modules()
                if isinstance(m, nn.Sequential) and len(m) == 2 and isinstance(m[0], nn.Linear)
                and isinstance(m[1], nn.BatchNorm1d) and not m[1].affine}
    return any(isinstance(m, _BatchNorm) and id(m) not in last_bns for m in model.modules())
