"""AutoGAN's discovered CIFAR-10 generator with conditional norms in its cells (the SaBN paper's AutoGAN-32).

Topology (AutoGAN ``autogan_cifar10_a``): ``l1`` Linear z → 4×4×C, then three up-sampling cells of width C

======  =========  ===============  ==========================
cell    up mode    inner shortcut   cross-scale skip-ins
======  =========  ===============  ==========================
cell1   nearest    yes              none
cell2   bilinear   yes              cell1
cell3   nearest    no               cell1 (×4 up), cell2 (×2)
======  =========  ===============  ==========================

and ``to_rgb`` = BatchNorm2d → ReLU → conv3×3 → tanh. The SaBN code puts a conditional norm (``n1`` on the cell
input, ``n2`` after the skip-ins) in every cell; ``norm="none"`` gives the original unconditional AutoGAN cells.
The D is SNGAN-32's (:class:`tasks.gan.models.sngan.SNGANDiscriminator32`), as in the official code.

**The in-place skip-add.** The official cell keeps ``skip_out = h`` (the ``c1`` output) and then adds the
skip-in features with ``h += ...``, which mutates that same tensor: the ``skip_out`` a cell hands to later cells
already contains its own skip-in contributions. Only cell2 is affected (cell1 has no skip-ins, cell3's skip_out
is unused): cell3 receives ``c1(cell2) + skip_in(cell1)`` rather than ``c1(cell2)``. Official checkpoints were
trained with this, so :class:`AutoGANGenerator32` reproduces it by default (``inplace_skip=True``, written
out-of-place so autograd is unaffected); ``inplace_skip=False`` gives the "intended" pure ``c1`` skip output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

import sabn
from sabn import Condition

from .common import apply_norm, build_block_norm, check_latent


def _upsample(x: Tensor, mode: str, size: tuple[int, int] | None = None) -> Tensor:
    # Official: F.interpolate with the default align_corners (False) for bilinear.
    if size is None:
        return F.interpolate(x, scale_factor=2, mode=mode)
    return F.interpolate(x, size=size, mode=mode)


class AutoGANCell(nn.Module):
    """One AutoGAN generator cell (pre-activation, ×2 up-sampling). ``forward`` returns ``(skip_out, out)``.

    n1 → ReLU → up → conv3×3 ``c1`` (→ skip_out) → + Σ 1×1 ``skip_in_ops`` (each skip feature up-sampled to the
    current size with the cell's mode) → n2 → ReLU → conv3×3 ``c2`` → + ``c_sc``(up(x)) if ``shortcut``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        up_mode: str,
        norm: str,
        n_classes: int,
        num_skip_in: int = 0,
        shortcut: bool = False,
        norm_kwargs: Mapping[str, Any] | None = None,
        inplace_skip: bool = True,
    ) -> None:
        super().__init__()
        if up_mode not in ("nearest", "bilinear"):
            raise ValueError(f"up_mode must be 'nearest' or 'bilinear', got {up_mode!r}")
        self.up_mode = up_mode
        self.inplace_skip = inplace_skip
        self.c1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.c2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.n1 = build_block_norm(norm, in_channels, n_classes, norm_kwargs)
        self.n2 = build_block_norm(norm, out_channels, n_classes, norm_kwargs)
        self.c_sc = nn.Conv2d(in_channels, out_channels, 1) if shortcut else None
        self.skip_in_ops = (
            nn.ModuleList(nn.Conv2d(out_channels, out_channels, 1) for _ in range(num_skip_in))
            if num_skip_in > 0
            else None
        )

    def forward(
        self, x: Tensor, skip_ft: Sequence[Tensor] = (), y: Condition | None = None
    ) -> tuple[Tensor, Tensor]:
        n_skip = 0 if self.skip_in_ops is None else len(self.skip_in_ops)
        if len(skip_ft) != n_skip:
            raise ValueError(f"this cell takes {n_skip} skip-in features, got {len(skip_ft)}")
        h = self.c1(_upsample(F.relu(apply_norm(self.n1, x, y)), self.up_mode))
        skip_out = h
        if self.skip_in_ops is not None:
            size = (h.shape[2], h.shape[3])
            for ft, op in zip(skip_ft, self.skip_in_ops):
                h = h + op(_upsample(ft, self.up_mode, size))
            if self.inplace_skip:
                # Reproduces the official `h_skip_out = h; h += ...` aliasing (see the module docstring).
                skip_out = h
        out = self.c2(F.relu(apply_norm(self.n2, h, y)))
        if self.c_sc is not None:
            out = out + self.c_sc(_upsample(x, self.up_mode))
        return skip_out, out


class AutoGANGenerator32(nn.Module):
    """Conditional AutoGAN-32 generator (official SaBN layout: ``l1``, ``cell1..3``, ``to_rgb.0`` BN,
    ``to_rgb.2`` conv).

    ``norm``: ``sabn`` / ``ccbn`` (official conditional variants, 4,439,043 / 4,435,971 parameters at
    gf_dim 256), ``bn`` (unconditional BN cells) or ``none`` (the original AutoGAN, 4,405,251). ``norm_kwargs`` go
    to :func:`sabn.build_norm`. ``inplace_skip``: see the module docstring.
    """

    def __init__(
        self,
        n_classes: int = 10,
        norm: str = "sabn",
        gf_dim: int = 256,
        latent_dim: int = 128,
        bottom_width: int = 4,
        norm_kwargs: Mapping[str, Any] | None = None,
        inplace_skip: bool = True,
    ) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        self.norm = norm
        self.ch = int(gf_dim)
        self.latent_dim = int(latent_dim)
        self.bottom_width = int(bottom_width)
        self.conditional = norm != "none" and sabn.is_conditional(norm)
        c = self.ch
        common = {"norm": norm, "n_classes": n_classes, "norm_kwargs": norm_kwargs, "inplace_skip": inplace_skip}
        self.l1 = nn.Linear(latent_dim, bottom_width**2 * c)
        self.cell1 = AutoGANCell(c, c, "nearest", num_skip_in=0, shortcut=True, **common)
        self.cell2 = AutoGANCell(c, c, "bilinear", num_skip_in=1, shortcut=True, **common)
        self.cell3 = AutoGANCell(c, c, "nearest", num_skip_in=2, shortcut=False, **common)
        self.to_rgb = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 3, 3, padding=1), nn.Tanh())

    @property
    def resolution(self) -> int:
        """Side length of the generated images."""
        return self.bottom_width * 8

    def forward(self, z: Tensor, y: Condition | None = None) -> Tensor:
        """Images (N, 3, 8·bw, 8·bw) in [-1, 1]; ``y`` as in :meth:`SNGANGenerator.forward`."""
        check_latent(z, self.latent_dim, type(self).__name__)
        h = self.l1(z).view(z.shape[0], self.ch, self.bottom_width, self.bottom_width)
        s1, h = self.cell1(h, (), y)
        s2, h = self.cell2(h, (s1,), y)
        _, h = self.cell3(h, (s1, s2), y)
        return self.to_rgb(h)


__all__ = ["AutoGANCell", "AutoGANGenerator32"]
