"""NB201 split files and the ImageNet16-120 reader, on fixtures in the real formats."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from tasks.common.errors import UserError
from tasks.nas.data import (
    DataNotFoundError,
    ImageNet16,
    SplitFileError,
    load_search_split,
    load_split_file,
    register_imagenet16_120,
    write_fake_imagenet16,
    write_split_file,
)

SHARED_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb201-splits"


# --- split files ------------------------------------------------------------------------------------------------


def test_split_file_round_trip_with_string_indices(tmp_path):
    path = write_split_file(tmp_path / "cifar100-test-split.txt", {"xvalid": [1, 3, 4], "xtest": [0, 2, 5]})
    assert '"1"' in path.read_text()  # indices stored as strings, as in the real files
    assert load_split_file(path) == {"xvalid": [1, 3, 4], "xtest": [0, 2, 5]}
    assert load_search_split(tmp_path, "cifar100", dataset_size=6) == {"xvalid": [1, 3, 4], "xtest": [0, 2, 5]}


@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="shared NB201 split files not present")
def test_real_split_files_have_the_documented_sizes():
    sizes = {"cifar10": (25_000, 25_000, 50_000), "cifar100": (5_000, 5_000, 10_000),
             "ImageNet16-120": (3_000, 3_000, 6_000)}
    for dataset, (a, b, n) in sizes.items():
        first, second = load_search_split(SHARED_SPLITS, dataset, dataset_size=n).values()
        assert (len(first), len(second)) == (a, b)
        assert sorted(first + second) == list(range(n))


def test_missing_split_file_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(SplitFileError, match=r"cifar-split\.txt.*nb201-splits") as info:
        load_search_split(tmp_path, "cifar10")
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"xvalid": [1, 2, 3]}', r'\["int", \[indices'),
        ('{"xvalid": ["float", ["1"]]}', r'\["int", \[indices'),
        ('{"xvalid": ["int", ["a"]]}', "non-integer"),
        ('{"xvalid": ["int", ["-1"]]}', "negative"),
    ],
)
def test_corrupt_split_files_are_clear_errors(tmp_path, content, match):
    path = tmp_path / "split.txt"
    path.write_text(content)
    with pytest.raises(SplitFileError, match=match):
        load_split_file(path)


def test_wrong_overlapping_or_out_of_range_splits_are_errors(tmp_path):
    write_split_file(tmp_path / "cifar100-test-split.txt", {"train": [0], "valid": [1]})
    with pytest.raises(SplitFileError, match="lacks split"):
        load_search_split(tmp_path, "cifar100")
    write_split_file(tmp_path / "cifar100-test-split.txt", {"xvalid": [0, 1], "xtest": [1, 2]})
    with pytest.raises(SplitFileError, match="overlap"):
        load_search_split(tmp_path, "cifar100")
    write_split_file(tmp_path / "cifar100-test-split.txt", {"xvalid": [0, 1], "xtest": [2, 10]})
    with pytest.raises(SplitFileError, match="indexes sample 10"):
        load_search_split(tmp_path, "cifar100", dataset_size=10)


# --- ImageNet16 -------------------------------------------------------------------------------------------------------


def test_imagenet16_120_keeps_labels_1_to_120_shifted_to_0_based(tmp_path):
    root = write_fake_imagenet16(tmp_path / "ImageNet16")
    train = ImageNet16(tmp_path, train=True)  # the parent folder works too (NB201 layout)
    # default fixture labels per file: 1, 2, 60, 119, 120, 121, 500, 1000 -> five kept
    assert len(train) == 10 * 5
    assert sorted(set(train.targets)) == [0, 1, 59, 118, 119]
    image, label = train[3]
    assert image.size == (16, 16) and image.mode == "RGB" and label == 118
    # channel-planar rows become HWC pixels
    with open(root / "train_data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    row = entry["data"][3]
    assert tuple(np.asarray(image)[2, 5]) == (row[2 * 16 + 5], row[256 + 2 * 16 + 5], row[512 + 2 * 16 + 5])
    val = ImageNet16(root, train=False)
    assert len(val) == 5
    assert len(ImageNet16(root, train=False, num_classes=None)) == 8
    assert max(ImageNet16(root, train=False, num_classes=None).targets) == 999


def test_imagenet16_missing_or_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="ImageNet16 not found"):
        ImageNet16(tmp_path)
    root = write_fake_imagenet16(tmp_path / "in16")
    (root / "train_data_batch_7").unlink()
    with pytest.raises(DataNotFoundError, match="train_data_batch_7"):
        ImageNet16(root, train=True)
    (root / "val_data").write_bytes(b"garbage")
    with pytest.raises(DataNotFoundError, match="unreadable"):
        ImageNet16(root, train=False)


def test_imagenet16_120_in_the_shared_dataset_registry(tmp_path):
    from tasks.common.data import build_dataset

    register_imagenet16_120()
    register_imagenet16_120()  # idempotent
    write_fake_imagenet16(tmp_path)
    ds = build_dataset("imagenet16-120", str(tmp_path), split="test")
    image, label = ds[0]
    assert tuple(image.shape) == (3, 16, 16) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert ds.info.num_classes == 120 and label == 0
