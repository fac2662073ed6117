"""BigGAN's class-conditional BN (x̂ (1 + gain[y]) + bias[y]), its SaBN variant, the mapping to ``sabn``'s layout,
and the BigGAN-32 G/D wiring and N02 init."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sabn
from tasks.gan.models import (
    BigGANConditionalBatchNorm2d,
    BigGANDiscriminator32,
    BigGANGenerator32,
    init_weights,
)

C, K, EPS = 6, 4, 1e-5


def v(t):
    return t.view(1, -1, 1, 1) if t.dim() == 1 else t.view(t.shape[0], -1, 1, 1)


def randomised(sandwich: bool) -> BigGANConditionalBatchNorm2d:
    torch.manual_seed(0)
    layer = BigGANConditionalBatchNorm2d(C, K, sandwich=sandwich)
    with torch.no_grad():
        layer.gain.weight.normal_(0, 0.5)
        layer.bias.weight.normal_(0, 0.5)
        if sandwich:
            layer.bn.weight.normal_(1, 0.5)
            layer.bn.bias.normal_(0, 0.5)
    return layer


def expected(layer, x, y, mean, var):
    xhat = (x - v(mean)) / torch.sqrt(v(var) + EPS)
    if layer.sandwich:
        xhat = v(layer.bn.weight) * xhat + v(layer.bn.bias)
    return xhat * (1 + v(layer.gain.weight[y])) + v(layer.bias.weight[y])


@pytest.mark.parametrize("sandwich", [False, True])
def test_train_mode_uses_batch_statistics_and_the_one_plus_gain_formula(sandwich):
    layer = randomised(sandwich)
    x = torch.randn(8, C, 3, 3) * 2 + 1
    y = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(layer(x, y), expected(layer, x, y, mean, var))
    # running statistics: momentum 0.1, unbiased variance, as BigGAN's F.batch_norm buffers
    torch.testing.assert_close(layer.bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(layer.bn.running_var, 0.9 + 0.1 * x.var(dim=(0, 2, 3), unbiased=True))


@pytest.mark.parametrize("sandwich", [False, True])
def test_eval_mode_uses_running_statistics_and_int_conditions_match_tensor_ones(sandwich):
    layer = randomised(sandwich)
    layer(torch.randn(8, C, 3, 3) * 3, torch.randint(0, K, (8,)))
    layer.eval()
    x = torch.randn(5, C, 2, 2)
    y = torch.tensor([3, 0, 1, 1, 2])
    out = layer(x, y)
    torch.testing.assert_close(out, expected(layer, x, y, layer.bn.running_mean, layer.bn.running_var))
    torch.testing.assert_close(layer(x, 2), layer(x, torch.full((5,), 2)))


@pytest.mark.parametrize("sandwich", [False, True])
def test_to_sabn_is_the_same_function_in_sabn_layout(sandwich):
    layer = randomised(sandwich)
    layer(torch.randn(8, C, 3, 3), torch.randint(0, K, (8,)))  # non-trivial running statistics
    converted = layer.to_sabn()
    assert type(converted) is (sabn.SandwichBatchNorm2d if sandwich else sabn.CategoricalConditionalBatchNorm2d)
    # embed = [1 + gain | bias]
    torch.testing.assert_close(converted.embed.weight[:, :C], 1 + layer.gain.weight)
    torch.testing.assert_close(converted.embed.weight[:, C:], layer.bias.weight)
    x, y = torch.randn(6, C, 3, 3), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(converted(x, y), layer(x, y))  # train mode: both update their statistics
    layer.eval()
    converted.eval()
    torch.testing.assert_close(converted(x, y), layer(x, y))
    if sandwich:  # and then sabn.fold turns it into an equivalent CCBN
        folded = sabn.fold(torch.nn.Sequential(converted))[0]
        torch.testing.assert_close(folded(x, y), layer(x, y))


def test_sandwich_variant_adds_only_the_shared_affine():
    plain = dict(BigGANConditionalBatchNorm2d(C, K).named_parameters())
    sandwich = dict(BigGANConditionalBatchNorm2d(C, K, sandwich=True).named_parameters())
    assert set(sandwich) - set(plain) == {"bn.weight", "bn.bias"}
    # With the shared affine at the identity the two variants are the same function.
    a, b = BigGANConditionalBatchNorm2d(C, K), BigGANConditionalBatchNorm2d(C, K, sandwich=True)
    b.load_state_dict({**a.state_dict(), "bn.weight": torch.ones(C), "bn.bias": torch.zeros(C)})
    x, y = torch.randn(4, C, 2, 2), torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(a(x, y), b(x, y))


def test_biggan_generator_uses_biggan_ccbn_and_sn_everywhere_but_the_class_embeddings():
    G = BigGANGenerator32(n_classes=K, norm="sabn", gf_dim=2)
    assert isinstance(G.blocks[0].bn1, BigGANConditionalBatchNorm2d) and G.blocks[0].bn1.sandwich
    keys = G.state_dict().keys()
    assert {"linear.weight_orig", "blocks.0.conv1.weight_orig", "blocks.2.conv_sc.weight_orig",
            "output_layer.2.weight_orig", "output_layer.0.running_mean"} <= set(keys)
    assert "blocks.0.bn1.gain.weight" in keys and "blocks.0.bn1.gain.weight_orig" not in keys
    ccbn = BigGANGenerator32(n_classes=K, norm="ccbn", gf_dim=2)
    assert "blocks.0.bn1.bn.weight" not in ccbn.state_dict()


def test_biggan_discriminator_shortcut_order_and_projection():
    torch.manual_seed(0)
    D = BigGANDiscriminator32(n_classes=K, df_dim=2).eval()
    b0, b1 = D.blocks[0], D.blocks[1]
    x = torch.randn(2, 3, 32, 32)
    D(x, torch.tensor([0, 1]))
    w0 = b0.conv_sc.weight  # the eval-mode SN weight, recomputed from the stored u, v by every forward
    # first block: pool then 1×1 conv; pre-activated blocks: 1×1 conv then pool (the same for a linear 1×1 conv).
    torch.testing.assert_close(b0._shortcut(x), F.conv2d(F.avg_pool2d(x, 2), w0, b0.conv_sc.bias))
    h = torch.randn(2, 8, 16, 16)
    torch.testing.assert_close(b1._shortcut(h), F.avg_pool2d(b1.conv_sc(h), 2))
    assert not D.blocks[2].learnable_sc and not D.blocks[3].learnable_sc
    # projection: D(x, y) − D(x, y') = ⟨embed(y) − embed(y'), h⟩ with h the pooled features
    h = x
    for block in D.blocks:
        h = block(h)
    h = F.relu(h).sum(dim=(2, 3))
    emb = D.embed.weight  # eval-mode SN embedding of the last forward
    diff = D(x, torch.tensor([0, 0])) - D(x, torch.tensor([3, 3]))
    torch.testing.assert_close(diff, ((emb[0] - emb[3]) * h).sum(1))


def test_n02_init_draws_every_conv_linear_and_embedding_weight_from_n0_002():
    torch.manual_seed(0)
    G, D = BigGANGenerator32(), BigGANDiscriminator32()
    init_weights(G, "N02")
    init_weights(D, "N02")
    for w in (G.linear.weight_orig, G.blocks[1].conv1.weight_orig, D.blocks[2].conv2.weight_orig,
              G.blocks[0].bn1.gain.weight, G.blocks[0].bn1.bias.weight):
        assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert abs(D.embed.weight_orig.std().item() - 0.02) < 0.004  # 10 × 256 entries
    # plain BN and biases untouched (BigGAN's bn starts at gain 1, bias 0)
    assert torch.equal(G.output_layer[0].weight, torch.ones(256))
    assert torch.equal(G.output_layer[0].bias, torch.zeros(256))
