"""BigGAN at 32×32 (BigGAN-PyTorch's CIFAR-10 configuration) with its class-conditional BN, plus the SaBN variant.

The official SaBN release has no BigGAN code, so this follows BigGAN-PyTorch's CIFAR script
(``G_ch = D_ch = 64``, no shared embedding, no hierarchical z, no attention, SN on every G and D layer with
eps 1e-8, BN eps 1e-5) and adds the sandwich affine the way the SaBN paper describes it.

BigGAN's ccbn and the mapping to ``sabn``'s layout
--------------------------------------------------
BigGAN-PyTorch's ``ccbn`` computes ``x̂ · (1 + gain[y]) + bias[y]`` with two class embeddings ``gain``, ``bias``
of shape (K, C) initialised N(0, 0.02) (the ``N02`` init). :class:`BigGANConditionalBatchNorm2d` keeps exactly
that parameterisation (so the effective scales start at 1 ± 0.02 and the optimiser sees the same parameters).
With ``sandwich=True`` (``norm="sabn"``) a shared affine (γ_sa, β_sa) sits between the normalisation and the
class affine: ``(1 + gain[y]) · (γ_sa · x̂ + β_sa) + bias[y]``; it is the affine of the inner ``bn``, as in the
official SaBN GAN layout, initialised γ_sa ~ N(1, 0.02), β_sa = 0 like the SaBN code's ``weights_init``.

As a function it equals ``sabn``'s layers with ``embed.weight = [1 + gain.weight | bias.weight]``:
``norm="ccbn"`` ↔ :class:`sabn.CategoricalConditionalBatchNorm2d`, ``norm="sabn"`` ↔
:class:`sabn.SandwichBatchNorm2d` (same ``bn`` buffers and shared affine); :meth:`~BigGANConditionalBatchNorm2d.to_sabn`
does the conversion (e.g. to use ``sabn.fold``).

Spectral norm uses ``torch.nn.utils.spectral_norm`` (one power iteration per training forward, persistent u/v),
which matches BigGAN's ``layers.SN`` with ``num_svs = num_itrs = 1`` up to its u initialisation (BigGAN draws an
unnormalised randn u; both normalise it in the first iteration).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sabn
from sabn import Condition, ConditionalNorm

from .common import apply_norm, check_latent, maybe_sn, projection

BIGGAN_SN_EPS = 1e-8


class BigGANConditionalBatchNorm2d(ConditionalNorm):
    """BigGAN's class-conditional BN, ``x̂ (1 + gain[y]) + bias[y]``; with ``sandwich`` the SaBN variant
    ``(1 + gain[y]) (γ_sa x̂ + β_sa) + bias[y]`` (γ_sa, β_sa = ``bn.weight``, ``bn.bias``).

    One set of BN statistics (``bn`` buffers, momentum 0.1). ``init_std``: std of the N(0, ·) init of ``gain``
    and ``bias`` (BigGAN's N02 → 0.02); ``shared_init_std``: γ_sa ~ N(1, ·), β_sa = 0.
    """

    def __init__(
        self,
        num_features: int,
        num_conditions: int,
        sandwich: bool = False,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = True,
        init_std: float = 0.02,
        shared_init_std: float = 0.02,
    ) -> None:
        super().__init__(num_features, num_conditions)
        self.sandwich = bool(sandwich)
        self.init_std = init_std
        self.shared_init_std = shared_init_std
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine=self.sandwich,
                                 track_running_stats=track_running_stats)
        self.gain = nn.Embedding(num_conditions, num_features)
        self.bias = nn.Embedding(num_conditions, num_features)
        self.reset_parameters()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sandwich={self.sandwich}"

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Fresh statistics; gain, bias ~ N(0, init_std); shared affine N(1, shared_init_std) / 0."""
        if self.bn.track_running_stats:
            self.bn.reset_running_stats()
        for emb in (self.gain, self.bias):
            if self.init_std > 0:
                emb.weight.normal_(0.0, self.init_std)
            else:
                emb.weight.zero_()
        if self.sandwich:
            if self.shared_init_std > 0:
                self.bn.weight.normal_(1.0, self.shared_init_std)
            else:
                self.bn.weight.fill_(1.0)
            self.bn.bias.zero_()

    def _rows(self, emb: nn.Embedding, y: Condition) -> Tensor:
        return emb.weight[y] if isinstance(y, int) else emb(y)

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:
        scale = 1.0 + self._rows(self.gain, y)
        # _bn_affine applies bn's own (shared) affine first when it has one, then scale/shift.
        return self._bn_affine(self.bn, x, scale, self._rows(self.bias, y))

    @torch.no_grad()
    def to_sabn(self) -> sabn.CategoricalConditionalBatchNorm2d | sabn.SandwichBatchNorm2d:
        """The equivalent ``sabn`` layer (CCBN, or SaBN when ``sandwich``): ``embed = [1 + gain | bias]``, same
        statistics and shared affine, same train/eval mode."""
        c, k, bn = self.num_features, self.num_conditions, self.bn
        cls = sabn.SandwichBatchNorm2d if self.sandwich else sabn.CategoricalConditionalBatchNorm2d
        layer = cls(c, k, eps=bn.eps, momentum=bn.momentum, track_running_stats=bn.track_running_stats)
        layer = layer.to(device=self.gain.weight.device, dtype=self.gain.weight.dtype)
        layer.bn.load_state_dict(bn.state_dict())
        layer.embed.weight.copy_(torch.cat([1.0 + self.gain.weight, self.bias.weight], dim=1))
        layer.train(self.training)
        return layer


def _biggan_norm(
    name: str, num_features: int, n_classes: int, norm_kwargs: Mapping[str, Any] | None
) -> nn.Module | None:
    kwargs = dict(norm_kwargs or {})
    if name == "none":  # ablation: no normalisation in the blocks (the output BN stays)
        return None
    if name in ("ccbn", "sabn"):
        if n_classes < 1:
            raise ValueError(f"norm {name!r} is class-conditional: n_classes must be >= 1, got {n_classes}")
        return BigGANConditionalBatchNorm2d(num_features, n_classes, sandwich=name == "sabn", **kwargs)
    if name == "bn":
        return sabn.build_norm("bn", num_features, **kwargs)
    raise ValueError(f"BigGAN supports norm 'ccbn', 'sabn', 'bn' or 'none', got {name!r}")


class BigGANGBlock(nn.Module):
    """BigGAN G block: bn1 → ReLU → up ×2 → SN conv3×3 → bn2 → ReLU → SN conv3×3; shortcut up ×2 → SN conv1×1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        norm: str,
        n_classes: int,
        norm_kwargs: Mapping[str, Any] | None = None,
        sn_eps: float = BIGGAN_SN_EPS,
    ) -> None:
        super().__init__()
        self.conv1 = maybe_sn(nn.Conv2d(in_channels, out_channels, 3, padding=1), True, sn_eps)
        self.conv2 = maybe_sn(nn.Conv2d(out_channels, out_channels, 3, padding=1), True, sn_eps)
        # Always learnable: every G block up-samples.
        self.conv_sc = maybe_sn(nn.Conv2d(in_channels, out_channels, 1), True, sn_eps)
        self.bn1 = _biggan_norm(norm, in_channels, n_classes, norm_kwargs)
        self.bn2 = _biggan_norm(norm, out_channels, n_classes, norm_kwargs)

    def forward(self, x: Tensor, y: Condition | None = None) -> Tensor:
        h = F.interpolate(F.relu(apply_norm(self.bn1, x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(apply_norm(self.bn2, self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class BigGANGenerator32(nn.Module):
    """BigGAN-32 G: SN Linear z → 4×4×4g, three :class:`BigGANGBlock` 4g → 4g (4→32), BN → ReLU → SN conv3×3 → tanh.

    ``gf_dim`` is BigGAN's ``G_ch`` (64 → 256 channels; 4,304,387 parameters with ``ccbn``). ``norm``: ``ccbn``
    (BigGAN), ``sabn`` (BigGAN-SaBN), ``bn`` (unconditional) or ``none``; ``norm_kwargs`` go to
    :class:`BigGANConditionalBatchNorm2d` (or ``BatchNorm2d`` for ``bn``). Modules: ``linear``, ``blocks.{i}``,
    ``output_layer`` (0 = BN, 2 = conv).
    """

    def __init__(
        self,
        n_classes: int = 10,
        norm: str = "ccbn",
        gf_dim: int = 64,
        latent_dim: int = 128,
        bottom_width: int = 4,
        norm_kwargs: Mapping[str, Any] | None = None,
        sn_eps: float = BIGGAN_SN_EPS,
    ) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        self.norm = norm
        self.ch = 4 * int(gf_dim)
        self.latent_dim = int(latent_dim)
        self.bottom_width = int(bottom_width)
        self.conditional = norm in ("ccbn", "sabn")
        c = self.ch
        self.linear = maybe_sn(nn.Linear(latent_dim, bottom_width**2 * c), True, sn_eps)
        self.blocks = nn.ModuleList(BigGANGBlock(c, c, norm, n_classes, norm_kwargs, sn_eps) for _ in range(3))
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(c), nn.ReLU(), maybe_sn(nn.Conv2d(c, 3, 3, padding=1), True, sn_eps)
        )

    @property
    def resolution(self) -> int:
        """Side length of the generated images."""
        return self.bottom_width * 8

    def forward(self, z: Tensor, y: Condition | None = None) -> Tensor:
        """Images (N, 3, 8·bw, 8·bw) in [-1, 1] for ``z`` (N, latent_dim) and class ids ``y`` (N,) or an int."""
        check_latent(z, self.latent_dim, type(self).__name__)
        h = self.linear(z).view(z.shape[0], self.ch, self.bottom_width, self.bottom_width)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.output_layer(h))


class BigGANDBlock(nn.Module):
    """BigGAN D block: [ReLU] → SN conv3×3 → ReLU → SN conv3×3 [→ avgpool 2] (hidden width = out, ``D_wide``).

    Shortcut (learnable when down-sampling or changing width): pre-activated blocks conv1×1 then pool, the first
    (non-pre-activated) block pool then conv1×1.
    """

    def __init__(
        self, in_channels: int, out_channels: int, downsample: bool, preactivation: bool,
        sn_eps: float = BIGGAN_SN_EPS,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.preactivation = preactivation
        self.conv1 = maybe_sn(nn.Conv2d(in_channels, out_channels, 3, padding=1), True, sn_eps)
        self.conv2 = maybe_sn(nn.Conv2d(out_channels, out_channels, 3, padding=1), True, sn_eps)
        self.learnable_sc = in_channels != out_channels or downsample
        if self.learnable_sc:
            self.conv_sc = maybe_sn(nn.Conv2d(in_channels, out_channels, 1), True, sn_eps)

    def _down(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _shortcut(self, x: Tensor) -> Tensor:
        if not self.learnable_sc:
            return x
        if self.preactivation:
            return self._down(self.conv_sc(x))
        return self.conv_sc(self._down(x))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._down(self.conv2(F.relu(self.conv1(h))))
        return h + self._shortcut(x)


class BigGANDiscriminator32(nn.Module):
    """BigGAN-32 D: DBlocks 3→4d (down), 4d→4d (down), 4d→4d, 4d→4d; ReLU → sum pool → SN Linear(4d→1) +
    ⟨SN embed(y), h⟩.

    ``df_dim`` is BigGAN's ``D_ch`` (64 → 256 channels; 4,207,361 parameters with 10 classes). ``n_classes=0``
    drops the projection. Modules: ``blocks.{i}``, ``linear``, ``embed``. Returns logits (N,).
    """

    def __init__(self, n_classes: int = 10, df_dim: int = 64, sn_eps: float = BIGGAN_SN_EPS) -> None:
        super().__init__()
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0 (0 = unconditional), got {n_classes}")
        self.n_classes = int(n_classes)
        self.conditional = self.n_classes > 0
        c = 4 * int(df_dim)
        self.blocks = nn.ModuleList([
            BigGANDBlock(3, c, downsample=True, preactivation=False, sn_eps=sn_eps),
            BigGANDBlock(c, c, downsample=True, preactivation=True, sn_eps=sn_eps),
            BigGANDBlock(c, c, downsample=False, preactivation=True, sn_eps=sn_eps),
            BigGANDBlock(c, c, downsample=False, preactivation=True, sn_eps=sn_eps),
        ])
        self.linear = maybe_sn(nn.Linear(c, 1), True, sn_eps)
        self.embed = maybe_sn(nn.Embedding(n_classes, c), True, sn_eps) if self.conditional else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Logits (N,); ``y`` (N,) required iff conditional (an unconditional D ignores it)."""
        h = x
        for block in self.blocks:
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + projection(h, self.embed, y, type(self).__name__)
