"""Classification models in their CIFAR forms, each in a BN and a BN-free (MimicNorm-style) variant.

``variant`` selects how the network is normalised (MimicNorm, Fei et al., arXiv 2010.09278; facts in
``../shared/reference/mimicnorm.md``):

============  =====================  ================  ===========  ==============================================
variant       BN after each conv     weight mean       last BN      BN-free body (conv bias, residual scalars, init)
============  =====================  ================  ===========  ==============================================
bn            yes                    –                 –            –
mimicnorm     –                      yes (by trainer)  yes          yes
lastbn        –                      –                 yes          yes   ("last BN only" ablation)
weightmean    –                      yes (by trainer)  –            yes   ("weight mean only" ablation)
none          –                      –                 –            yes   ("no BN" ablation)
============  =====================  ================  ===========  ==============================================

The BN-free bodies follow the official code: convolutions get a zero-initialised bias; every residual branch ends in
a learnable scalar initialised to ``1.2**k / l`` (k convs in the branch, l the 1-based block index;
``mimicnorm.scale_rule=paper`` gives 1/√l); projection shortcuts carry a scalar 1.2 (the paper-era code); He-normal
init with variance 2/fan_in (2.8/fan_in for VGG; ShuffleNetV2 uses 2/(k²·max(4, C_in/groups))). The BN baselines use
the official baselines' init. Weight centring itself is applied by the training loop (it is a training procedure),
see :mod:`sabn.mimicnorm`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from sabn.mimicnorm import ResidualScale, branch_scale_init, last_bn

VARIANTS = ("bn", "mimicnorm", "lastbn", "weightmean", "none")
NormFactory = Callable[[int], nn.Module]


class _Variant:
    """What a variant means for the layers of a network."""

    def __init__(self, variant: str, scale_rule: str = "code", shortcut_scale: bool = True) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        self.name = variant
        self.bn = variant == "bn"
        self.last_bn = variant in ("mimicnorm", "lastbn")
        self.weight_mean = variant in ("mimicnorm", "weightmean")
        self.scale_rule = scale_rule
        self.shortcut_scale = shortcut_scale

    def norm(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels) if self.bn else nn.Identity()

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool | None = None) -> nn.Conv2d:
        # BN-free bodies need the bias BN's shift provided
        return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=(not self.bn) if bias is None else bias)

    def branch_scale(self, k: int, index: int) -> nn.Module:
        return nn.Identity() if self.bn else ResidualScale(branch_scale_init(k, index, self.scale_rule))

    def fixed_scale(self, value: float) -> nn.Module:
        return nn.Identity() if self.bn else ResidualScale(value)

    def head(self, linear: nn.Linear, num_classes: int) -> nn.Module:
        return nn.Sequential(linear, last_bn(num_classes)) if self.last_bn else linear


def _he_normal_(module: nn.Module, variance: Callable[[nn.Conv2d], float]) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0.0, math.sqrt(variance(m)))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, math.sqrt(2.0 / m.in_features))
                m.bias.zero_()


def _fan_in(m: nn.Conv2d) -> int:
    return m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]


# --- ResNet (CIFAR form: 3×3 stem, stride 1, no max-pool) ---------------------------------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, index: int, v: _Variant) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.residual = nn.Sequential(
            v.conv(cin, planes, 3, stride), v.norm(planes), nn.ReLU(inplace=True),
            v.conv(planes, cout, 3), v.norm(cout), v.branch_scale(2, index),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                v.conv(cin, cout, 1, stride), v.norm(cout),
                *([v.fixed_scale(1.2)] if v.shortcut_scale else []),
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, index: int, v: _Variant) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.residual = nn.Sequential(
            v.conv(cin, planes, 1), v.norm(planes), nn.ReLU(inplace=True),
            v.conv(planes, planes, 3, stride), v.norm(planes), nn.ReLU(inplace=True),
            v.conv(planes, cout, 1), v.norm(cout), v.branch_scale(3, index),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            # the official BN-free Bottleneck shortcut conv has no bias
            self.shortcut = nn.Sequential(
                v.conv(cin, cout, 1, stride, bias=False), v.norm(cout),
                *([v.fixed_scale(1.2)] if v.shortcut_scale else []),
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block: type, layers: list[int], num_classes: int, v: _Variant, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(v.conv(3, width, 3), v.norm(width), nn.ReLU(inplace=True))
        blocks, cin, index = [], width, 1
        for stage, n in enumerate(layers):
            planes = width * 2**stage
            for i in range(n):
                blocks.append(block(cin, planes, 2 if stage > 0 and i == 0 else 1, index, v))
                cin = planes * block.expansion
                index += 1
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = v.head(nn.Linear(cin, num_classes), num_classes)
        if not v.bn:  # official BN-free ResNet: N(0, 2/fan_in); the BN baseline keeps PyTorch's default init
            _he_normal_(self, lambda m: 2.0 / _fan_in(m))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))


# --- VGG-16 (CIFAR form) --------------------------------------------------------------------------------------------

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, num_classes: int, v: _Variant, width: int = 64, cfg: list = VGG16) -> None:
        super().__init__()
        layers, cin = [], 3
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = int(item) * width // 64
                layers += [v.conv(cin, cout, 3, bias=True), v.norm(cout), nn.ReLU(inplace=True)]
                cin = cout
        self.features = nn.Sequential(*layers)
        hidden = 4096 * width // 64
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(0.5),
            v.head(nn.Linear(hidden, num_classes), num_classes),
        )
        # official: BN VGG N(0, 2/fan_in); BN-free VGG N(0, 2.8/fan_in) (the code's 1.18× He gain)
        scale = 2.0 if v.bn else 2.8
        _he_normal_(self, lambda m: scale / _fan_in(m))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


# --- ShuffleNetV2 (CIFAR form, ratio 1: 116/232/464/1024) ---------------------------------------------------------------


def channel_shuffle(x: Tensor, groups: int = 2) -> Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """Stride 1: split channels, transform one half, concatenate, shuffle. Stride 2: both halves see the input."""

    def __init__(self, cin: int, cout: int, stride: int, v: _Variant) -> None:
        super().__init__()
        self.stride = stride
        mid = cout // 2
        branch_in = cin if stride == 2 else cin // 2
        # official BN-free unit: 1×1-ReLU-dw3×3-1×1-×1.44-ReLU, then a per-unit scalar scale and scalar bias
        self.residual = nn.Sequential(
            v.conv(branch_in, mid, 1), v.norm(mid), nn.ReLU(inplace=True),
            v.conv(mid, mid, 3, stride, groups=mid), v.norm(mid),
            v.conv(mid, mid, 1), v.norm(mid), v.fixed_scale(1.44), nn.ReLU(inplace=True),
        )
        self.unit_scale = v.fixed_scale(1.0)
        self.unit_bias = None if v.bn else nn.Parameter(torch.zeros(1))
        self.shortcut = None
        if stride == 2:
            self.shortcut = nn.Sequential(
                v.conv(cin, cin, 3, stride, groups=cin), v.norm(cin),
                v.conv(cin, cout - mid, 1), v.norm(cout - mid), v.fixed_scale(1.2), nn.ReLU(inplace=True),
            )

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.shortcut(x)
        out = self.unit_scale(self.residual(x))
        if self.unit_bias is not None:
            out = out + self.unit_bias
        return channel_shuffle(torch.cat([keep, out], dim=1))


class ShuffleNetV2(nn.Module):
    def __init__(self, num_classes: int, v: _Variant, width: float = 1.0) -> None:
        super().__init__()
        chans = [max(8, int(c * width)) // 2 * 2 for c in (24, 116, 232, 464)]
        last = max(16, int(1024 * width))
        self.stem = nn.Sequential(v.conv(3, chans[0], 3), v.norm(chans[0]), nn.ReLU(inplace=True))
        units, cin = [], chans[0]
        for cout, repeats in zip(chans[1:], (4, 8, 4)):
            units.append(ShuffleUnit(cin, cout, 2, v))
            units += [ShuffleUnit(cout, cout, 1, v) for _ in range(repeats - 1)]
            cin = cout
        self.units = nn.Sequential(*units)
        self.conv5 = nn.Sequential(v.conv(cin, last, 1), v.norm(last), v.fixed_scale(1.2), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = v.head(nn.Linear(last, num_classes), num_classes)
        _he_normal_(self, lambda m: 2.0 / (m.kernel_size[0] * m.kernel_size[1] * max(4, m.in_channels // m.groups)))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.conv5(self.units(self.stem(x)))).flatten(1))


# --- the small conv net used by the machinery's own tests -------------------------------------------------------------


class ConvNet(nn.Module):
    """A small VGG-style network: three conv-norm-ReLU stages (stride 1, 2, 2), global average pool, linear.

    Its norm comes from the ``norm`` config group (any plain sabn norm, e.g. ``bn`` or ``none``)."""

    def __init__(self, num_classes: int, norm: NormFactory, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False), norm(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False), norm(2 * w), nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1, bias=False), norm(4 * w), nn.ReLU(inplace=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * w, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def build_model(name: str, num_classes: int, variant: str, width: float = 1.0, norm: NormFactory | None = None,
                scale_rule: str = "code", shortcut_scale: bool = True) -> nn.Module:
    """The model registered as ``name`` in the given normalisation ``variant`` (``width`` scales the channels)."""
    from tasks.common.errors import UserError

    if name == "convnet":
        return ConvNet(num_classes, norm or (lambda c: nn.BatchNorm2d(c)), width=int(32 * width))
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; valid: {', '.join(sorted([*MODELS, 'convnet']))}")
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r} for {name}; valid: {', '.join(VARIANTS)}")
    v = _Variant(variant, scale_rule, shortcut_scale)
    return MODELS[name](num_classes, v, width)


MODELS: dict[str, Callable[[int, _Variant, float], nn.Module]] = {
    "resnet18": lambda n, v, w: ResNet(BasicBlock, [2, 2, 2, 2], n, v, max(4, int(64 * w))),
    "resnet50": lambda n, v, w: ResNet(Bottleneck, [3, 4, 6, 3], n, v, max(4, int(64 * w))),
    "vgg16": lambda n, v, w: VGG(n, v, max(4, int(64 * w))),
    "shufflenetv2": lambda n, v, w: ShuffleNetV2(n, v, w),
}
