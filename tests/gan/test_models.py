"""Every GAN model × norm: output shapes, one real D and G hinge step at tiny width, official parameter counts,
the registry, and the errors a misconfigured model gives."""

from __future__ import annotations

import pytest
import torch

import sabn
from tasks.gan.losses import d_hinge_loss, g_hinge_loss
from tasks.gan.models import (
    MODELS,
    AutoGANGenerator32,
    SNGANDiscriminator32,
    SNGANGenerator32,
    build_gan,
    model_names,
)

# Tiny widths per model (BigGAN's and SNGAN-128's widths are multiplied inside the model).
TINY = {
    "sngan32": {"gf_dim": 16, "df_dim": 16},
    "autogan32": {"gf_dim": 16, "df_dim": 16},
    "biggan32": {"gf_dim": 4, "df_dim": 4},
    # bottom width 1: all five up-blocks and six D blocks, at 32×32 to keep CPU time low (128×128: see below)
    "sngan128": {"gf_dim": 4, "df_dim": 4, "bottom_width": 1},
}
RESOLUTION = {"sngan32": 32, "autogan32": 32, "biggan32": 32, "sngan128": 32}
CASES = [(name, norm) for name in sorted(MODELS) for norm in ("ccbn", "sabn", "bn")] + [("autogan32", "none")]


def test_norm_none_drops_the_block_norms_but_keeps_the_output_bn():
    G = SNGANGenerator32(n_classes=0, norm="none", gf_dim=8)
    keys = G.state_dict().keys()
    assert not any(".b1." in k or ".b2." in k for k in keys) and "b5.running_mean" in keys
    assert G(torch.randn(2, 128)).shape == (2, 3, 32, 32)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> list[str]:
    return [k for k, p in model.named_parameters() if not torch.equal(p.detach(), before[k])]


def adam(model: torch.nn.Module) -> torch.optim.Adam:
    # Float betas: torch rejects an int 0 (official quirk #16).
    return torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.0, 0.9))


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_one_d_step_and_one_g_step_update_every_parameter(name, norm):
    torch.manual_seed(0)
    # bn/none: a fully unconditional GAN (no projection in D).
    k = 0 if norm in ("bn", "none") else 5
    G, D = build_gan(name, norm=norm, n_classes=k, **TINY[name])
    opt_g, opt_d = adam(G), adam(D)
    n, res = 4, RESOLUTION[name]
    real = torch.rand(n, 3, res, res) * 2 - 1
    y_real = torch.randint(0, max(k, 1), (n,)) if k else None
    y_fake = torch.randint(0, max(k, 1), (n,)) if k else None

    fake = G(torch.randn(n, 128), y_fake)
    assert fake.shape == (n, 3, res, res)
    assert fake.abs().max() <= 1.0

    d_before, g_before = snapshot(D), snapshot(G)
    d_loss = d_hinge_loss(D(real, y_real), D(fake.detach(), y_fake))
    assert d_loss.shape == () and torch.isfinite(d_loss)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    assert changed(D, d_before) == list(d_before), "every D parameter moves in a D step"
    assert changed(G, g_before) == [], "the D step must not touch G"

    d_before = snapshot(D)
    logits = D(G(torch.randn(n, 128), y_fake), y_fake)
    assert logits.shape == (n,)
    g_loss = g_hinge_loss(logits)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert changed(G, g_before) == list(g_before), "every G parameter moves in a G step"
    assert changed(D, d_before) == []


# Official numbers: paper.md §2.1 (SNGAN/AutoGAN/SNGAN-128, [ran]) and reference_repos.md §1.2/§1.4/§2.1 (BigGAN,
# original AutoGAN). D counts do not depend on the G norm.
OFFICIAL_COUNTS = {
    ("sngan32", "ccbn"): (4_304_387, 1_055_104),
    ("sngan32", "sabn"): (4_307_459, 1_055_104),
    ("autogan32", "sabn"): (4_439_043, 1_055_104),
    ("autogan32", "ccbn"): (4_435_971, 1_055_104),
    ("autogan32", "none"): (4_405_251, 1_055_104),
    ("sngan128", "sabn"): (10_612_099, 12_311_296),
    ("biggan32", "ccbn"): (4_304_387, 4_207_361),
    # the sandwich affine adds 2C per conditional layer: 6 layers × 2 × 256
    ("biggan32", "sabn"): (4_304_387 + 6 * 2 * 256, 4_207_361),
}


@pytest.mark.parametrize(("name", "norm"), sorted(OFFICIAL_COUNTS))
def test_full_width_parameter_counts_match_the_official_models(name, norm):
    spec = MODELS[name]
    kw = {**spec.defaults, "norm": norm}
    G = spec.generator(**{k: v for k, v in kw.items() if k != "df_dim"})
    D = spec.discriminator(n_classes=kw["n_classes"], df_dim=kw["df_dim"])
    assert (n_params(G), n_params(D)) == OFFICIAL_COUNTS[(name, norm)]


def test_registry_defaults_are_the_paper_configurations():
    assert model_names() == ["autogan32", "biggan32", "sngan128", "sngan32"]
    assert MODELS["sngan32"].defaults["norm"] == "sabn" and MODELS["biggan32"].init == "N02"
    assert MODELS["autogan32"].discriminator is SNGANDiscriminator32  # the official code reuses SNGAN's D
    G, D = build_gan("sngan32", gf_dim=8, df_dim=8, norm="ccbn", norm_kwargs={"init_std": 0.0})
    assert isinstance(G.block2.b1, sabn.CategoricalConditionalBatchNorm2d) and G.block2.b1.num_conditions == 10
    assert torch.equal(G.block2.b1.embed.weight[:, :8], torch.ones(10, 8))  # init_std reached the layer
    assert D.l_y.weight_orig.shape == (10, 8)


def test_registry_rejects_unknown_names_and_arguments():
    with pytest.raises(ValueError, match=r"unknown GAN model 'dcgan'.*sngan32"):
        build_gan("dcgan")
    with pytest.raises(ValueError, match=r"unknown model argument.*g_ch"):
        build_gan("sngan32", g_ch=3)
    with pytest.raises(ValueError, match="unknown init scheme"):
        build_gan("sngan32", gf_dim=8, df_dim=8, init="kaiming")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": "batchnorm"}, "unknown norm 'batchnorm'"),
        ({"norm": "adain"}, "style feature map"),
        ({"norm": "sabn", "n_classes": 0}, "n_classes must be >= 1"),
    ],
)
def test_bad_norm_configurations_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SNGANGenerator32(gf_dim=8, **kwargs)


def test_biggan_rejects_norms_it_does_not_implement():
    with pytest.raises(ValueError, match="BigGAN supports norm"):
        build_gan("biggan32", norm="auxbn", gf_dim=2, df_dim=2)
    G, _ = build_gan("biggan32", norm="none", gf_dim=2, df_dim=2)
    assert G.blocks[0].bn1 is None


def test_conditional_discriminator_needs_labels_and_latents_are_checked():
    D = SNGANDiscriminator32(n_classes=3, df_dim=8)
    with pytest.raises(ValueError, match="pass the labels y"):
        D(torch.zeros(2, 3, 32, 32))
    G = SNGANGenerator32(n_classes=3, gf_dim=8)
    with pytest.raises(ValueError, match=r"expected z of shape \(N, 128\)"):
        G(torch.zeros(2, 64), torch.zeros(2, dtype=torch.long))


def test_unconditional_discriminator_ignores_labels():
    D = SNGANDiscriminator32(n_classes=0, df_dim=8).eval()
    x = torch.randn(3, 3, 32, 32)
    assert D.l_y is None and "l_y.weight_orig" not in D.state_dict()
    torch.testing.assert_close(D(x), D(x, torch.tensor([0, 1, 2])))


def test_generator_condition_can_be_an_int_or_set_with_sabn_conditioned():
    torch.manual_seed(0)
    G = SNGANGenerator32(n_classes=4, gf_dim=8).eval()
    z = torch.randn(3, 128)
    ref = G(z, torch.full((3,), 2))
    torch.testing.assert_close(G(z, 2), ref)
    with sabn.conditioned(G, torch.full((3,), 2)):
        torch.testing.assert_close(G(z), ref)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_follow_the_input_dtype(name):
    G, D = build_gan(name, **TINY[name], n_classes=3)
    G, D = G.double(), D.double()
    y = torch.tensor([0, 2])
    x = G(torch.randn(2, 128, dtype=torch.float64), y)
    assert x.dtype == torch.float64
    assert D(x, y).dtype == torch.float64


@torch.no_grad()
def test_sngan128_generates_128px_images_at_its_default_bottom_width():
    G, D = build_gan("sngan128", gf_dim=2, df_dim=2, n_classes=143)
    y = torch.tensor([142])
    x = G(torch.randn(1, 128), y)
    assert x.shape == (1, 3, 128, 128) and G.resolution == 128
    assert D(x, y).shape == (1,)


def test_autogan_inplace_skip_flag_changes_only_the_skip_features():
    torch.manual_seed(0)
    a = AutoGANGenerator32(n_classes=3, gf_dim=8).eval()
    b = AutoGANGenerator32(n_classes=3, gf_dim=8, inplace_skip=False).eval()
    b.load_state_dict(a.state_dict())
    z, y = torch.randn(2, 128), torch.tensor([0, 1])
    assert not torch.allclose(a(z, y), b(z, y))
    h = a.l1(z).view(2, 8, 4, 4)
    s1_a, h1_a = a.cell1(h, (), y)
    s1_b, h1_b = b.cell1(h, (), y)  # cell1 has no skip-ins: identical
    torch.testing.assert_close(s1_a, s1_b)
    torch.testing.assert_close(h1_a, h1_b)
