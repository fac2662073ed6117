"""Networks and losses of the style-transfer task: the VGG-19 encoder, the AdaIN decoder and the style net.

Layouts follow pytorch-AdaIN (``net.vgg``, ``net.decoder``), which the official SaBN NST code reuses, so the
official ``vgg_normalised.pth`` and ``decoder.pth`` and the official training checkpoints load unchanged:

* encoder = the first 31 children of the 53-layer ``vgg_normalised`` Sequential (up to relu4_1): a 1×1 Conv2d(3, 3)
  that preprocesses the image, then VGG-19's 3×3 convolutions each preceded by ``ReflectionPad2d(1)`` and followed
  by ReLU, with 2×2 max-pools in ``ceil_mode``. relu1_1, relu2_1, relu3_1, relu4_1 are children 3, 10, 17, 30.
* decoder = the mirror image up to relu4_1 (9 convolutions, nearest ×2 upsampling, no output activation).
* style norm at relu4_1: ``adain`` (AdaIN), ``saadain`` (SaAdaIN, learned shared affine) or ``sain`` (sandwich
  instance norm conditioned on the id of one of a fixed set of styles, with learned per-style affines).

Without the official VGG weights (they are not available offline) :func:`load_vgg` builds a seeded random encoder
and labels it a stand-in (:class:`EncoderInfo`); nothing computed with it says anything about the paper's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sabn
from sabn import Condition
from tasks.common.checkpoint import load_file, state_dict_mismatches
from tasks.common.errors import CheckpointError

VGG_URL = "https://github.com/naoto0804/pytorch-AdaIN/releases/tag/v0.0.0"

# ---------------------------------------------------------------------------------------------------------------
# Layouts

#: VGG-19 convolutions of ``vgg_normalised`` after the 1×1 preprocessing conv: (in, out) channels, "M" = max-pool.
_VGG19_CONVS: tuple[tuple[int, int] | str, ...] = (
    (3, 64), (64, 64), "M",
    (64, 128), (128, 128), "M",
    (128, 256), (256, 256), (256, 256), (256, 256), "M",
    (256, 512), (512, 512), (512, 512), (512, 512), "M",
    (512, 512), (512, 512), (512, 512), (512, 512),
)
#: Number of children of the full official Sequential, and of the encoder (up to relu4_1).
VGG_FULL_LEN = 53
ENCODER_LEN = 31
#: Child index of each ReLU the losses read.
RELU_INDICES: dict[str, int] = {"relu1_1": 3, "relu2_1": 10, "relu3_1": 17, "relu4_1": 30}
STYLE_LAYERS: tuple[str, ...] = tuple(RELU_INDICES)
FEATURE_CHANNELS = 512
#: relu4_1 has stride 8; instance statistics and the reflection padding before conv4_1 need a pooled map of at
#: least 2×2, i.e. ceil(side / 8) >= 2.
MIN_IMAGE_SIDE = 9
#: Decoder convolutions (in, out), "U" = nearest ×2 upsampling; every conv but the last is followed by ReLU.
_DECODER_CONVS: tuple[tuple[int, int] | str, ...] = (
    (512, 256), "U",
    (256, 256), (256, 256), (256, 256), (256, 128), "U",
    (128, 128), (128, 64), "U",
    (64, 64), (64, 3),
)

STYLE_NORMS = ("adain", "saadain", "sain")


def _vgg_layers(num_children: int = VGG_FULL_LEN) -> list[nn.Module]:
    """The official ``vgg_normalised`` children in order, cut after ``num_children``."""
    layers: list[nn.Module] = [nn.Conv2d(3, 3, kernel_size=1)]
    for spec in _VGG19_CONVS:
        if spec == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True))
        else:
            cin, cout = spec
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3), nn.ReLU()]
    assert len(layers) == VGG_FULL_LEN
    return layers[:num_children]


def vgg_normalised_full() -> nn.Sequential:
    """The complete 53-child ``vgg_normalised`` Sequential (relu5_4 included), as the official file stores it.

    Only used to read and write files in the official layout; the network itself uses :class:`VGGEncoder`.
    """
    return nn.Sequential(*_vgg_layers())


class VGGEncoder(nn.Sequential):
    """The frozen ``vgg_normalised`` encoder up to relu4_1 (children 0–30, state-dict keys ``0.weight`` …
    ``29.bias`` exactly as the official file).

    ``encoder(x)`` gives relu4_1; :meth:`features` gives relu1_1, relu2_1, relu3_1, relu4_1 in one pass.
    Input: RGB images in [0, 1] without mean/std normalisation (the 1×1 conv does the preprocessing).
    """

    def __init__(self) -> None:
        super().__init__(*_vgg_layers(ENCODER_LEN))
        self.requires_grad_(False)

    def _check(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected RGB images of shape (N, 3, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_IMAGE_SIDE:
            raise ValueError(
                f"images must be at least {MIN_IMAGE_SIDE} px on each side (relu4_1 has stride 8), "
                f"got {tuple(x.shape[-2:])}"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return super().forward(x)

    def features(self, x: Tensor) -> list[Tensor]:
        """[relu1_1, relu2_1, relu3_1, relu4_1] of ``x``."""
        self._check(x)
        wanted = set(RELU_INDICES.values())
        out = []
        for i, layer in enumerate(self):
            x = layer(x)
            if i in wanted:
                out.append(x)
        return out

    def slices(self) -> list[nn.Sequential]:
        """The four loss slices input→relu1_1, →relu2_1, →relu3_1, →relu4_1 (children [:4], [4:11], [11:18],
        [18:31]); they share this encoder's modules and are not registered, so no state-dict key is duplicated."""
        bounds = [0, *(i + 1 for i in RELU_INDICES.values())]
        children = list(self)
        return [nn.Sequential(*children[a:b]) for a, b in pairwise(bounds)]


class Decoder(nn.Sequential):
    """pytorch-AdaIN's decoder: relu4_1 features (512 channels, stride 8) → RGB image, 8× the feature size.

    Keys ``1.weight`` (256, 512, 3, 3) … ``28.weight`` (3, 64, 3, 3) as the official ``decoder.pth``. PyTorch's
    default initialisation, as in the official code. The output is not clamped (the losses see it raw).
    """

    def __init__(self) -> None:
        layers: list[nn.Module] = []
        for spec in _DECODER_CONVS:
            if spec == "U":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            else:
                cin, cout = spec
                layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, kernel_size=3), nn.ReLU()]
        layers.pop()  # no activation after the last conv
        super().__init__(*layers)


# ---------------------------------------------------------------------------------------------------------------
# Loading weights


@dataclass(frozen=True)
class EncoderInfo:
    """Where the encoder's weights came from. ``stand_in`` is True for the random encoder: results computed with
    it must carry ``label`` (they are not comparable with anything computed with ``vgg_normalised.pth``)."""

    stand_in: bool
    label: str
    path: str | None = None
    seed: int | None = None


def read_state_dict(path: str | Path, what: str, fix: str) -> dict[str, Tensor]:
    """``torch.load(path, weights_only=True, map_location='cpu')`` with one-line errors.

    ``what`` names the file's role ("VGG encoder weights"), ``fix`` says how to get a good one.
    """
    obj = load_file(path, what, fix)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{what} {path} is a {type(obj).__name__}, not a state dict — {fix}")
    return dict(obj)


def _shape(t: object) -> str:
    return str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__


def _check_layout(state: Mapping[str, object], expected: Mapping[str, Tensor], what: str, fix: str) -> None:
    """Raise a one-line :class:`CheckpointError` unless ``state`` has exactly ``expected``'s keys with the same
    shapes."""
    missing, unexpected, wrong_keys = state_dict_mismatches(state, {k: tuple(v.shape) for k, v in expected.items()})
    wrong = [f"{k} {_shape(state[k])} instead of {tuple(expected[k].shape)}" for k in wrong_keys]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            more = f" (+{len(items) - 4} more)" if len(items) > 4 else ""
            problems.append(f"{label} {', '.join(items[:4])}{more}")
    if problems:
        raise CheckpointError(f"{what} do not fit the official layout: {'; '.join(problems)} — {fix}")


def _init_stand_in_encoder(encoder: VGGEncoder, seed: int) -> None:
    """Seeded random weights that keep relu1_1…relu4_1 informative and O(1).

    * The 1×1 preprocessing conv maps [0, 1] RGB to (x − 0.5) / 0.25 (roughly centred, unit-scale inputs).
    * 3×3 convs: He-normal (std √(2 / fan_in)), zero bias, and each filter shifted to zero mean. Why: after a ReLU
      every input channel has a large positive mean; with plain He init a filter's response is dominated by that
      mean, whose sign is random per filter, so 19–26 % of the relu4_1 channels end up dead (std 0) and the
      surviving channels' statistics barely depend on the image (std profiles of different images correlated
      0.92–0.94). Zero-mean filters ignore the constant part and respond to local structure: no dead channels,
      profiles correlated 0.16–0.38. (Measured on seven 128² scikit-image photos and textures, seeds 0–2.)
    * Removing the mean also removes the mean's share of the signal power, so the filters after a ReLU get the
      extra gain 1/√(1 − 1/π) (the variance of a rectified Gaussian is (1 − 1/π) of its second moment). With it the
      RMS activation stays at 0.4–0.8 from relu1_1 to relu4_1 (without it, it decays to 0.16 at relu4_1).

    A CPU generator is used, so the same seed gives the same encoder on every machine (for a given torch version)
    and the global RNG is left alone.
    """
    gen = torch.Generator().manual_seed(int(seed))
    convs = [m for m in encoder if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        pre = convs[0]
        pre.weight.copy_(torch.eye(3).view(3, 3, 1, 1) / 0.25)
        pre.bias.fill_(-0.5 / 0.25)
        for i, conv in enumerate(convs[1:]):
            fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
            w = torch.randn(conv.weight.shape, generator=gen)
            w -= w.mean(dim=(1, 2, 3), keepdim=True)
            w *= math.sqrt(2.0 / fan_in)
            if i > 0:  # conv1_1 sees the centred image, every later conv a rectified input
                w /= math.sqrt(1.0 - 1.0 / math.pi)
            conv.weight.copy_(w)
            conv.bias.zero_()


def load_vgg(path: str | Path | None, seed: int = 0) -> tuple[VGGEncoder, EncoderInfo]:
    """The frozen encoder up to relu4_1 and where its weights came from.

    ``path``: the official ``vgg_normalised.pth`` (53-child layout; children 31–52 are dropped) or a file already
    truncated to the 31 encoder children. ``None``: a seeded random stand-in (see :func:`_init_stand_in_encoder`),
    flagged ``stand_in=True``.
    """
    encoder = VGGEncoder()
    if path is None:
        _init_stand_in_encoder(encoder, seed)
        label = f"random VGG-19 encoder (seed {seed}) — stand-in, not vgg_normalised.pth"
        return encoder, EncoderInfo(stand_in=True, label=label, seed=int(seed))
    fix = (f"download vgg_normalised.pth from {VGG_URL} and point the VGG path at it, "
           "or pass no path to use a seeded random stand-in encoder")
    state = read_state_dict(path, "VGG encoder weights", fix)
    expected = encoder.state_dict()
    # The keys of relu4_2…relu5_4 (children 31–52) are accepted and dropped; their shapes are still checked so a
    # file of another architecture is not half-loaded. Meta tensors give the shapes without allocating 80 MB.
    with torch.device("meta"):
        full = vgg_normalised_full().state_dict()
    beyond = {k: v for k, v in full.items() if k not in expected}
    _check_layout(
        state, {**expected, **{k: v for k, v in beyond.items() if k in state}},
        f"VGG encoder weights in {str(path)!r}", fix,
    )
    encoder.load_state_dict({k: state[k] for k in expected})
    info = EncoderInfo(stand_in=False, label=f"vgg_normalised ({Path(path).name})", path=str(path))
    return encoder, info


def _unwrap(state: Mapping[str, object], container_key: str, prefix: str) -> dict[str, object]:
    """The part of ``state`` that belongs to one module: ``state[container_key]`` if present (official training
    checkpoints store ``decoder_state_dict`` / ``saadain_state_dict``), else the keys under ``prefix`` (a whole
    network's state dict), else ``state`` itself (a standalone module file)."""
    inner = state.get(container_key)
    if isinstance(inner, Mapping):
        return dict(inner)
    prefixed = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return prefixed if prefixed else dict(state)


StateSource = str | Path | Mapping[str, object]


def _as_state(source: StateSource, what: str, fix: str) -> dict[str, object]:
    if isinstance(source, Mapping):
        return dict(source)
    return read_state_dict(source, what, fix)


def load_decoder(target: nn.Module, source: StateSource) -> None:
    """Load official-layout decoder weights into a :class:`Decoder` or a :class:`StyleTransferNet`'s decoder.

    ``source``: a path or a mapping holding ``decoder.pth`` keys, an official training checkpoint
    (``decoder_state_dict``), or a network state dict with ``decoder.`` keys.
    """
    decoder = target.decoder if isinstance(target, StyleTransferNet) else target
    if not isinstance(decoder, Decoder):
        raise TypeError(f"expected a Decoder or StyleTransferNet, got {type(target).__name__}")
    fix = f"use a decoder.pth from {VGG_URL} or a checkpoint of this task's training"
    state = _unwrap(_as_state(source, "decoder weights", fix), "decoder_state_dict", "decoder.")
    _check_layout(state, decoder.state_dict(), "decoder weights", fix)
    decoder.load_state_dict(state)


def load_saadain(target: nn.Module, source: StateSource) -> None:
    """Load official SaAdaIN weights (``shared_weight``, ``shared_bias``; standalone, inside an official training
    checkpoint as ``saadain_state_dict``, or with a ``style_norm.`` prefix) into a SandwichAdaIN or a saadain net."""
    norm = target.style_norm if isinstance(target, StyleTransferNet) else target
    if not isinstance(norm, sabn.SandwichAdaIN):
        kind = target.norm if isinstance(target, StyleTransferNet) else type(target).__name__
        raise CheckpointError(f"SaAdaIN weights only load into a 'saadain' network, this one uses {kind!r}")
    fix = "use a checkpoint written by a SaAdaIN run (official saadain_state_dict or this task's training)"
    state = _unwrap(_as_state(source, "SaAdaIN weights", fix), "saadain_state_dict", "style_norm.")
    _check_layout(state, norm.state_dict(), "SaAdaIN weights", fix)
    norm.load_state_dict(state)


def load_official_checkpoint(net: StyleTransferNet, source: StateSource) -> None:
    """Load an official SaBN-NST training checkpoint (``decoder_state_dict`` and, for SaAdaIN runs,
    ``saadain_state_dict``) into ``net``; a SaAdaIN checkpoint into an AdaIN net (or the reverse) is an error."""
    fix = "pass a ckpt_iter_*.pth.tar written by the official NST training"
    state = _as_state(source, "NST checkpoint", fix)
    if "decoder_state_dict" not in state:
        raise CheckpointError(f"NST checkpoint has no 'decoder_state_dict' (keys: {sorted(state)[:6]}) — {fix}")
    has_sa = "saadain_state_dict" in state
    if has_sa != (net.norm == "saadain"):
        which = "a SaAdaIN" if has_sa else "an AdaIN"
        raise CheckpointError(f"NST checkpoint is from {which} run but the network uses {net.norm!r} — {fix}")
    load_decoder(net, state)
    if has_sa:
        load_saadain(net, state)


# ---------------------------------------------------------------------------------------------------------------
# The style-transfer network


def style_statistics_loss(inp: Tensor, target: Tensor) -> Tensor:
    """MSE of channel means + MSE of channel stds (std = √(unbiased var + 1e-5), as AdaIN's ``calc_mean_std``)."""
    if inp.shape[:2] != target.shape[:2]:
        raise ValueError(f"style loss needs matching (N, C), got {tuple(inp.shape)} and {tuple(target.shape)}")
    im, istd = sabn.calc_mean_std(inp)
    tm, tstd = sabn.calc_mean_std(target)
    return F.mse_loss(im, tm) + F.mse_loss(istd, tstd)


@dataclass
class NSTLosses:
    """What one training forward pass measures (unweighted unless named ``weighted_*``).

    * ``content`` — the paper's L_c = MSE(relu4_1(g(t)), t) with t the network's own target ((Sa)AdaIN / SaIN
      output, α-blended). For SaAdaIN t moves with the learned shared affine, so L_c is not comparable across
      norms (paper.md §2.4 caveat).
    * ``content_adain_target`` — MSE(relu4_1(g(t)), t_adain) with the plain AdaIN target
      t_adain = α·AdaIN(φ(c), φ(s)) + (1 − α)·φ(c): the like-for-like content measure. Equal to ``content`` for
      AdaIN. Computed without gradient.
    * ``style`` — L_s = Σ_{relu1_1..relu4_1} MSE(μ) + MSE(σ); ``style_layers`` holds the four terms (detached).
    * ``total`` = content_weight · content + style_weight · style — what is optimised.
    """

    content: Tensor
    style: Tensor
    total: Tensor
    content_adain_target: Tensor
    style_layers: tuple[Tensor, ...]
    content_weight: float
    style_weight: float
    stylized: Tensor = field(repr=False)

    @property
    def weighted_content(self) -> Tensor:
        return self.content_weight * self.content

    @property
    def weighted_style(self) -> Tensor:
        """What the official code logs as ``loss_style`` (and the paper plots)."""
        return self.style_weight * self.style

    def as_floats(self) -> dict[str, float]:
        """Scalars for logging, weighted as the official code logs them (``loss_content`` = w_c·L_c, ``loss_style``
        = w_s·L_s, the content loss against the AdaIN target and each style layer with the same weights)."""
        names = ["loss", "loss_content", "loss_style", "loss_content_adain_target"]
        values = [self.total, self.weighted_content, self.weighted_style,
                  self.content_weight * self.content_adain_target]
        names += [f"loss_style_{name}" for name in STYLE_LAYERS]
        values += [self.style_weight * v for v in self.style_layers]
        # One device-to-host copy instead of one synchronisation per scalar.
        return dict(zip(names, torch.stack([v.detach().float() for v in values]).tolist()))


StyleArg = Tensor | tuple[Tensor, Tensor] | Condition


class StyleTransferNet(nn.Module):
    """Frozen encoder → style norm at relu4_1 → trainable decoder, and the training losses.

    ``norm``:

    * ``adain`` — AdaIN, no parameters.
    * ``saadain`` — SaAdaIN(512), learned shared affine (γ_sa, β_sa) initialised to exactly 1 / 0.
    * ``sain`` — ``sabn.SandwichInstanceNorm2d(512, num_styles)``: γ_i ⊙ (γ_sa ⊙ IN(x) + β_sa) + β_i for a FIXED
      set of ``num_styles`` styles, conditioned on the style id i. Its per-style affine is learned; the style image
      only enters the style loss. The shared affine starts at exactly 1 / 0 (as NST's SaAdaIN); the per-style
      affines use the library's N(1, 0.02) / 0 unless :meth:`init_style_affines` sets them from style images.

    ``detach_target``: the official code does not detach t, so for SaAdaIN (and SaIN) the content loss also pulls
    on the norm's parameters through its own target; True stops that gradient (an ablation, not the paper).
    """

    def __init__(
        self,
        encoder: VGGEncoder,
        decoder: Decoder | None = None,
        norm: str = "adain",
        num_styles: int | None = None,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        detach_target: bool = False,
        encoder_info: EncoderInfo | None = None,
        norm_kwargs: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__()
        if norm not in STYLE_NORMS:
            raise ValueError(f"unknown style norm {norm!r}; valid: {', '.join(STYLE_NORMS)}")
        if not isinstance(encoder, VGGEncoder):
            raise TypeError(f"encoder must be a VGGEncoder (see load_vgg), got {type(encoder).__name__}")
        kwargs = dict(norm_kwargs or {})
        if norm == "sain":
            if num_styles is None or num_styles < 1:
                raise ValueError("norm 'sain' conditions on a fixed set of styles: pass num_styles >= 1")
            kwargs.setdefault("shared_init_std", 0.0)
            kwargs["num_conditions"] = int(num_styles)
        elif num_styles is not None:
            raise ValueError(f"num_styles only applies to norm 'sain', not {norm!r}")
        self.norm = norm
        self.num_styles = num_styles
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.detach_target = bool(detach_target)
        self.encoder_info = encoder_info or EncoderInfo(stand_in=True, label="encoder of unknown origin")
        self.encoder = encoder.requires_grad_(False)
        self.style_norm = sabn.build_norm(norm, FEATURE_CHANNELS, **kwargs)
        self.decoder = decoder if decoder is not None else Decoder()

    @property
    def conditional(self) -> bool:
        """True when the style is given as an id (``sain``) rather than an image."""
        return self.norm == "sain"

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Decoder and style-norm parameters (what the official code optimises); the encoder is frozen."""
        return [p for p in (*self.decoder.parameters(), *self.style_norm.parameters()) if p.requires_grad]

    def encode(self, images: Tensor) -> Tensor:
        """relu4_1 features."""
        return self.encoder(images)

    def encode_with_intermediate(self, images: Tensor) -> list[Tensor]:
        """[relu1_1, relu2_1, relu3_1, relu4_1]."""
        return self.encoder.features(images)

    def decode(self, features: Tensor) -> Tensor:
        return self.decoder(features)

    def apply_style(self, content_feat: Tensor, style: StyleArg) -> Tensor:
        """The style norm at relu4_1.

        ``style``: for adain/saadain relu4_1 style features or their ``(mean, std)`` pair (shapes (N|1, C, 1, 1));
        for sain a style id (int) or ids (LongTensor, shape N).
        """
        if self.conditional:
            if isinstance(style, tuple) or (isinstance(style, Tensor) and style.dtype.is_floating_point):
                raise TypeError("a 'sain' network takes style ids, not style images or statistics")
            return self.style_norm(content_feat, style)
        if isinstance(style, int) or (isinstance(style, Tensor) and not style.dtype.is_floating_point):
            raise TypeError(f"a {self.norm!r} network takes style features, not style ids")
        return self.style_norm(content_feat, style)

    @torch.no_grad()
    def init_style_affines(self, style_images: Tensor, first: int = 0) -> None:
        """``sain`` only: set style i's affine (γ_i, β_i) to the relu4_1 (σ, μ) of its image so that, with the shared
        affine at identity, the layer starts as AdaIN with that style (up to IN's biased variance).

        ``style_images[k]`` is style ``first + k``; call it chunk by chunk for a large style set.
        """
        if not self.conditional:
            raise ValueError(f"init_style_affines applies to 'sain' networks, this one uses {self.norm!r}")
        if style_images.dim() != 4 or first < 0 or first + style_images.shape[0] > self.num_styles:
            raise ValueError(
                f"expected style images (K, 3, H, W) for ids {first}.. below {self.num_styles}, got "
                f"{tuple(style_images.shape)} from id {first}"
            )
        mean, std = sabn.calc_mean_std(self.encode(style_images))
        c, rows = FEATURE_CHANNELS, slice(first, first + style_images.shape[0])
        self.style_norm.embed.weight[rows, :c] = std.flatten(1).to(self.style_norm.embed.weight.dtype)
        self.style_norm.embed.weight[rows, c:] = mean.flatten(1).to(self.style_norm.embed.weight.dtype)

    def forward(
        self, content: Tensor, style: Tensor, style_id: Condition | None = None, alpha: float = 1.0
    ) -> NSTLosses:
        """Training/validation losses for a batch of content and style images in [0, 1] (same batch size N).

        ``style_id`` (sain only, required there): the id of each style image in the fixed style set.
        """
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        if content.dim() != 4 or style.dim() != 4 or content.shape[0] != style.shape[0]:
            raise ValueError(
                f"content and style must be image batches of the same size, got {tuple(content.shape)} "
                f"and {tuple(style.shape)}"
            )
        if self.conditional and style_id is None:
            raise ValueError("a 'sain' network needs style_id (the id of each style in the fixed style set)")
        if not self.conditional and style_id is not None:
            raise ValueError(f"style_id only applies to 'sain' networks, this one uses {self.norm!r}")

        style_feats = self.encode_with_intermediate(style)
        content_feat = self.encode(content)
        t = self.apply_style(content_feat, style_id if self.conditional else style_feats[-1])
        t = alpha * t + (1.0 - alpha) * content_feat
        if self.detach_target:
            t = t.detach()

        g_t = self.decode(t)
        g_feats = self.encode_with_intermediate(g_t)
        content_loss = F.mse_loss(g_feats[-1], t)
        style_terms = [style_statistics_loss(g, s) for g, s in zip(g_feats, style_feats)]
        style_loss = torch.stack(style_terms).sum()
        total = self.content_weight * content_loss + self.style_weight * style_loss

        with torch.no_grad():
            if self.norm == "adain":
                adain_loss = content_loss.detach()
            else:
                t_adain = sabn.adaptive_instance_norm(content_feat, style_feats[-1])
                t_adain = alpha * t_adain + (1.0 - alpha) * content_feat
                adain_loss = F.mse_loss(g_feats[-1], t_adain)
        return NSTLosses(
            content=content_loss,
            style=style_loss,
            total=total,
            content_adain_target=adain_loss,
            style_layers=tuple(s.detach() for s in style_terms),
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            stylized=g_t.detach(),
        )

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}, encoder={self.encoder_info.label!r}"


def build_style_net(
    norm: str = "adain",
    vgg_path: str | Path | None = None,
    seed: int = 0,
    num_styles: int | None = None,
    decoder_path: str | Path | None = None,
    content_weight: float = 1.0,
    style_weight: float = 10.0,
    detach_target: bool = False,
    norm_kwargs: Mapping[str, object] | None = None,
) -> StyleTransferNet:
    """Encoder (official weights, or the seeded stand-in when ``vgg_path`` is None) + ``norm`` + decoder
    (PyTorch default init from the global RNG, or official-layout weights from ``decoder_path``)."""
    encoder, info = load_vgg(vgg_path, seed=seed)
    net = StyleTransferNet(
        encoder, Decoder(), norm=norm, num_styles=num_styles, content_weight=content_weight,
        style_weight=style_weight, detach_target=detach_target, encoder_info=info, norm_kwargs=norm_kwargs,
    )
    if decoder_path is not None:
        load_decoder(net, decoder_path)
    return net
