"""Shared fixtures of the style-transfer tests: a seeded stand-in encoder, small image batches and the demo
folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tasks.nst.demo_data import ensure_demo_folders
from tasks.nst.networks import Decoder, StyleTransferNet, VGGEncoder, load_vgg


@pytest.fixture(scope="session")
def encoder() -> VGGEncoder:
    """The stand-in encoder (seed 0); frozen, so sharing it between tests is safe."""
    enc, _ = load_vgg(None, seed=0)
    return enc


@pytest.fixture
def make_net(encoder):
    """``make_net(norm, num_styles=None, seed=0)``: a net whose decoder is initialised from ``seed``."""

    def make(norm: str = "adain", num_styles: int | None = None, seed: int = 0, **kwargs) -> StyleTransferNet:
        torch.manual_seed(seed)
        return StyleTransferNet(encoder, Decoder(), norm=norm, num_styles=num_styles, **kwargs)

    return make


@pytest.fixture
def images():
    """``images(n, h, w, seed)``: smooth random RGB images in [0, 1] (upsampled noise, so they have structure)."""

    def make(n: int = 2, h: int = 32, w: int = 32, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, 3, max(h // 4, 2), max(w // 4, 2), generator=g)
        fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        return (0.7 * fine + 0.3 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1)

    return make


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo folders (scikit-image photos and textures, generated patterns), written once per session."""
    return ensure_demo_folders(tmp_path_factory.mktemp("nst-demo") / "skimage")
