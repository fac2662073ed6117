"""The FID Inception built here is pytorch-fid's (same architecture and forward), its IS logits are pool3·Wᵀ
without bias, and a recalibrated stand-in separates image sets and is labelled wherever it is used."""

from __future__ import annotations

import pytest
import pytorch_fid.inception as pf
import torch

from tasks.common.errors import UserError
from tasks.gan.inception import (
    FID_WEIGHTS_NAME,
    InceptionUnavailable,
    hub_cache_path,
    load_inception,
    locate_weights,
    read_weights,
    save_stand_in,
)
from tasks.gan.metrics import frechet_distance


@pytest.fixture(scope="module")
def extractor(stand_in_inception):
    model, weights = load_inception(str(stand_in_inception), False, torch.device("cpu"))
    return model, weights


@pytest.fixture(scope="module")
def image_sets():
    g = torch.Generator().manual_seed(1)
    smooth = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4, generator=g), size=32, mode="bilinear")
    noise = torch.rand(4, 3, 32, 32, generator=g)
    return smooth, noise


def test_features_equal_pytorch_fids_inception_v3(extractor, image_sets, monkeypatch):
    model, weights = extractor
    # pytorch-fid downloads its weights inside fid_inception_v3(): hand it the stand-in's instead
    monkeypatch.setattr(pf, "load_state_dict_from_url", lambda *a, **k: weights.state_dict)
    reference = pf.InceptionV3([3]).eval()
    x = image_sets[0][:2]
    with torch.no_grad():
        theirs = reference(x)[0].flatten(1)
        ours, logits = model(x)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    fc = model.net.fc
    torch.testing.assert_close(logits, fc(ours) - fc.bias, rtol=1e-4, atol=1e-4)
    assert ours.shape == (2, 2048) and logits.shape == (2, 1008)


def test_recalibrated_stand_in_separates_image_sets(extractor, image_sets):
    model, _ = extractor
    smooth, noise = image_sets
    with torch.no_grad():
        fa, fb = model(smooth)[0].double(), model(noise)[0].double()
    assert fa.std(0).mean() > 1e-3  # not collapsed (an uncalibrated random Inception gives ~1e-8)

    def stats(f):
        return f.mean(0), torch.cov(f.T)

    same = frechet_distance(*stats(fa), *stats(fa))
    different = frechet_distance(*stats(fa), *stats(fb))
    assert abs(same) < 1e-6 * different and different > 1e-3


def test_stand_in_is_labelled_and_never_takes_the_real_name(stand_in_inception, tmp_path):
    weights = read_weights(stand_in_inception)
    assert weights.stand_in and "untrained" in weights.stand_in and "recalibrated" in weights.stand_in
    assert "stand-in" in weights.description and weights.tag.startswith("standin-")
    with pytest.raises(ValueError, match="must not be stored as"):
        save_stand_in(tmp_path / FID_WEIGHTS_NAME)


def test_where_the_weights_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert hub_cache_path() == tmp_path / "torch" / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    with pytest.raises(InceptionUnavailable, match="no Inception weights: set eval.inception.weights"):
        locate_weights(None, download=False)
    with pytest.raises(UserError, match="Inception weights not found: .*missing.pth"):
        locate_weights(str(tmp_path / "missing.pth"), download=False)
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(UserError, match="not a state dict of pytorch-fid's FID Inception"):
        read_weights(bad)
