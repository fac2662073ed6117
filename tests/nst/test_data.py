"""Style-transfer data: image folders, crops, the fixed validation pairing and the offline demo folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.common.app import compose_config
from tasks.common.data import BatchStream
from tasks.common.errors import UserError
from tasks.common.runtime import DistEnv
from tasks.nst import demo_data
from tasks.nst.data import ImageFiles, build_data, find_images, train_transform, val_pairs, val_transform


def write_images(folder: Path, sizes: list[tuple[int, int]], mode: str = "RGB") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(sizes))
    paths = []
    for i, (w, h) in enumerate(sizes):
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        p = folder / f"img{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(p)
        paths.append(p)
    return paths


def test_folders_are_searched_recursively_and_sorted(tmp_path):
    write_images(tmp_path / "a", [(20, 30)])
    write_images(tmp_path / "b" / "deeper", [(40, 10), (16, 16)])
    (tmp_path / "notes.txt").write_text("not an image")
    files = find_images(tmp_path, "data.style_dir")
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a/img0.jpg", "b/deeper/img0.jpg",
                                                                   "b/deeper/img1.png"]


def test_missing_or_empty_folders_name_the_setting(tmp_path):
    with pytest.raises(UserError, match=r"^data.content_dir: folder not found: .*nowhere \(set data.content_dir="):
        find_images(tmp_path / "nowhere", "data.content_dir")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("")
    with pytest.raises(UserError, match=r"^data.val_style_dir: no images .* under .*empty"):
        find_images(tmp_path / "empty", "data.val_style_dir")


def test_images_are_resized_square_then_cropped_and_grey_becomes_rgb(tmp_path):
    files = write_images(tmp_path, [(90, 40), (50, 70)]) + write_images(tmp_path / "g", [(33, 33)], mode="L")
    train = ImageFiles(files, train_transform(48, 32), repeat=2)
    assert len(train) == 6
    image, index = train[4]
    assert index == 1 and image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1
    val = ImageFiles(files, val_transform(48, 32))
    assert torch.equal(val[2][0], val[2][0])  # centre crops are fixed
    # the centre crop is the middle of the 48×48 resize
    resized = val_transform(48, 48)(Image.open(files[0]).convert("RGB"))
    assert torch.allclose(val[0][0], resized[:, 8:40, 8:40])


def test_random_crops_differ_and_repeat_under_the_same_seed(tmp_path):
    files = write_images(tmp_path, [(64, 64)] * 3)
    ds = ImageFiles(files, train_transform(64, 16), repeat=3)
    a = BatchStream(ds, 4, DistEnv(), seed=1)
    b = BatchStream(ds, 4, DistEnv(), seed=1)
    xa, ya = next(a)
    xb, yb = next(b)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert set(ya.tolist()) <= {0, 1, 2}
    assert not torch.equal(xa[0], xa[1])


def test_validation_pairing_zips_then_shifts():
    assert val_pairs(5, 3, None) == [(0, 0), (1, 1), (2, 2)]  # min(#content, #style): the official count
    pairs = val_pairs(3, 3, 9)
    assert sorted(pairs) == [(i, j) for i in range(3) for j in range(3)]  # every combination once
    assert pairs[:3] == [(0, 0), (1, 1), (2, 2)]
    with pytest.raises(UserError, match="at least 1"):
        val_pairs(3, 3, 0)


def test_demo_folders_are_written_once_from_shipped_images(tmp_path, monkeypatch):
    root = demo_data.ensure_demo_folders(tmp_path / "demo")
    counts = {sub: len(find_images(root / sub, sub)) for sub in ("content/train", "content/val", "style/train",
                                                                  "style/val")}
    assert counts == {"content/train": 6, "content/val": 3, "style/train": 6, "style/val": 3}
    assert "not COCO / WikiArt" in (root / demo_data.MARKER).read_text()
    for p in find_images(root, "root"):
        with Image.open(p) as im:
            assert im.mode == "RGB" and min(im.size) <= demo_data.MAX_SIDE
    # complete folders are not rewritten
    monkeypatch.setattr(demo_data, "_write", lambda folder: pytest.fail("rewrote a complete demo folder"))
    assert demo_data.ensure_demo_folders(root) == root
    assert np.array_equal(demo_data.pattern("plaid"), demo_data.pattern("plaid"))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.png").write_bytes(b"")
    with pytest.raises(UserError, match="not a complete demo folder"):
        demo_data.ensure_demo_folders(tmp_path / "foreign")


def test_sain_validates_on_the_training_styles(demo_root):
    overrides = ["+exp=sain", "scale=smoke", f"data.root={demo_root}", "val.num_pairs=4"]
    data = build_data(compose_config("nst", overrides), conditional=True)
    assert data.val.style.files == data.train_style.files == data.train_style_centre.files
    assert data.num_styles == 6 and len(data.val) == 4
    content, style, style_id = data.val[3]
    assert content.shape == style.shape == (3, 32, 32) and style_id == 4  # pair 3 = (content 0, style 3 + 1)
    assert "training styles" in data.val_description and data.stand_in.startswith("demo data")
    plain = build_data(compose_config("nst", [*overrides[1:], "+exp=adain"]), conditional=False)
    assert plain.val.style.files != plain.train_style.files
    assert len(plain.train_content) >= 2  # at least one batch per epoch


def test_data_errors_are_one_line(demo_root):
    cfg = compose_config("nst", ["+exp=adain", "scale=smoke", f"data.root={demo_root}", "data.image_size=64"])
    with pytest.raises(UserError, match=r"data.image_size=64 .* must not exceed data.load_size=48"):
        build_data(cfg, conditional=False)
    cfg = compose_config("nst", ["+exp=adain", "data=digits"])
    with pytest.raises(UserError, match="not a style-transfer data set"):
        build_data(cfg, conditional=False)
    cfg = compose_config("nst", ["+exp=adain", f"data.root={demo_root}"])
    with pytest.raises(UserError, match=r"data.content_dir: folder not found: .*coco/train2017"):
        build_data(cfg, conditional=False)
