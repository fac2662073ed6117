"""Style-transfer networks: official layouts, weight loading, the stand-in encoder, the norms at relu4_1 and the
training losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import sabn
from tasks.common import errors
from tasks.nst.networks import (
    ENCODER_LEN,
    CheckpointError,
    Decoder,
    EncoderInfo,
    StyleTransferNet,
    VGGEncoder,
    build_style_net,
    load_decoder,
    load_official_checkpoint,
    load_saadain,
    load_vgg,
    style_statistics_loss,
    vgg_normalised_full,
)

# ../shared/reference/official_state_dicts.md, "NST vgg" (all 53 children) and "NST decoder".
OFFICIAL_VGG = {
    "0": (3, 3, 1, 1), "2": (64, 3, 3, 3), "5": (64, 64, 3, 3), "9": (128, 64, 3, 3), "12": (128, 128, 3, 3),
    "16": (256, 128, 3, 3), "19": (256, 256, 3, 3), "22": (256, 256, 3, 3), "25": (256, 256, 3, 3),
    "29": (512, 256, 3, 3), "32": (512, 512, 3, 3), "35": (512, 512, 3, 3), "38": (512, 512, 3, 3),
    "42": (512, 512, 3, 3), "45": (512, 512, 3, 3), "48": (512, 512, 3, 3), "51": (512, 512, 3, 3),
}
OFFICIAL_DECODER = {
    "1": (256, 512, 3, 3), "5": (256, 256, 3, 3), "8": (256, 256, 3, 3), "11": (256, 256, 3, 3),
    "14": (128, 256, 3, 3), "18": (128, 128, 3, 3), "21": (64, 128, 3, 3), "25": (64, 64, 3, 3),
    "28": (3, 64, 3, 3),
}


def layout(listing: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    out = {}
    for idx, shape in listing.items():
        out[f"{idx}.weight"] = shape
        out[f"{idx}.bias"] = shape[:1]
    return out


def shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def random_state(module, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in module.state_dict().items()}


def official_vgg_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with all 34 entries of the official 53-child file: random values for the encoder's children,
    stride-0 zeros for relu4_2…relu5_4 (right shapes, a few bytes on disk; the loader only checks their shapes)."""
    with torch.device("meta"):
        full = vgg_normalised_full().state_dict()
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(v.shape, generator=g) * 0.05 if int(k.split(".")[0]) < ENCODER_LEN
        else torch.zeros(1).expand(v.shape)
        for k, v in full.items()
    }


# -- layouts --------------------------------------------------------------------------------------------------


def test_full_vgg_layout_is_the_official_listing():
    with torch.device("meta"):
        full = vgg_normalised_full()
    assert len(full) == 53
    assert shapes(full) == layout(OFFICIAL_VGG)
    assert sum(p.numel() for p in full.parameters()) == 20024396


def test_encoder_is_the_official_listing_truncated_to_relu4_1(encoder):
    expected = {k: v for k, v in layout(OFFICIAL_VGG).items() if int(k.split(".")[0]) < ENCODER_LEN}
    assert len(encoder) == 31 and len(expected) == 20
    assert shapes(encoder) == expected
    assert isinstance(encoder[30], torch.nn.ReLU)
    pools = [m for m in encoder if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.ceil_mode for p in pools)
    assert all(isinstance(encoder[i - 1], torch.nn.ReflectionPad2d) for i in (2, 5, 9, 12, 16, 19, 22, 25, 29))
    assert not any(p.requires_grad for p in encoder.parameters())


def test_decoder_layout_is_the_official_listing():
    dec = Decoder()
    assert shapes(dec) == layout(OFFICIAL_DECODER)
    assert sum(p.numel() for p in dec.parameters()) == 3505219
    ups = [m for m in dec if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == 3 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    assert not isinstance(dec[-1], torch.nn.ReLU)


def test_features_are_the_slices_outputs(encoder, images):
    x = images(1, 40, 48)
    feats = encoder.features(x)
    h = x
    for f, part in zip(feats, encoder.slices()):
        h = part(h)
        torch.testing.assert_close(f, h)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    torch.testing.assert_close(encoder(x), feats[-1])


@pytest.mark.parametrize(("h", "w"), [(32, 32), (64, 48), (37, 50), (9, 9)])
def test_decoder_output_is_eight_times_the_relu4_1_map(encoder, h, w):
    feat = encoder(torch.rand(2, 3, h, w))
    assert feat.shape == (2, 512, math.ceil(h / 8), math.ceil(w / 8))
    assert Decoder()(feat).shape == (2, 3, 8 * math.ceil(h / 8), 8 * math.ceil(w / 8))


def test_too_small_images_are_refused_with_the_minimum(encoder):
    with pytest.raises(ValueError, match="at least 9 px"):
        encoder(torch.rand(1, 3, 8, 32))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        encoder(torch.rand(1, 1, 32, 32))


# -- the stand-in encoder -------------------------------------------------------------------------------------


def test_no_weights_gives_a_labelled_seeded_stand_in():
    enc_a, info = load_vgg(None, seed=3)
    enc_b, _ = load_vgg(None, seed=3)
    enc_c, _ = load_vgg(None, seed=4)
    assert info.stand_in and info.seed == 3 and info.path is None
    assert "stand-in" in info.label and "seed 3" in info.label and "not vgg_normalised.pth" in info.label
    torch.testing.assert_close(enc_a.state_dict(), enc_b.state_dict())
    assert not torch.equal(enc_a[2].weight, enc_c[2].weight)
    net = build_style_net("adain", vgg_path=None, seed=3)
    assert net.encoder_info.stand_in and "stand-in" in repr(net)


def test_stand_in_features_are_neither_dead_nor_exploding(encoder, images):
    x = images(4, 48, 48, seed=1)
    for f in encoder.features(x):
        rms = f.pow(2).mean().sqrt().item()
        assert 0.1 < rms < 5.0
        _, std = sabn.calc_mean_std(f)
        # Every channel varies over space in at least one image: no dead channels.
        assert (std.flatten(1).amax(0) > 1e-2).all()
    # Statistics depend on the image: different images give different relu4_1 std profiles.
    _, std = sabn.calc_mean_std(encoder(x))
    prof = F.normalize(std.flatten(1) - std.flatten(1).mean(1, keepdim=True), dim=1)
    off_diag = (prof @ prof.T)[~torch.eye(4, dtype=torch.bool)]
    assert off_diag.mean() < 0.8


# -- loading weights ------------------------------------------------------------------------------------------


def test_official_53_layer_file_loads_and_is_truncated(tmp_path):
    state = official_vgg_state(seed=1)
    assert len(state) == 34
    path = tmp_path / "vgg_normalised.pth"
    torch.save(state, path)
    enc, info = load_vgg(path)
    assert not info.stand_in and info.path == str(path) and "vgg_normalised" in info.label
    assert len(enc) == 31
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(v, state[k])
    # A file already cut to the encoder's 31 children loads as well.
    path31 = tmp_path / "vgg31.pth"
    torch.save({k: v for k, v in state.items() if k in enc.state_dict()}, path31)
    enc31, _ = load_vgg(path31)
    torch.testing.assert_close(enc31.state_dict(), enc.state_dict())


def test_vgg_loader_errors_name_the_fix(tmp_path):
    with pytest.raises(CheckpointError, match=r"not found.*vgg_normalised\.pth.*stand-in") as e:
        load_vgg(tmp_path / "missing.pth")
    assert "\n" not in str(e.value)
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"definitely not a torch file")
    with pytest.raises(CheckpointError, match=r"corrupt or not a plain tensor state dict.*download vgg_normalised\.pth") as e:
        load_vgg(bad)
    assert "\n" not in str(e.value)
    torch.save({"0.weight": torch.zeros(3, 3, 1, 1)}, tmp_path / "truncated.pth")
    data = (tmp_path / "truncated.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"(cannot be read|corrupt).*download vgg_normalised\.pth") as e:
        load_vgg(tmp_path / "truncated.pth")
    assert "\n" not in str(e.value)
    wrong = official_vgg_state()
    wrong["2.weight"] = torch.zeros(64, 3, 1, 1)
    del wrong["5.bias"]
    wrong["extra.weight"] = torch.zeros(1)
    wrong["51.weight"] = torch.zeros(1).expand(512, 512, 1, 1)  # beyond relu4_1, but still checked
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(
        CheckpointError, match=r"missing keys 5\.bias.*unexpected keys extra\.weight.*2\.weight.*51\.weight"
    ) as e:
        load_vgg(tmp_path / "wrong.pth")
    assert "\n" not in str(e.value)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_vgg(tmp_path / "list.pth")


def test_weight_errors_are_the_suites_one_line_user_errors():
    # the entry points print a UserError as one line and exit with status 2
    assert issubclass(CheckpointError, errors.CheckpointError) and issubclass(CheckpointError, errors.UserError)


def test_sain_affines_initialise_chunk_by_chunk(make_net, images):
    styles = images(3, 32, 32, seed=5)
    whole, chunked = make_net("sain", num_styles=3), make_net("sain", num_styles=3)
    whole.init_style_affines(styles)
    chunked.init_style_affines(styles[:2])
    chunked.init_style_affines(styles[2:], first=2)
    torch.testing.assert_close(chunked.style_norm.embed.weight, whole.style_norm.embed.weight)
    with pytest.raises(ValueError, match="for ids 2.. below 3"):
        chunked.init_style_affines(styles[:2], first=2)


def test_official_decoder_keys_load_strictly(tmp_path, make_net):
    state = random_state(Decoder(), seed=2)
    torch.save(state, tmp_path / "decoder.pth")
    dec = Decoder()
    load_decoder(dec, tmp_path / "decoder.pth")
    dec.load_state_dict(state, strict=True)  # the official keys are the native ones
    torch.testing.assert_close(dec.state_dict(), state)
    net = make_net("adain")
    load_decoder(net, {"decoder_state_dict": state})  # official training checkpoint
    torch.testing.assert_close(net.decoder.state_dict(), state)
    net2 = make_net("adain", seed=5)
    load_decoder(net2, net.state_dict())  # a whole network's state dict (decoder.* keys)
    torch.testing.assert_close(net2.decoder.state_dict(), state)
    with pytest.raises(CheckpointError, match=r"missing keys 28\.bias"):
        load_decoder(dec, {k: v for k, v in state.items() if k != "28.bias"})
    with pytest.raises(CheckpointError, match=r"decoder weights not found.*decoder\.pth"):
        load_decoder(dec, tmp_path / "nope.pth")


def test_official_saadain_layouts_load(tmp_path, make_net):
    w, b = torch.linspace(0.5, 1.5, 512), torch.linspace(-1, 1, 512)
    standalone = {"shared_weight": w, "shared_bias": b}
    for source in (standalone, {"saadain_state_dict": standalone},
                   {"style_norm.shared_weight": w, "style_norm.shared_bias": b, "decoder.1.bias": torch.zeros(256)}):
        net = make_net("saadain")
        load_saadain(net, source)
        torch.testing.assert_close(net.style_norm.shared_weight.data, w)
        torch.testing.assert_close(net.style_norm.shared_bias.data, b)
    torch.save(standalone, tmp_path / "saadain.pth")
    layer = sabn.SandwichAdaIN(512)
    load_saadain(layer, tmp_path / "saadain.pth")
    torch.testing.assert_close(layer.shared_bias.data, b)
    with pytest.raises(CheckpointError, match=r"only load into a 'saadain' network.*'adain'"):
        load_saadain(make_net("adain"), standalone)
    with pytest.raises(CheckpointError, match=r"wrong shapes shared_weight \(256,\)"):
        load_saadain(layer, {"shared_weight": torch.ones(256), "shared_bias": b})


def test_official_training_checkpoint_loads(tmp_path, make_net):
    dec_state = random_state(Decoder(), seed=3)
    sa_state = {"shared_weight": torch.full((512,), 0.9), "shared_bias": torch.full((512,), 0.1)}
    torch.save({"decoder_state_dict": dec_state, "saadain_state_dict": sa_state}, tmp_path / "ckpt_iter_10.pth.tar")
    net = make_net("saadain")
    load_official_checkpoint(net, tmp_path / "ckpt_iter_10.pth.tar")
    torch.testing.assert_close(net.decoder.state_dict(), dec_state)
    torch.testing.assert_close(net.style_norm.state_dict(), sa_state)
    with pytest.raises(CheckpointError, match="from a SaAdaIN run but the network uses 'adain'"):
        load_official_checkpoint(make_net("adain"), tmp_path / "ckpt_iter_10.pth.tar")
    with pytest.raises(CheckpointError, match="from an AdaIN run but the network uses 'saadain'"):
        load_official_checkpoint(make_net("saadain"), {"decoder_state_dict": dec_state})


# -- the norms at relu4_1 -------------------------------------------------------------------------------------


def test_adain_transfers_the_style_statistics_at_relu4_1(make_net, images):
    net = make_net("adain")
    content, style = images(2, 48, 48, seed=1), images(2, 32, 40, seed=2)
    c_feat = net.encode(content)
    t = net.apply_style(c_feat, net.encode(style))
    s_mean, s_std = sabn.calc_mean_std(net.encode(style))
    torch.testing.assert_close(t.mean((2, 3), keepdim=True), s_mean, atol=1e-4, rtol=1e-4)
    # Normalised content has variance v / (v + eps) (not exactly 1: eps matters for near-constant channels), so
    # the output's variance is σ(s)² · v / (v + eps).
    v = c_feat.var((2, 3), keepdim=True)
    torch.testing.assert_close(t.var((2, 3), keepdim=True), s_std**2 * v / (v + 1e-5), atol=1e-5, rtol=1e-4)
    assert (v > 1e-3).float().mean() > 0.9  # most channels vary: the check is not about eps alone


def test_saadain_with_identity_shared_affine_equals_adain(make_net, images):
    adain, saadain = make_net("adain", seed=7), make_net("saadain", seed=7)
    assert torch.equal(saadain.style_norm.shared_weight, torch.ones(512))
    assert torch.equal(saadain.style_norm.shared_bias, torch.zeros(512))
    content, style = images(2, seed=3), images(2, seed=4)
    la, ls = adain(content, style), saadain(content, style)
    for name in ("content", "style", "total", "content_adain_target"):
        torch.testing.assert_close(getattr(ls, name), getattr(la, name))
    torch.testing.assert_close(ls.stylized, la.stylized)
    # For AdaIN the like-for-like content loss is the paper's content loss.
    torch.testing.assert_close(la.content_adain_target, la.content)


def test_saadain_content_target_moves_with_the_shared_affine(make_net, images):
    net = make_net("saadain")
    content, style = images(2, seed=3), images(2, seed=4)
    with torch.no_grad():
        net.style_norm.shared_weight.fill_(0.5)
    losses = net(content, style)
    c_feat = net.encode(content)
    s_feat = net.encode(style)
    g_feat = net.encode(losses.stylized)
    t_sa = net.style_norm(c_feat, s_feat)
    t_ad = sabn.adaptive_instance_norm(c_feat, s_feat)
    torch.testing.assert_close(losses.content, F.mse_loss(g_feat, t_sa))
    torch.testing.assert_close(losses.content_adain_target, F.mse_loss(g_feat, t_ad))
    assert not torch.allclose(losses.content, losses.content_adain_target)
    # The official target is not detached: the content loss reaches the shared affine through t.
    net.zero_grad()
    losses.content.backward()
    assert net.style_norm.shared_weight.grad.abs().sum() > 0


def test_detach_target_stops_the_content_gradient_into_the_norm(make_net, images):
    net = make_net("saadain", detach_target=True)
    losses = net(images(2, seed=3), images(2, seed=4))
    losses.content.backward()
    grad = net.style_norm.shared_weight.grad
    assert grad is None or torch.count_nonzero(grad) == 0


def test_losses_follow_the_definitions(make_net, images):
    net = make_net("adain", content_weight=2.0, style_weight=3.0)
    content, style = images(2, seed=5), images(2, seed=6)
    losses = net(content, style, alpha=0.6)
    c_feat = net.encode(content)
    s_feats = net.encoder.features(style)
    t = 0.6 * sabn.adaptive_instance_norm(c_feat, s_feats[-1]) + 0.4 * c_feat
    g_feats = net.encoder.features(net.decode(t))
    expected_content = F.mse_loss(g_feats[-1], t)
    terms = []
    for g, s in zip(g_feats, s_feats):
        gm, gs = sabn.calc_mean_std(g)
        sm, ss = sabn.calc_mean_std(s)
        terms.append(F.mse_loss(gm, sm) + F.mse_loss(gs, ss))
    torch.testing.assert_close(losses.content, expected_content)
    torch.testing.assert_close(losses.style, sum(terms))
    torch.testing.assert_close(losses.total, 2.0 * expected_content + 3.0 * sum(terms))
    assert len(losses.style_layers) == 4
    logged = losses.as_floats()
    assert logged["loss_style"] == pytest.approx(3.0 * losses.style.item(), rel=1e-5)
    assert set(logged) >= {"loss", "loss_content", "loss_content_adain_target", "loss_style_relu4_1"}
    with pytest.raises(ValueError, match="matching"):
        style_statistics_loss(torch.rand(1, 4, 3, 3), torch.rand(1, 5, 3, 3))


def test_sain_conditions_on_style_ids(make_net, images):
    net = make_net("sain", num_styles=3)
    norm = net.style_norm
    assert isinstance(norm, sabn.SandwichInstanceNorm2d) and norm.num_conditions == 3
    assert torch.equal(norm.shared_weight, torch.ones(512))
    content, style = images(2, seed=1), images(2, seed=2)
    losses = net(content, style, style_id=torch.tensor([0, 2]))
    assert torch.isfinite(losses.total)
    with pytest.raises(ValueError, match="needs style_id"):
        net(content, style)
    with pytest.raises(ValueError, match="out of range"):
        net(content, style, style_id=3)
    with pytest.raises(TypeError, match="style ids"):
        net.apply_style(net.encode(content), net.encode(style))
    with pytest.raises(ValueError, match="num_styles"):
        make_net("sain")
    with pytest.raises(ValueError, match="style_id only applies"):
        make_net("adain")(content, style, style_id=0)
    with pytest.raises(ValueError, match="unknown style norm 'sabn'"):
        make_net("sabn")


def test_sain_initialised_from_styles_starts_near_adain(make_net, images):
    net = make_net("sain", num_styles=2)
    styles = images(2, 40, 40, seed=8)
    net.init_style_affines(styles)
    c_feat = net.encode(images(2, 48, 48, seed=9))
    s_feat = net.encode(styles)
    sain_out = net.apply_style(c_feat, torch.tensor([0, 1]))
    adain_out = sabn.adaptive_instance_norm(c_feat, s_feat)
    # Equal up to InstanceNorm's biased variance (36 positions at relu4_1: a factor √(36/35) at most).
    rel = (sain_out - adain_out).norm() / adain_out.norm()
    assert rel < 0.03


@pytest.mark.parametrize("norm", ["adain", "saadain", "sain"])
def test_a_few_adam_steps_lower_the_loss(make_net, images, norm):
    net = make_net(norm, num_styles=2 if norm == "sain" else None)
    content, style = images(2, 24, 24, seed=11), images(2, 24, 24, seed=12)
    style_id = torch.tensor([0, 1]) if norm == "sain" else None
    opt = torch.optim.Adam(net.trainable_parameters(), lr=3e-4)
    history = []
    for _ in range(6):
        losses = net(content, style, style_id=style_id)
        history.append(losses.total.item())
        opt.zero_grad()
        losses.total.backward()
        opt.step()
    final = net(content, style, style_id=style_id).total.item()
    assert final < 0.97 * history[0], [*history, final]
    assert all(not p.requires_grad for p in net.encoder.parameters())
    trained = sum(p.numel() for p in net.trainable_parameters())
    norm_params = {"adain": 0, "saadain": 2 * 512, "sain": 2 * 512 + 2 * 2 * 512}[norm]
    assert trained == 3505219 + norm_params

def test_encoder_info_defaults_to_unknown_origin(encoder):
    net = StyleTransferNet(encoder)
    assert isinstance(net.encoder_info, EncoderInfo) and net.encoder_info.stand_in
    assert isinstance(net.encoder, VGGEncoder) and isinstance(net.decoder, Decoder)
