"""Classification models, by config name."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

NormFactory = Callable[[int], nn.Module]


class ConvNet(nn.Module):
    """A small VGG-style network: three conv-norm-ReLU stages (stride 1, 2, 2), global average pool, linear."""

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


MODELS: dict[str, Callable[..., nn.Module]] = {"convnet": ConvNet}


def build_model(name: str, num_classes: int, norm: NormFactory, width: int) -> nn.Module:
    from tasks.common.errors import UserError

    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; valid: {', '.join(sorted(MODELS))}")
    return MODELS[name](num_classes=num_classes, norm=norm, width=width)
