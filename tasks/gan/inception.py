"""The TF-FID Inception network of pytorch-fid (``pt_inception-2015-12-05``) as one feature extractor: pool3 features
(2048) for FID and the 1008-way logits ``pool3 · fc.weightᵀ`` (no bias, as the TF reference and torch-fidelity)
for the Inception Score.

Where the weights come from, in order: ``eval.inception.weights`` (or ``$SABN_INCEPTION_WEIGHTS``), a local file;
the torch hub cache (``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``, where pytorch-fid keeps
it); pytorch-fid's own download URL into that cache when ``eval.inception.download`` is true and the machine is
online. pytorch-fid 0.3.0 itself has no weights-path option, so the architecture is built here exactly as its
``fid_inception_v3()`` builds it, minus the download, and the forward pass is its ``InceptionV3`` up to the final
average pool (bilinear resize to 299 with ``align_corners=False``, then ``2x − 1``).

Tests use a *stand-in*: the same architecture with random weights whose BatchNorm statistics are recalibrated on a
fixed batch (without that, pool3 features collapse and every FID is ≈ 0). A stand-in is saved as
``{"stand_in": "<what it is>", "state_dict": ...}`` under a name of its own, and every number computed with it
carries that text as its ``stand_in`` label.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from pytorch_fid.inception import (
    FID_WEIGHTS_URL,
    FIDInceptionA,
    FIDInceptionC,
    FIDInceptionE_1,
    FIDInceptionE_2,
)
from torch import Tensor, nn

from tasks.common.checkpoint import load_file
from tasks.common.errors import UserError

log = logging.getLogger(__name__)

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
NUM_LOGITS = 1008
DOWNLOAD_TIMEOUT_S = 60


class InceptionUnavailable(UserError):
    """The Inception weights are neither configured, cached nor downloadable (IS/FID are skipped)."""


def build_fid_inception() -> torchvision.models.Inception3:
    """pytorch-fid's ``fid_inception_v3()`` architecture (TF pooling patches, 1008 classes) with untrained weights."""
    net = torchvision.models.inception_v3(num_classes=NUM_LOGITS, aux_logits=False, weights=None, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class InceptionFeatures(nn.Module):
    """Images in [0, 1] → (pool3 features (N, 2048), IS logits (N, 1008)), as pytorch-fid's ``InceptionV3``."""

    def __init__(self, net: torchvision.models.Inception3) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def pool3(self, x: Tensor) -> Tensor:
        n = self.net
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                      n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b,
                      n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        pool = self.pool3(images)
        return pool, pool @ self.net.fc.weight.T


@dataclass
class InceptionWeights:
    """A loaded weights file and how it is described next to every number computed with it."""

    state_dict: dict[str, Tensor]
    path: Path
    sha256: str
    stand_in: str | None

    @property
    def description(self) -> str:
        what = "stand-in Inception" if self.stand_in else "pytorch-fid TF-FID Inception pt_inception-2015-12-05"
        return f"{what} ({self.path.name}, sha256 {self.sha256[:16]})"

    @property
    def tag(self) -> str:
        """Short name for cache files: which weights computed the features."""
        return f"{'standin' if self.stand_in else 'pt_inception-2015-12-05'}-{self.sha256[:8]}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hub_cache_path() -> Path:
    """Where pytorch-fid's download puts the weights (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME


def _download() -> Path:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a firewalled machine must not hang here
    try:
        torch.hub.load_state_dict_from_url(FID_WEIGHTS_URL, progress=False, map_location="cpu")
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InceptionUnavailable(f"Inception weights could not be downloaded ({reason}); set "
                                   "eval.inception.weights=<path to pt_inception-2015-12-05-6726825d.pth>") from e
    finally:
        socket.setdefaulttimeout(previous)
    return hub_cache_path()


def locate_weights(weights: str | None, download: bool) -> Path:
    """The weights file to use (configured path, torch hub cache, or a fresh download)."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"Inception weights not found: {path} (eval.inception.weights / $SABN_INCEPTION_WEIGHTS)")
        return path
    cached = hub_cache_path()
    if cached.is_file():
        return cached
    if download:
        return _download()
    raise InceptionUnavailable(
        f"no Inception weights: set eval.inception.weights (or $SABN_INCEPTION_WEIGHTS) to {FID_WEIGHTS_NAME}, "
        f"put it in {cached.parent}, or allow eval.inception.download=true where online"
    )


_LOADED: dict[tuple[str, float], InceptionWeights] = {}


def read_weights(path: Path) -> InceptionWeights:
    """Read a weights file: pytorch-fid's plain state dict, or a stand-in ``{"stand_in", "state_dict"}``."""
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _LOADED:
        obj: Any = load_file(path, "Inception weights")
        stand_in = None
        if isinstance(obj, dict) and "state_dict" in obj and "stand_in" in obj:
            stand_in, obj = str(obj["stand_in"]), obj["state_dict"]
        if not isinstance(obj, dict) or "fc.weight" not in obj:
            raise UserError(f"{path} is not a state dict of pytorch-fid's FID Inception (no fc.weight)")
        _LOADED[key] = InceptionWeights(obj, path, _sha256(path), stand_in)
    return _LOADED[key]


def load_inception(weights: str | None, download: bool, device: torch.device) -> tuple[InceptionFeatures,
                                                                                       InceptionWeights]:
    """The feature extractor on ``device`` and the weights it was built from."""
    info = read_weights(locate_weights(weights, download))
    net = build_fid_inception()
    try:
        net.load_state_dict(info.state_dict, strict=True)
    except RuntimeError as e:
        raise UserError(f"{info.path} does not fit pytorch-fid's FID Inception: {str(e).splitlines()[0][:200]}") from e
    return InceptionFeatures(net).to(device), info


@torch.no_grad()
def recalibrated_stand_in(seed: int = 0, batch: int = 8) -> dict[str, Tensor]:
    """Random weights of the FID Inception with BatchNorm statistics recalibrated on one fixed batch of noise
    images (reset, cumulative average, one train-mode forward, eval): a stand-in whose features separate images."""
    torch.manual_seed(seed)
    net = build_fid_inception()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    images = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    extractor = InceptionFeatures(net)
    net.train()
    extractor.pool3(images)
    net.eval()
    return net.state_dict()


def save_stand_in(path: str | os.PathLike, seed: int = 0, batch: int = 8) -> Path:
    """Write a labelled stand-in weights file (never under the real file name)."""
    path = Path(path)
    if path.name == FID_WEIGHTS_NAME:
        raise ValueError(f"a stand-in must not be stored as {FID_WEIGHTS_NAME}")
    text = f"untrained FID Inception (seed {seed}) with BatchNorm statistics recalibrated on {batch} noise images"
    from tasks.common.checkpoint import atomic_torch_save

    atomic_torch_save({"stand_in": text, "state_dict": recalibrated_stand_in(seed, batch)}, path)
    return path
