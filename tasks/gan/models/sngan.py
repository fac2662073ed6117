"""SNGAN generators and projection discriminators (32×32 CIFAR-10 and the ``sngan_small_128`` ImageNet layout).

Module names follow the official SaBN GAN code so its checkpoints load with ``strict=True``:

* generator: ``l1`` (Linear z → bottom_width²·C), ``block2 ...`` (:class:`GenBlock` with ``c1``, ``c2``, ``b1``,
  ``b2``, ``c_sc``), then ``b{n}`` (plain BatchNorm2d) and ``c{n}`` (conv3×3 → RGB);
* discriminator: ``block1`` (:class:`OptimizedDisBlock`), ``block2 ...`` (:class:`DisBlock`), ``l{n}``
  (Linear → 1, no bias) and ``l_y`` (class embedding of the projection term), all spectrally normalised.

Both are written generically over a list of block widths; :class:`SNGANGenerator32`,
:class:`SNGANDiscriminator32`, :class:`SNGANGenerator128` and :class:`SNGANDiscriminator128` fix the paper's
layouts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sabn
from sabn import Condition

from .common import apply_norm, build_block_norm, check_latent, maybe_sn, projection


class GenBlock(nn.Module):
    """Pre-activation up-sampling residual block: CN → ReLU → up ×2 → conv3×3 → CN → ReLU → conv3×3.

    Shortcut: nearest up ×2 then a learnable 1×1 conv (learnable whenever the block up-samples or changes width).
    The norms are built by :func:`build_block_norm`; ``b1`` normalises the input width, ``b2`` the hidden width
    (= output width, as in the official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: str,
        n_classes: int,
        upsample: bool = True,
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        hidden = out_channels
        self.c1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.c2 = nn.Conv2d(hidden, out_channels, 3, padding=1)
        self.b1 = build_block_norm(norm, in_channels, n_classes, norm_kwargs)
        self.b2 = build_block_norm(norm, hidden, n_classes, norm_kwargs)
        self.learnable_sc = in_channels != out_channels or upsample
        if self.learnable_sc:
            self.c_sc = nn.Conv2d(in_channels, out_channels, 1)

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x: Tensor, y: Condition | None = None) -> Tensor:
        h = F.relu(apply_norm(self.b1, x, y))
        h = self.c1(self._up(h))
        h = F.relu(apply_norm(self.b2, h, y))
        h = self.c2(h)
        sc = self.c_sc(self._up(x)) if self.learnable_sc else x
        return h + sc


class SNGANGenerator(nn.Module):
    """SNGAN ResNet generator: Linear → (C0, bw, bw) → GenBlocks (each ×2) → BN → ReLU → conv3×3 → tanh.

    ``channels`` = [C0, C1, ..., Cn]: block ``i`` maps C_{i-1} → C_i. Blocks are named ``block2 ... block{n+1}``,
    the output BN ``b{n+2}`` and conv ``c{n+2}`` (the official naming). ``norm`` is a ``sabn`` registry name
    (``ccbn``, ``sabn``, or ``bn`` for an unconditional generator; ``none`` drops the block norms, the output BN
    stays); ``norm_kwargs`` go to :func:`sabn.build_norm`.
    Output: images in [-1, 1] of size bw·2ⁿ.
    """

    def __init__(
        self,
        channels: Sequence[int],
        n_classes: int = 10,
        norm: str = "sabn",
        latent_dim: int = 128,
        bottom_width: int = 4,
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two widths (input and one block), got {list(channels)}")
        self.channels = [int(c) for c in channels]
        self.n_classes = int(n_classes)
        self.norm = norm
        self.latent_dim = int(latent_dim)
        self.bottom_width = int(bottom_width)
        self.conditional = norm != "none" and sabn.is_conditional(norm)
        self.l1 = nn.Linear(latent_dim, bottom_width**2 * self.channels[0])
        self.block_names: list[str] = []
        for i, (cin, cout) in enumerate(zip(self.channels[:-1], self.channels[1:])):
            name = f"block{i + 2}"
            self.add_module(name, GenBlock(cin, cout, norm, n_classes, upsample=True, norm_kwargs=norm_kwargs))
            self.block_names.append(name)
        last = len(self.channels) + 1
        self.out_bn_name, self.out_conv_name = f"b{last}", f"c{last}"
        self.add_module(self.out_bn_name, nn.BatchNorm2d(self.channels[-1]))
        self.add_module(self.out_conv_name, nn.Conv2d(self.channels[-1], 3, 3, padding=1))

    @property
    def resolution(self) -> int:
        """Side length of the generated images."""
        return self.bottom_width * 2 ** (len(self.channels) - 1)

    def forward(self, z: Tensor, y: Condition | None = None) -> Tensor:
        """Images (N, 3, R, R) in [-1, 1] for latents ``z`` (N, latent_dim) and class ids ``y`` (N,) or an int.

        ``y`` is ignored by an unconditional generator; ``y=None`` in a conditional one uses the condition set by
        ``sabn.conditioned(G, y)``.
        """
        check_latent(z, self.latent_dim, type(self).__name__)
        h = self.l1(z).view(z.shape[0], self.channels[0], self.bottom_width, self.bottom_width)
        for name in self.block_names:
            h = getattr(self, name)(h, y)
        h = F.relu(getattr(self, self.out_bn_name)(h))
        return torch.tanh(getattr(self, self.out_conv_name)(h))


class SNGANGenerator32(SNGANGenerator):
    """SNGAN-32 (CIFAR-10): z 128 → 4×4×gf_dim → 3 GenBlocks gf_dim → gf_dim → 32×32 (official gf_dim 256).

    Parameters at full width: 4,304,387 (ccbn) / 4,307,459 (sabn).
    """

    def __init__(
        self,
        n_classes: int = 10,
        norm: str = "sabn",
        gf_dim: int = 256,
        latent_dim: int = 128,
        bottom_width: int = 4,
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__([gf_dim] * 4, n_classes, norm, latent_dim, bottom_width, norm_kwargs)


class SNGANGenerator128(SNGANGenerator):
    """``sngan_small_128`` (ImageNet dogs+cats, 143 classes): 4×4×8g → blocks 8g, 8g, 4g, 4g, 2g, g → 128×128.

    Official gf_dim g = 64; 10,612,099 parameters with sabn.
    """

    def __init__(
        self,
        n_classes: int = 143,
        norm: str = "sabn",
        gf_dim: int = 64,
        latent_dim: int = 128,
        bottom_width: int = 4,
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        g = gf_dim
        super().__init__([8 * g, 8 * g, 4 * g, 4 * g, 2 * g, g], n_classes, norm, latent_dim, bottom_width, norm_kwargs)


class OptimizedDisBlock(nn.Module):
    """First D block: conv3×3 → ReLU → conv3×3 → avgpool 2; shortcut avgpool 2 → conv1×1 (no pre-activation)."""

    def __init__(self, in_channels: int, out_channels: int, d_sn: bool = True) -> None:
        super().__init__()
        self.c1 = maybe_sn(nn.Conv2d(in_channels, out_channels, 3, padding=1), d_sn)
        self.c2 = maybe_sn(nn.Conv2d(out_channels, out_channels, 3, padding=1), d_sn)
        self.c_sc = maybe_sn(nn.Conv2d(in_channels, out_channels, 1), d_sn)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


class DisBlock(nn.Module):
    """Pre-activation D block: ReLU → conv3×3 → ReLU → conv3×3 [→ avgpool 2].

    Hidden width = input width (official default). Shortcut: 1×1 conv then avgpool when the block down-samples or
    changes width, identity otherwise.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, d_sn: bool = True) -> None:
        super().__init__()
        self.downsample = downsample
        hidden = in_channels
        self.c1 = maybe_sn(nn.Conv2d(in_channels, hidden, 3, padding=1), d_sn)
        self.c2 = maybe_sn(nn.Conv2d(hidden, out_channels, 3, padding=1), d_sn)
        self.learnable_sc = in_channels != out_channels or downsample
        if self.learnable_sc:
            self.c_sc = maybe_sn(nn.Conv2d(in_channels, out_channels, 1), d_sn)

    def _down(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: Tensor) -> Tensor:
        h = self._down(self.c2(F.relu(self.c1(F.relu(x)))))
        sc = self._down(self.c_sc(x)) if self.learnable_sc else x
        return h + sc


class SNGANDiscriminator(nn.Module):
    """SNGAN projection discriminator: OptimizedDisBlock → DisBlocks → ReLU → global sum pool → Linear + ⟨l_y(y), h⟩.

    ``widths`` = [C1, ..., Cn] (C1 = OptimizedDisBlock width), ``downsample`` one flag per DisBlock. Modules:
    ``block1 ... block{n}``, ``l{n+1}`` (Linear C_n → 1, no bias) and ``l_y`` (Embedding(n_classes, C_n), absent
    when ``n_classes == 0``); every layer spectrally normalised when ``d_sn``. Returns one logit per sample, (N,).
    """

    def __init__(
        self, widths: Sequence[int], downsample: Sequence[bool], n_classes: int = 10, d_sn: bool = True
    ) -> None:
        super().__init__()
        if len(downsample) != len(widths) - 1:
            raise ValueError(f"need one downsample flag per DisBlock: {len(widths) - 1}, got {len(downsample)}")
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0 (0 = unconditional), got {n_classes}")
        self.widths = [int(c) for c in widths]
        self.n_classes = int(n_classes)
        self.conditional = self.n_classes > 0
        self.block_names = ["block1"]
        self.block1 = OptimizedDisBlock(3, self.widths[0], d_sn)
        for i, (cin, cout, down) in enumerate(zip(self.widths[:-1], self.widths[1:], downsample)):
            name = f"block{i + 2}"
            self.add_module(name, DisBlock(cin, cout, bool(down), d_sn))
            self.block_names.append(name)
        self.head_name = f"l{len(self.widths) + 1}"
        self.add_module(self.head_name, maybe_sn(nn.Linear(self.widths[-1], 1, bias=False), d_sn))
        self.l_y = maybe_sn(nn.Embedding(n_classes, self.widths[-1]), d_sn) if self.conditional else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (N,) for images ``x`` (N, 3, H, W) and labels ``y`` (N,); ``y`` is required iff conditional
        (an unconditional D ignores it)."""
        h = x
        for name in self.block_names:
            h = getattr(self, name)(h)
        h = F.relu(h).sum(dim=(2, 3))
        out = getattr(self, self.head_name)(h).squeeze(1)
        return out + projection(h, self.l_y, y, type(self).__name__)


class SNGANDiscriminator32(SNGANDiscriminator):
    """SNGAN-32 D: OptimizedDisBlock(3→df) 32→16, DisBlock down 16→8, two DisBlocks at 8×8, all df_dim wide.

    Official df_dim 128: 1,055,104 parameters (conditional, 10 classes). Also the D of AutoGAN-32.
    """

    def __init__(self, n_classes: int = 10, df_dim: int = 128, d_sn: bool = True) -> None:
        super().__init__([df_dim] * 4, [True, False, False], n_classes, d_sn)


class SNGANDiscriminator128(SNGANDiscriminator):
    """``sngan_small_128`` D: widths d, 2d, 4d, 8d, 8d (down) and 8d (no down); official df_dim d = 64,
    12,311,296 parameters with 143 classes."""

    def __init__(self, n_classes: int = 143, df_dim: int = 64, d_sn: bool = True) -> None:
        d = df_dim
        super().__init__([d, 2 * d, 4 * d, 8 * d, 8 * d, 8 * d], [True, True, True, True, False], n_classes, d_sn)
