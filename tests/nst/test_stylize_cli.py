"""The stylize command (``python -m tasks.nst.stylize key=value ...``) on official-layout files and user folders."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.common.errors import UserError
from tasks.nst.networks import Decoder
from tasks.nst.stylize_cli import main, parse_args


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Official-layout decoder and SaAdaIN files (random weights) and a few small images."""
    root = tmp_path_factory.mktemp("stylize")
    torch.manual_seed(0)
    torch.save(Decoder().state_dict(), root / "decoder.pth")
    torch.save({"shared_weight": torch.full((512,), 1.1), "shared_bias": torch.zeros(512)}, root / "saadain.pth")
    rng = np.random.default_rng(0)
    for name, (w, h) in {"content/cat.png": (64, 48), "content/dog.jpg": (40, 40), "styles/a.png": (30, 30),
                         "styles/b.png": (50, 30)}.items():
        (root / name).parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / name)
    return root


def sizes(folder):
    return {p.name: Image.open(p).size for p in sorted(folder.glob("*.png"))}


def test_one_pair_writes_an_image_of_the_requested_size(files, tmp_path, capsys):
    out = tmp_path / "result.png"
    code = main([f"content={files}/content/cat.png", f"style={files}/styles/a.png", "alpha=0.5",
                 "preserve_color=true", "size=36", f"out={out}", f"decoder={files}/decoder.pth", "device=cpu"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(out).size == (48, 36)  # shorter side 36, aspect kept
    caption = (tmp_path / "captions.txt").read_text()
    assert caption.startswith("result.png: content cat.png; style a.png; alpha 0.5; preserve_color true")
    assert "stand-in" in caption and "stand-in" in capsys.readouterr().err


def test_folders_give_every_content_style_pair_and_crop_gives_squares(files, tmp_path):
    out = tmp_path / "out"
    assert main([f"content={files}/content", f"style={files}/styles", "size=24", "crop=true", f"out={out}",
                 f"decoder={files}/decoder.pth", f"saadain={files}/saadain.pth"]) == 0
    assert sizes(out) == {f"{c}_stylized_{s}.png": (24, 24) for c in ("cat", "dog") for s in ("a", "b")}
    assert "norm saadain" in (out / "captions.txt").read_text()


def test_style_interpolation_mixes_with_the_given_weights(files, tmp_path):
    out = tmp_path / "mix"
    args = [f"content={files}/content/dog.jpg", f"style={files}/styles/a.png,{files}/styles/b.png", "size=0",
            f"decoder={files}/decoder.pth"]
    assert main([*args, "style_weights=1,0", f"out={out}"]) == 0
    assert main([*args, "style_weights=1", f"out={tmp_path / 'x'}"]) == 2  # one weight for two styles
    assert main([f"content={files}/content/dog.jpg", f"style={files}/styles/a.png", "size=0",
                 f"decoder={files}/decoder.pth", f"out={tmp_path / 'single'}"]) == 0
    mixed = np.asarray(Image.open(out / "dog_interpolation.png"), dtype=np.float32)
    single = np.asarray(Image.open(tmp_path / "single" / "dog_stylized_a.png"), dtype=np.float32)
    assert mixed.shape == (40, 40, 3) and np.abs(mixed - single).max() <= 1  # weight 0 on b: style a alone
    assert "weights 1,0" in (out / "captions.txt").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["content=a.png"], "style=<file or folder> is required"),
    (["content=a", "style=b", "alpah=0.5"], "unknown key 'alpah' — did you mean 'alpha'"),
    (["content=a", "style=b", "alpha=2"], r"alpha=2.0: must lie in \[0, 1\]"),
    (["content=a", "style=b", "crop=maybe"], "crop=maybe: expected true or false"),
    (["content=a", "style=b", "size=big"], "size=big: expected int"),
    (["content", "style=b"], "arguments are key=value"),
])
def test_bad_arguments_are_one_line_errors(argv, message):
    with pytest.raises(UserError, match=message):
        parse_args(argv)


def test_missing_inputs_and_weights_are_one_line_errors(files, tmp_path, capsys):
    base = [f"content={files}/content/cat.png", f"style={files}/styles/a.png", f"out={tmp_path}"]
    cases = [
        (base, "say which weights to use"),
        ([*base, f"decoder={tmp_path}/none.pth"], "decoder weights not found"),
        ([*base, f"decoder={files}/decoder.pth", f"vgg={files}/decoder.pth"], "VGG encoder weights .* do not fit"),
        ([*base, f"ckpt={files}/saadain.pth"], "has no 'decoder_state_dict'"),
        ([*base, f"ckpt={tmp_path}/run"], "checkpoint not found"),
        ([*base, f"decoder={files}/decoder.pth", f"content={tmp_path}/none.png"], "content=.*no such file"),
        ([*base, f"decoder={files}/decoder.pth", f"out={tmp_path}/one.png", f"style={files}/styles"],
         "names one file but there are 2 outputs"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert re.search(message, err), (message, err)


def test_official_training_checkpoint_is_read(files, tmp_path):
    decoder = torch.load(files / "decoder.pth", weights_only=True)
    shared = torch.load(files / "saadain.pth", weights_only=True)
    torch.save({"iter": 160000, "decoder_state_dict": decoder, "saadain_state_dict": shared},
               tmp_path / "ckpt_iter_160000.pth.tar")
    out = tmp_path / "o"
    assert main([f"content={files}/content/dog.jpg", f"style={files}/styles/b.png", "size=16",
                 f"ckpt={tmp_path}/ckpt_iter_160000.pth.tar", f"out={out}"]) == 0
    assert sizes(out) == {"dog_stylized_b.png": (16, 16)}
    assert "norm saadain" in (out / "captions.txt").read_text()
