"""Stylisation core: shapes, the α trade-off, style interpolation weights, CORAL colour preservation, image I/O."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import sabn
from tasks.nst.stylize import coral, load_image, normalise_weights, save_image, stylize


@pytest.mark.parametrize(("h", "w"), [(32, 32), (37, 50)])
def test_stylize_returns_the_content_shape_in_range(make_net, images, h, w):
    net = make_net("adain")
    content = images(2, h, w, seed=1)
    out = stylize(net, content, images(1, 24, 40, seed=2))
    assert out.shape == content.shape
    assert out.min() >= 0 and out.max() <= 1
    single = stylize(net, content[0], images(1, 24, 40, seed=2)[0])
    assert single.shape == content[0].shape
    torch.testing.assert_close(single, out[0], atol=1e-5, rtol=1e-5)


def test_alpha_zero_decodes_the_content_features(make_net, images):
    net = make_net("saadain")
    with torch.no_grad():
        net.style_norm.shared_bias.fill_(0.3)  # the style path must not leak into α = 0
    content = images(1, 40, 40, seed=3)
    out = stylize(net, content, images(1, seed=4), alpha=0.0)
    with torch.no_grad():
        expected = net.decode(net.encode(content)).clamp(0, 1)
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        stylize(net, content, images(1, seed=4), alpha=1.5)


def test_alpha_blends_at_relu4_1(make_net, images):
    net = make_net("adain")
    content, style = images(1, seed=5), images(1, seed=6)
    out = stylize(net, content, style, alpha=0.3)
    with torch.no_grad():
        c = net.encode(content)
        t = sabn.adaptive_instance_norm(c, net.encode(style))
        expected = net.decode(0.3 * t + 0.7 * c).clamp(0, 1)
    torch.testing.assert_close(out, expected)


def test_interpolation_mixes_the_style_norm_outputs(make_net, images):
    net = make_net("adain")
    content = images(1, seed=7)
    s1, s2 = images(1, 32, 32, seed=8), images(1, 48, 40, seed=9)  # styles of different sizes
    # One-hot weights reproduce the single style; unnormalised weights are scaled to sum 1.
    torch.testing.assert_close(stylize(net, content, [s1, s2], weights=[0, 5]), stylize(net, content, s2))
    mixed = stylize(net, content, [s1, s2], weights=[1, 3])
    with torch.no_grad():
        c = net.encode(content)
        t = 0.25 * sabn.adaptive_instance_norm(c, net.encode(s1)) + 0.75 * sabn.adaptive_instance_norm(
            c, net.encode(s2))
        expected = net.decode(t).clamp(0, 1)
    torch.testing.assert_close(mixed, expected)
    torch.testing.assert_close(stylize(net, content, [s1, s2]), stylize(net, content, [s1, s2], weights=[0.5, 0.5]))


def test_style_weights_are_validated():
    assert normalise_weights([1, 1, 2], 3) == [0.25, 0.25, 0.5]
    assert normalise_weights([0.2, 0.6], 2) == pytest.approx([0.25, 0.75])
    assert normalise_weights(None, 4) == [0.25] * 4
    with pytest.raises(ValueError, match="sum to more than 0"):
        normalise_weights([0, 0], 2)
    with pytest.raises(ValueError, match="non-negative"):
        normalise_weights([1, -1], 2)
    with pytest.raises(ValueError, match="non-negative"):
        normalise_weights([float("nan"), 1], 2)
    with pytest.raises(ValueError, match="2 style weights for 3 styles"):
        normalise_weights([1, 1], 3)


def test_sain_stylises_with_style_ids(make_net, images):
    net = make_net("sain", num_styles=3)
    content = images(2, seed=10)
    out = stylize(net, content, 1)
    assert out.shape == content.shape
    torch.testing.assert_close(stylize(net, content, [0, 2], weights=[0, 1]), stylize(net, content, 2))
    per_image = stylize(net, content, torch.tensor([1, 2]))
    torch.testing.assert_close(per_image[0], out[0])
    with pytest.raises(TypeError, match="style ids"):
        stylize(net, content, images(1, seed=11))
    with pytest.raises(ValueError, match="preserve_color"):
        stylize(net, content, 1, preserve_color=True)
    with pytest.raises(TypeError, match="style images"):
        stylize(make_net("adain"), content, 1)


def rgb_mean_cov(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.double().flatten(2)
    mean = flat.mean(-1)
    centred = flat - mean.unsqueeze(-1)
    return mean, centred @ centred.transpose(-1, -2) / (flat.shape[-1] - 1)


def test_coral_matches_the_content_colour_mean_and_covariance(images):
    style = images(2, 30, 20, seed=12) * torch.tensor([1.0, 0.4, 0.2]).view(1, 3, 1, 1)  # reddish
    content = images(2, 24, 36, seed=13) * torch.tensor([0.3, 0.5, 1.0]).view(1, 3, 1, 1)  # bluish
    out = coral(style, content, eps=0.0)
    assert out.shape == style.shape
    m_out, c_out = rgb_mean_cov(out)
    m_c, c_c = rgb_mean_cov(content)
    torch.testing.assert_close(m_out, m_c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c_out, c_c, atol=1e-5, rtol=1e-4)
    # One style image recoloured to each content image in turn.
    both = coral(style[:1], content, eps=0.0)
    assert both.shape == (2, 3, 30, 20)
    torch.testing.assert_close(rgb_mean_cov(both)[0], m_c, atol=1e-5, rtol=1e-5)
    # A grey (rank-1 covariance) style does not blow up.
    grey = images(1, seed=14).mean(1, keepdim=True).expand(1, 3, -1, -1)
    assert torch.isfinite(coral(grey, content[:1])).all()


def test_preserve_color_stylises_with_the_recoloured_style(make_net, images):
    net = make_net("adain")
    content, style = images(1, seed=15), images(1, seed=16) ** 3
    kept = stylize(net, content, style, preserve_color=True)
    torch.testing.assert_close(kept, stylize(net, content, coral(style, content).clamp(0, 1)))
    assert not torch.allclose(kept, stylize(net, content, style))
    # The recoloured style (what the network sees) has the content's mean colour.
    recoloured = coral(style, content).clamp(0, 1)
    torch.testing.assert_close(recoloured.mean((2, 3)), content.mean((2, 3)), atol=2e-2, rtol=0)


def test_style_batch_must_be_one_or_the_content_batch(make_net, images):
    with pytest.raises(ValueError, match="1 or 3 images"):
        stylize(make_net("adain"), images(3, seed=1), images(2, seed=2))


def test_image_files_round_trip(tmp_path, images):
    img = images(1, 20, 30, seed=17)[0]
    png = save_image(img, tmp_path / "out" / "a.png")
    back = load_image(png)
    assert back.shape == (3, 20, 30)
    torch.testing.assert_close(back, (img * 255).round() / 255, atol=1 / 255 + 1e-6, rtol=0)
    smooth = torch.linspace(0, 1, 30).expand(3, 20, 30) * torch.tensor([1.0, 0.5, 0.2]).view(3, 1, 1)
    jpg = save_image(smooth[None], tmp_path / "a.jpg")
    with Image.open(jpg) as im:
        assert im.format == "JPEG"
    assert (load_image(jpg) - smooth).abs().mean() < 0.02  # lossy, but the same picture
    assert load_image(png, size=10).shape == (3, 10, 15)  # shorter side → 10
    assert load_image(png, size=10, crop=True).shape == (3, 10, 10)
    assert load_image(png, size=0).shape == (3, 20, 30)  # 0 keeps the size, as test.py
    Image.new("L", (12, 16)).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").shape == (3, 16, 12)  # converted to RGB


def test_image_io_errors(tmp_path, images):
    with pytest.raises(FileNotFoundError, match="image not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(ValueError, match="crop needs a size"):
        load_image(tmp_path / "bad.png", crop=True)
    with pytest.raises(ValueError, match="one by one"):
        save_image(images(2, seed=1), tmp_path / "x.png")
