"""Stylisation with a trained :class:`~tasks.nst.networks.StyleTransferNet`: content–style trade-off, style
interpolation, colour preservation, and image file I/O. ``python -m tasks.nst.stylize content=... style=...`` is the
command line (see :mod:`tasks.nst.stylize_cli`).

Semantics follow pytorch-AdaIN's ``test.py``: images are RGB tensors in [0, 1] without mean/std normalisation;
t = α·T + (1 − α)·φ(c) at relu4_1 with T the style norm's output; several styles are mixed by a weighted sum of
their style-norm outputs, weights normalised to sum 1; ``preserve_color`` first matches each style image's RGB
mean and covariance to the content image (CORAL). The output is clamped to [0, 1] and cropped to the content's
size (for sides that are not multiples of 8 the decoder returns 8·⌈side/8⌉ pixels; the extra rows and columns
come from the ceil-mode pooling's partial windows at the bottom/right edge, so the crop keeps the top-left).
Differences from ``test.py``: weights may be floats (``test.py`` parses them with ``int``); with no weights,
several styles are mixed equally; colour preservation also works with several styles (``test.py`` allows it
only for a single pair).

With the random stand-in encoder (no ``vgg_normalised.pth``) the output is not a meaningful stylisation; the
network's ``encoder_info.label`` says so and callers must pass it on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.utils import save_image as _tv_save_image

import sabn

from .networks import StyleTransferNet

StyleImages = Tensor | Sequence[Tensor]
StyleIds = int | Tensor | Sequence[int | Tensor]


# ---------------------------------------------------------------------------------------------------------------
# Image I/O


def load_image(path: str | Path, size: int | None = None, crop: bool = False) -> Tensor:
    """An image file as an RGB tensor (3, H, W) in [0, 1].

    ``size``: resize so the shorter side is ``size`` (aspect ratio kept; ``None`` or 0 keeps the original, as
    ``test.py``'s 0). ``crop``: then take the central ``size``×``size`` square (``test.py``'s ``--crop``).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {str(p)!r}")
    if crop and not size:
        raise ValueError("crop needs a size (the side of the central square)")
    try:
        with Image.open(p) as im:
            img = im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {str(p)!r}: {e}") from e
    if size:
        img = TF.resize(img, int(size), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        if crop:
            img = TF.center_crop(img, [int(size), int(size)])
    return TF.to_tensor(img)


def save_image(image: Tensor, path: str | Path) -> Path:
    """Write one image (3, H, W) or (1, 3, H, W) in [0, 1] (clamped) to ``path``; the format follows the extension
    (.png, .jpg, …). Creates the parent folder. Returns the path."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"save_image writes one image; got a batch of {image.shape[0]} (save them one by one)")
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (3, H, W), got {tuple(image.shape)}")
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    _tv_save_image(image.detach().float().cpu().clamp(0, 1), p)
    return p


# ---------------------------------------------------------------------------------------------------------------
# Colour preservation


def _sym_matrix_power(mat: Tensor, power: float, eps: float) -> Tensor:
    """mat^power for batched symmetric positive semi-definite matrices (eigenvalues floored at ``eps``)."""
    evals, evecs = torch.linalg.eigh(mat)
    scaled = evecs * evals.clamp_min(eps).pow(power).unsqueeze(-2)
    return scaled @ evecs.transpose(-1, -2)


def coral(source: Tensor, target: Tensor, eps: float = 1e-5) -> Tensor:
    """CORAL colour transfer: ``source`` images recoloured to have each ``target`` image's RGB mean and covariance.

    x' = Σ_t^{1/2} Σ_s^{-1/2} (x − μ_s) + μ_t per image, with Σ the (unbiased) 3×3 RGB covariance + eps·I and
    the matrix powers from ``torch.linalg.eigh``. Shapes (N|1, 3, h, w) and (N, 3, H, W); sizes may differ. The
    result is not clamped. pytorch-AdaIN's ``coral`` standardises each channel first and adds the identity to an
    unnormalised scatter matrix; this version matches mean and covariance exactly instead.
    """
    if source.dim() == 3:
        source = source.unsqueeze(0)
    if target.dim() == 3:
        target = target.unsqueeze(0)
    if source.dim() != 4 or target.dim() != 4 or source.shape[1] != 3 or target.shape[1] != 3:
        raise ValueError(f"coral needs RGB images (N, 3, H, W), got {tuple(source.shape)} and {tuple(target.shape)}")
    n = max(source.shape[0], target.shape[0])
    if source.shape[0] not in (1, n) or target.shape[0] not in (1, n):
        raise ValueError(f"batch sizes {source.shape[0]} and {target.shape[0]} do not broadcast")
    dtype = source.dtype
    # float64: the covariance of a nearly grey image is close to singular, and its inverse square root amplifies
    # rounding errors.
    src = source.double().flatten(2).expand(n, -1, -1)
    tgt = target.double().flatten(2).expand(n, -1, -1)
    if src.shape[-1] < 2 or tgt.shape[-1] < 2:
        raise ValueError("coral needs at least 2 pixels per image")

    def mean_cov(x: Tensor) -> tuple[Tensor, Tensor]:
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        cov = xc @ xc.transpose(-1, -2) / (x.shape[-1] - 1)
        return mu, cov + eps * torch.eye(3, dtype=x.dtype, device=x.device)

    mu_s, cov_s = mean_cov(src)
    mu_t, cov_t = mean_cov(tgt)
    transform = _sym_matrix_power(cov_t, 0.5, eps) @ _sym_matrix_power(cov_s, -0.5, eps)
    out = transform @ (src - mu_s) + mu_t
    shape = (n, 3, *source.shape[-2:])
    return out.reshape(shape).to(dtype)


# ---------------------------------------------------------------------------------------------------------------
# Stylisation


def normalise_weights(weights: Sequence[float] | None, num_styles: int) -> list[float]:
    """Interpolation weights scaled to sum 1; ``None`` = equal weights. Weights must be finite and non-negative,
    one per style, with a positive sum."""
    if num_styles < 1:
        raise ValueError("stylize needs at least one style")
    if weights is None:
        return [1.0 / num_styles] * num_styles
    w = [float(v) for v in weights]
    if len(w) != num_styles:
        raise ValueError(f"got {len(w)} style weights for {num_styles} styles")
    if any(not math.isfinite(v) or v < 0 for v in w):
        raise ValueError(f"style weights must be finite and non-negative, got {w}")
    total = sum(w)
    if total <= 0:
        raise ValueError(f"style weights must sum to more than 0, got {w}")
    return [v / total for v in w]


def _style_list(net: StyleTransferNet, styles: StyleImages | StyleIds) -> list:
    """One entry per style: a 4-D image batch (1 or N) for image-conditioned nets, an id (int or LongTensor) for
    'sain'."""
    if net.conditional:
        if isinstance(styles, (int, Tensor)):
            styles = [styles]
        if not isinstance(styles, Sequence):
            raise TypeError(f"style ids must be ints or LongTensors, got {type(styles).__name__}")
        out = []
        for s in styles:
            if isinstance(s, Tensor) and s.dtype.is_floating_point:
                raise TypeError("a 'sain' network stylises with style ids (ints), not style images")
            if not isinstance(s, (int, Tensor)) or isinstance(s, bool):
                raise TypeError(f"style ids must be ints or LongTensors, got {type(s).__name__}")
            out.append(s)
        return out
    if isinstance(styles, Tensor):
        styles = [styles]
    if not isinstance(styles, Sequence):
        raise TypeError(f"a {net.norm!r} network stylises with style images (float tensors), got {type(styles).__name__}")
    out = []
    for s in styles:
        if not isinstance(s, Tensor) or not s.dtype.is_floating_point:
            raise TypeError(f"a {net.norm!r} network stylises with style images (float tensors), got {type(s).__name__}")
        s = s.unsqueeze(0) if s.dim() == 3 else s
        if s.dim() != 4 or s.shape[1] != 3:
            raise ValueError(f"style images must have shape (3, H, W) or (N, 3, H, W), got {tuple(s.shape)}")
        out.append(s)
    return out


@torch.no_grad()
def stylize(
    net: StyleTransferNet,
    content: Tensor,
    styles: StyleImages | StyleIds,
    weights: Sequence[float] | None = None,
    alpha: float = 1.0,
    preserve_color: bool = False,
) -> Tensor:
    """Stylise ``content`` ((3, H, W) or (N, 3, H, W), in [0, 1]); returns the same shape, clamped to [0, 1].

    ``styles``: one style or a sequence of styles to interpolate with ``weights``. For adain/saadain nets a style
    is an image (3, h, w), (1, 3, h, w) shared by every content image, or (N, 3, h, w) paired with the content
    batch; styles may have different sizes. For 'sain' nets a style is an id (int, or LongTensor of N ids).
    ``alpha`` ∈ [0, 1]: 1 = full style, 0 = reconstruct the content. ``preserve_color``: match each style image's
    colour statistics to its content image first (image-conditioned nets only).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    single = content.dim() == 3
    batch = content.unsqueeze(0) if single else content
    if batch.dim() != 4 or batch.shape[1] != 3:
        raise ValueError(f"content must have shape (3, H, W) or (N, 3, H, W), got {tuple(content.shape)}")
    if preserve_color and net.conditional:
        raise ValueError("preserve_color recolours style images; a 'sain' network takes style ids")
    style_list = _style_list(net, styles)
    w = normalise_weights(weights, len(style_list))
    n, _, h, wd = batch.shape

    content_feat = net.encode(batch)
    mixed = torch.zeros_like(content_feat)
    for weight, style in zip(w, style_list):
        if net.conditional:
            target = net.apply_style(content_feat, style.to(batch.device) if isinstance(style, Tensor) else style)
        else:
            style = style.to(device=batch.device, dtype=batch.dtype)
            if style.shape[0] not in (1, n):
                raise ValueError(f"a style batch must hold 1 or {n} images (one per content), got {style.shape[0]}")
            if preserve_color:
                style = coral(style, batch).clamp(0, 1)
            # Statistics rather than feature maps: styles of any size then mix with content of any size.
            target = net.apply_style(content_feat, sabn.calc_mean_std(net.encode(style)))
        mixed += weight * target
    feat = alpha * mixed + (1.0 - alpha) * content_feat
    out = net.decode(feat)[..., :h, :wd].clamp(0, 1)
    return out[0] if single else out


if __name__ == "__main__":
    from tasks.nst.stylize_cli import main

    raise SystemExit(main())
