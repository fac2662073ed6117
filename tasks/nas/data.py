"""NAS-Bench-201 data pieces not covered by the shared machinery: the split index files and ImageNet16-120.

Split files (NB201 ``configs/nas-benchmark/*.txt``, copies in ``shared/data/nb201-splits/``) are JSON
``{split_name: ["int", ["0", "5", ...]]}`` (indices stored as strings, the type tag converts them):

===================  =================================  ===================  ===================================
dataset              file                               splits               indices into
===================  =================================  ===================  ===================================
cifar10              cifar-split.txt                    train / valid 25k    CIFAR-10 train set
cifar100             cifar100-test-split.txt            xvalid / xtest 5k    CIFAR-100 test set
ImageNet16-120       imagenet-16-120-test-split.txt     xvalid / xtest 3k    ImageNet16-120 val set (filtered)
===================  =================================  ===================  ===================================

During search (reference_repos.md §3.3) the α batches come from ``valid`` (cifar10, from the train set) or
``xvalid`` (cifar100, ImageNet16-120, from the test/val set), with the train-time augmentation.

ImageNet16 (Chrabaszcz et al. 2017, 16×16 downsampled ImageNet) is read in its real format: a folder with the
pickles ``train_data_batch_1`` … ``train_data_batch_10`` and ``val_data``, each a dict with ``data`` (uint8 rows of
3·16·16, channel-planar) and ``labels`` (1-based ints, 1…1000). ImageNet16-120 keeps labels 1…120 and shifts them to
0…119; the real sizes are 151,700 train / 6,000 val images.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from tasks.common.errors import UserError

#: Split file and split names used by the search for each dataset.
SEARCH_SPLITS: dict[str, tuple[str, tuple[str, str]]] = {
    "cifar10": ("cifar-split.txt", ("train", "valid")),
    "cifar100": ("cifar100-test-split.txt", ("xvalid", "xtest")),
    "ImageNet16-120": ("imagenet-16-120-test-split.txt", ("xvalid", "xtest")),
}

IMAGENET16_TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
IMAGENET16_VAL_FILE = "val_data"
#: (train, val) sizes of the real ImageNet16-N subsets (asserted by the NB201 code).
IMAGENET16_SIZES: dict[int, tuple[int, int]] = {
    120: (151_700, 6_000), 150: (190_272, 7_500), 200: (254_775, 10_000), 1000: (1_281_167, 50_000),
}
#: Normalisation of ImageNet16 in NB201 (÷255 of 122.68, 116.66, 104.01 / 63.22, 61.26, 65.09).
IMAGENET16_MEAN = (122.68 / 255, 116.66 / 255, 104.01 / 255)
IMAGENET16_STD = (63.22 / 255, 61.26 / 255, 65.09 / 255)


class SplitFileError(UserError):
    """An NB201 split file is missing, unreadable or malformed."""


class DataNotFoundError(UserError):
    """A dataset folder or file is missing or unreadable."""


# --- split files --------------------------------------------------------------------------------------------------


def load_split_file(path: str | os.PathLike) -> dict[str, list[int]]:
    """Read an NB201 split file into ``{split_name: [indices]}``; errors name the file and the fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SplitFileError(
            f"NB201 split file not found: {path}; it ships with NAS-Bench-201 (configs/nas-benchmark/, "
            "also in shared/data/nb201-splits/) — set nas.split_dir (or $NB201_SPLITS) to the folder holding it"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SplitFileError(f"NB201 split file {path} is not valid JSON ({e}); replace it with the original") from e
    if not isinstance(raw, dict) or not raw:
        raise SplitFileError(f"NB201 split file {path} must hold a JSON object of splits; replace it with the original")
    splits: dict[str, list[int]] = {}
    for name, value in raw.items():
        if not (isinstance(value, list) and len(value) == 2 and value[0] == "int" and isinstance(value[1], list)):
            raise SplitFileError(f"NB201 split file {path}: split {name!r} must be [\"int\", [indices...]]; "
                                 "replace the file with the original")
        try:
            indices = [int(i) for i in value[1]]
        except (TypeError, ValueError) as e:
            raise SplitFileError(f"NB201 split file {path}: split {name!r} holds a non-integer index ({e})") from e
        if any(i < 0 for i in indices):
            raise SplitFileError(f"NB201 split file {path}: split {name!r} holds a negative index")
        splits[name] = indices
    return splits


def load_search_split(split_dir: str | os.PathLike, dataset: str,
                      dataset_size: int | None = None) -> dict[str, list[int]]:
    """The two splits the search uses for ``dataset`` (see :data:`SEARCH_SPLITS`), checked to be present,
    disjoint and — when ``dataset_size`` is given — inside ``range(dataset_size)``."""
    if dataset not in SEARCH_SPLITS:
        raise SplitFileError(f"no NB201 split file for dataset {dataset!r}; valid: {', '.join(SEARCH_SPLITS)}")
    filename, names = SEARCH_SPLITS[dataset]
    path = Path(split_dir).expanduser() / filename
    splits = load_split_file(path)
    missing = [n for n in names if n not in splits]
    if missing:
        raise SplitFileError(f"NB201 split file {path} lacks split(s) {', '.join(missing)} "
                             f"(has {', '.join(splits)}); is it the file for {dataset}?")
    a, b = (splits[n] for n in names)
    if set(a) & set(b):
        raise SplitFileError(f"NB201 split file {path}: splits {names[0]} and {names[1]} overlap")
    if dataset_size is not None:
        top = max(a + b, default=-1)
        if top >= dataset_size:
            raise SplitFileError(f"NB201 split file {path} indexes sample {top} but the {dataset} set has "
                                 f"{dataset_size}; is it the file for {dataset}?")
    return {n: splits[n] for n in names}


# --- ImageNet16 -------------------------------------------------------------------------------------------------------


def resolve_imagenet16_root(root: str | os.PathLike) -> Path:
    """The folder holding the ImageNet16 pickles: ``root`` or ``root/ImageNet16`` (the NB201 layout under
    ``$TORCH_HOME/cifar.python``)."""
    base = Path(root).expanduser()
    for candidate in (base, base / "ImageNet16"):
        if (candidate / IMAGENET16_VAL_FILE).is_file():
            return candidate
    raise DataNotFoundError(
        f"ImageNet16 not found at {base}: expected the files {IMAGENET16_TRAIN_FILES[0]} … "
        f"{IMAGENET16_TRAIN_FILES[-1]} and {IMAGENET16_VAL_FILE} there or in {base / 'ImageNet16'}; download the "
        "16×16 downsampled ImageNet (Imagenet16_train.zip / Imagenet16_val.zip) and point the data root at it"
    )


def _load_batch(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataNotFoundError(f"ImageNet16 file missing: {path}; the folder needs all 10 train batches and "
                                f"{IMAGENET16_VAL_FILE}")
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["labels"], dtype=np.int64)
    except Exception as e:
        raise DataNotFoundError(f"ImageNet16 file {path} is unreadable ({type(e).__name__}: {e}); re-extract it") from e
    if data.ndim != 2 or data.shape[1] != 3 * 16 * 16 or len(labels) != len(data):
        raise DataNotFoundError(f"ImageNet16 file {path} has data of shape {data.shape} and {len(labels)} labels; "
                                "expected (N, 768) rows with one label each")
    return {"data": data, "labels": labels}


class ImageNet16(Dataset):
    """ImageNet16-N (NB201's ``ImageNet16``): 16×16 RGB images, labels 1…N kept and returned as 0…N−1.

    ``train=True`` reads the 10 train batches, ``False`` the ``val_data`` file (NB201's ImageNet16-120 "test" set,
    which its split file divides into xvalid / xtest). ``num_classes=None`` keeps all 1000 classes. Items are
    ``(PIL image, label)`` passed through ``transform`` / ``target_transform`` like torchvision datasets.
    Attributes: ``data`` (N, 16, 16, 3) uint8, ``targets`` list of 0-based labels.
    """

    def __init__(self, root: str | os.PathLike, train: bool = True, num_classes: int | None = 120,
                 transform: Callable | None = None, target_transform: Callable | None = None) -> None:
        self.root = resolve_imagenet16_root(root)
        self.train = train
        self.num_classes = num_classes
        self.transform = transform
        self.target_transform = target_transform
        files = IMAGENET16_TRAIN_FILES if train else (IMAGENET16_VAL_FILE,)
        datas, targets = [], []
        for name in files:
            entry = _load_batch(self.root / name)
            labels = entry["labels"]
            # filter each batch as it is read so only the kept classes are ever held (the 120-class train set
            # is ~116 MB, all 1000 classes ~1 GB)
            keep = np.ones(len(labels), dtype=bool) if num_classes is None else (labels >= 1) & (labels <= num_classes)
            datas.append(entry["data"][keep])
            targets.append(labels[keep] - 1)
        data = np.concatenate(datas) if datas else np.zeros((0, 768), np.uint8)
        self.data = data.reshape(-1, 3, 16, 16).transpose(0, 2, 3, 1).copy()  # channel-planar rows -> HWC
        self.targets: list[int] = np.concatenate(targets).tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image: Any = Image.fromarray(self.data[index])
        target: Any = self.targets[index]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


def register_imagenet16_120() -> None:
    """Add ``imagenet16-120`` to the shared dataset registry (split ``train`` = train batches, ``test`` = val_data;
    NB201's normalisation statistics; ``image_size`` other than 16 resizes)."""
    from tasks.common import data as common_data

    if "imagenet16-120" in common_data.dataset_names():
        return

    @common_data.register_dataset("imagenet16-120")
    def imagenet16_120(root: str, split: str = "train", download: bool = False,
                       transform: Callable | None = None, image_size: int = 16) -> common_data.LabelledImages:
        if download:
            raise UserError("ImageNet16-120 cannot be downloaded automatically; set data.download=false and point "
                            "data.root at the extracted ImageNet16 folder")
        ds = ImageNet16(root, train=split == "train", num_classes=120)
        if image_size != 16:
            resize = torchvision.transforms.Resize(image_size, antialias=True)
            transform = resize if transform is None else torchvision.transforms.Compose([resize, transform])
        info = common_data.DatasetInfo("ImageNet16-120", 120, image_size, 3, IMAGENET16_MEAN, IMAGENET16_STD)
        return common_data.LabelledImages(ds, ds.targets, info, transform)


# --- the search data: which samples feed the w-step, the α-step and the supernet accuracy ---------------------------

#: Registry names of the datasets searched with NB201's split files: (SEARCH_SPLITS key, set the α split indexes).
NB201_SEARCH_SETS: dict[str, tuple[str, str]] = {
    "cifar10": ("cifar10", "train"),  # α on the `valid` half of the train set, w on the `train` half
    "cifar100": ("cifar100", "test"),  # α on the `xvalid` half of the test set, w on the whole train set
    "imagenet16-120": ("ImageNet16-120", "test"),  # α on the `xvalid` half of val_data, w on the whole train set
}


class TransformedSubset(Dataset):
    """``dataset[indices[i]]`` with ``transform`` applied to the image (one loaded dataset, several views)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], transform: Callable | None) -> None:
        self.dataset, self.indices, self.transform = dataset, list(indices), transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[self.indices[i]]
        return (image if self.transform is None else self.transform(image)), label


@dataclass
class SearchData:
    """The three views of the data a search uses.

    ``weights``: w-step samples; ``arch``: α-step samples (both with the search augmentation, as NB201's
    ``SearchDataset``); ``valid``: the α samples with the test transform (supernet accuracy every epoch);
    ``info``: the dataset's :class:`~tasks.common.data.DatasetInfo`; ``protocol``: which samples feed what, in words.
    """

    weights: Dataset
    arch: Dataset
    valid: Dataset
    info: Any
    protocol: dict[str, str]


def search_transforms(image_size: int, mean: Sequence[float], std: Sequence[float], flip: bool = True,
                      crop_padding: int | None = None) -> tuple[Callable, Callable]:
    """(augmentation, test transform) of NB201's search: flip → random crop (padding ``image_size // 8``: 4 at
    32 px, 2 at 16 px, unless given) → normalise; the test transform only normalises. Inputs are [0, 1] tensors."""
    padding = image_size // 8 if crop_padding is None else int(crop_padding)
    normalize = v2.Normalize(list(mean), list(std))
    aug: list[Callable] = [v2.RandomHorizontalFlip()] if flip else []
    if padding > 0:
        aug.append(v2.RandomCrop(image_size, padding=padding))
    return v2.Compose([*aug, normalize]), normalize


def build_search_data(name: str, root: str, image_size: int, split_dir: str | os.PathLike,
                      download: bool = False, flip: bool = True, crop_padding: int | None = None,
                      holdout_fraction: float = 0.5, split_seed: int = 0) -> SearchData:
    """The search data of dataset ``name`` (a registry name).

    CIFAR-10, CIFAR-100 and ImageNet16-120 use NB201's split files from ``split_dir`` (reference_repos.md §3.3);
    any other dataset (``digits``, ``imagefolder``) holds out ``holdout_fraction`` of its train set for α with a
    fixed random split (``split_seed``).
    """
    from tasks.common import data as common_data

    register_imagenet16_120()
    train = common_data.build_dataset(name, root, "train", download, image_size=image_size)
    info = train.info
    aug, plain = search_transforms(image_size, info.mean, info.std, flip, crop_padding)
    if name in NB201_SEARCH_SETS:
        key, arch_set = NB201_SEARCH_SETS[name]
        filename, (first, second) = SEARCH_SPLITS[key]
        holder = train if arch_set == "train" else common_data.build_dataset(name, root, "test", False,
                                                                             image_size=image_size)
        splits = load_search_split(split_dir, key, dataset_size=len(holder))
        if arch_set == "train":
            weight_idx, arch_idx = splits[first], splits[second]
            weights_text = f"{info.name} train, `{first}` half of {filename} ({len(weight_idx)} images)"
            arch_text = f"{info.name} train, `{second}` half of {filename} ({len(arch_idx)} images)"
        else:
            weight_idx, arch_idx = list(range(len(train))), splits[first]
            weights_text = f"{info.name} train, all {len(weight_idx)} images"
            arch_text = f"{info.name} test, `{first}` half of {filename} ({len(arch_idx)} images)"
    else:
        holder = train
        weight_idx, arch_idx = common_data.split_indices(len(train), round(holdout_fraction * len(train)), split_seed)
        weights_text = f"{info.name} train minus the held-out part ({len(weight_idx)} images)"
        arch_text = (f"{info.name} train, held out: {len(arch_idx)} images (fixed random split, "
                     f"seed {split_seed})")
    protocol = {"weights_data": weights_text, "alpha_data": f"{arch_text}, search augmentation",
                "valid_data": f"{arch_text}, test transform"}
    return SearchData(TransformedSubset(train, weight_idx, aug), TransformedSubset(holder, arch_idx, aug),
                      TransformedSubset(holder, arch_idx, plain), info, protocol)


# --- test fixtures in the real formats -------------------------------------------------------------------------------


def write_fake_imagenet16(root: str | os.PathLike, labels_per_batch: Sequence[Sequence[int]] | None = None,
                          val_labels: Sequence[int] | None = None, seed: int = 0) -> Path:
    """Write random 16×16 images in the real ImageNet16 pickle format (TEST SUPPORT ONLY) and return the folder.

    ``labels_per_batch`` gives the 1-based labels of each of the 10 train batches (default: a few labels each,
    spanning 1, 120, 121 and 1000 so the 120-class filter is exercised); ``val_labels`` those of ``val_data``.
    """
    rng = np.random.default_rng(seed)
    default = [1, 2, 60, 119, 120, 121, 500, 1000]
    batches = [list(default) for _ in IMAGENET16_TRAIN_FILES] if labels_per_batch is None else labels_per_batch
    if len(batches) != len(IMAGENET16_TRAIN_FILES):
        raise ValueError(f"need labels for {len(IMAGENET16_TRAIN_FILES)} train batches, got {len(batches)}")
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    entries = [(name, labels) for name, labels in zip(IMAGENET16_TRAIN_FILES, batches)]
    entries.append((IMAGENET16_VAL_FILE, list(default) if val_labels is None else val_labels))
    for name, labels in entries:
        data = rng.integers(0, 256, size=(len(labels), 3 * 16 * 16), dtype=np.uint8)
        entry: dict[str, Any] = {"data": data, "labels": [int(v) for v in labels]}
        if name != IMAGENET16_VAL_FILE:
            entry["mean"] = data.mean(axis=0)
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)  # the real files are Python-2 pickles
    return folder


def write_split_file(path: str | os.PathLike, splits: dict[str, Sequence[int]]) -> Path:
    """Write ``splits`` in the NB201 split-file format (indices as strings) — test support."""
    path = Path(path)
    path.write_text(json.dumps({name: ["int", [str(i) for i in idx]] for name, idx in splits.items()}))
    return path
