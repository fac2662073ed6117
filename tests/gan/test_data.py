"""ImageNet dogs+cats (``imagenet_dogcat``): which class folders become which labels, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from tasks.common.data import build_dataset
from tasks.common.errors import UserError
from tasks.gan.data import class_names, load_split

SYNSETS = ["n02085620", "n02085782", "n02086240", "n02123045", "n02123159"]


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for i, synset in enumerate(SYNSETS):
        folder = root / "train" / synset
        folder.mkdir(parents=True)
        for j in range(2):
            pixels = np.full((30, 40, 3), 40 * i, dtype=np.uint8) + rng.integers(0, 20, (30, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{synset}_{j}.JPEG")
    return root


def build(root, **kwargs):
    return build_dataset("imagenet_dogcat", str(root), "train", image_size=16, **kwargs)


def test_default_is_every_class_folder_sorted(imagenet_root):
    ds = build(imagenet_root)
    assert ds.info.num_classes == 5 and len(ds) == 10
    image, label = ds[9]
    assert image.shape == (3, 16, 16) and label == 4  # short side resized, centre-cropped


def test_class_range_takes_positions_in_the_sorted_folders(imagenet_root):
    ds = build(imagenet_root, class_range=[1, 3])
    assert ds.info.num_classes == 3 and sorted(ds.targets) == [0, 0, 1, 1, 2, 2]
    first = next(i for i, t in enumerate(ds.targets) if t == 0)
    assert abs(float(ds[first][0].mean()) - (40 + 10) / 255) < 0.05  # label 0 = folder 1 (grey level 40)


def test_classes_file_gives_the_label_order(imagenet_root, tmp_path):
    listing = tmp_path / "classes.txt"
    listing.write_text(f"# dogs and cats\n{SYNSETS[4]}\n{SYNSETS[0]}\n")
    ds = build(imagenet_root, classes_file=str(listing))
    assert ds.info.num_classes == 2
    label_of_bright = ds[next(i for i, t in enumerate(ds.targets) if t == 0)][0].mean()
    assert float(label_of_bright) > 0.6  # label 0 = the last (brightest) synset


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"class_range": [2, 9]}, r"class_range=\[2, 9\] but .* has only 5 class folders"),
    ({"class_range": [3, 1]}, r"class_range must be \[first, last\]"),
    ({"class_range": [0, 1], "classes_file": "x.txt"}, "not both"),
    ({"classes_file": "/nonexistent/classes.txt"}, "data.classes_file not found"),
])
def test_bad_class_selections_are_one_line_errors(imagenet_root, kwargs, message):
    with pytest.raises(UserError, match=message):
        build(imagenet_root, **kwargs)


def test_missing_folder_and_download_are_errors(tmp_path):
    with pytest.raises(UserError, match="ImageNet dogs\\+cats not found"):
        build(tmp_path / "nowhere")
    with pytest.raises(UserError, match="cannot be downloaded"):
        build_dataset("imagenet_dogcat", str(tmp_path), "train", download=True)


def test_gan_split_is_signed_and_digits_have_their_names(imagenet_root):
    cfg = OmegaConf.create({"name": "imagenet_dogcat", "root": str(imagenet_root), "download": False,
                            "image_size": 16, "num_workers": 0, "classes_file": None, "class_range": [0, 1]})
    x, _ = load_split(cfg, "train")[0]
    assert x.min() >= -1 and x.max() <= 1 and x.min() < 0
    digits = load_split(OmegaConf.create({"name": "digits", "root": "", "download": False, "image_size": 32}), "test")
    assert class_names(digits) == [str(i) for i in range(10)]
