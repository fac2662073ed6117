"""The official SNGAN/AutoGAN init (xavier_uniform convs, N(1, 0.02) BN scales) reproduced by init_weights."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.gan.models import AutoGANGenerator32, SNGANDiscriminator32, SNGANGenerator32, init_weights


def close(value: float, target: float, rel: float) -> bool:
    return abs(value - target) <= rel * abs(target)


@pytest.fixture(scope="module")
def sngan():
    torch.manual_seed(0)
    return init_weights(SNGANGenerator32(norm="sabn")), init_weights(SNGANDiscriminator32())


def test_convs_are_xavier_uniform_gain_1(sngan):
    G, D = sngan
    for w in (G.block2.c1.weight, G.block4.c_sc.weight, D.block2.c1.weight_orig):
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert w.abs().max() <= bound
        assert close(w.std().item(), bound / math.sqrt(3), 0.02)


def test_bn_scales_and_the_sandwich_affine_are_n1_002_with_zero_shifts(sngan):
    G, _ = sngan
    b = G.block3.b1
    for scales in (G.b5.weight, b.bn.weight, b.embed.weight[:, :256]):
        assert abs(scales.mean().item() - 1) < 0.005 and close(scales.std().item(), 0.02, 0.25)
    for shifts in (G.b5.bias, b.bn.bias, b.embed.weight[:, 256:]):
        assert torch.equal(shifts, torch.zeros_like(shifts))


def test_linear_and_embedding_keep_pytorch_defaults(sngan):
    G, D = sngan
    assert G.l1.weight.abs().max() <= 1 / math.sqrt(128)  # kaiming-uniform default bound
    assert close(D.l_y.weight_orig.std().item(), 1.0, 0.1)  # nn.Embedding default N(0, 1)


def test_norm_init_std_is_honoured_and_other_schemes_work():
    torch.manual_seed(0)
    G = init_weights(AutoGANGenerator32(n_classes=3, gf_dim=8, norm_kwargs={"init_std": 0.0, "shared_init_std": 0.0}))
    assert torch.equal(G.cell1.n1.embed.weight[:, :8], torch.ones(3, 8))
    assert torch.equal(G.cell1.n1.bn.weight, torch.ones(8))
    assert abs(G.to_rgb[0].weight.std().item() - 0.02) < 0.02  # plain BN still N(1, 0.02)
    w = init_weights(SNGANGenerator32(n_classes=3, gf_dim=16), "orth").block2.c1.weight.reshape(16, -1)
    torch.testing.assert_close(w @ w.t(), torch.eye(16), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="unknown init scheme 'kaiming'; valid: xavier_uniform, normal, orth, N02"):
        init_weights(G, "kaiming")
