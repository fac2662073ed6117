"""The train / validation / test splits of the adversarial task.

The validation split is the official one: the training indices ``0..n−1`` shuffled by NumPy's legacy global RNG
seeded with ``split_seed`` (official 10), the first ``val_size`` held out. Training images get random crop (zero
padding) + horizontal flip through ``torchvision.transforms.v2`` (applied inside the shared ``BatchStream``, which
seeds augmentation per batch); validation and test images are not augmented. Images stay in [0, 1]: the model
normalises them itself, so attacks work in pixel space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from tasks.common.data import DatasetInfo, LabelledImages, build_dataset
from tasks.common.errors import UserError


def official_split(n: int, holdout: int, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices exactly as the official ``Adv/train.py``: ``np.random.seed(seed)``,
    ``np.random.shuffle(range(n))``, the first ``holdout`` shuffled indices are the validation split.

    The validation list keeps the shuffled order, so its first k indices are a random subset of it.
    """
    if not 0 < holdout < n:
        raise UserError(f"cannot hold out {holdout} validation images from a training split of {n}; "
                        f"set train.val_size to a number between 1 and {n - 1}")
    indices = np.arange(n)
    np.random.RandomState(seed).shuffle(indices)
    return indices[holdout:].tolist(), indices[:holdout].tolist()


def train_transform(image_size: int, crop_padding: int, flip: bool) -> v2.Transform | None:
    """Random crop with zero padding, then a random horizontal flip (either may be off)."""
    aug: list[v2.Transform] = []
    if crop_padding > 0:
        aug.append(v2.RandomCrop(image_size, padding=int(crop_padding)))
    if flip:
        aug.append(v2.RandomHorizontalFlip())
    return v2.Compose(aug) if aug else None


@dataclass
class AdvSplits:
    train: Dataset  # augmented
    val: Dataset
    test: Dataset
    info: DatasetInfo
    description: str  # e.g. "CIFAR-10: 45000 train / 5000 val (seed 10) / 10000 test"


def build_splits(name: str, root: str, image_size: int, val_size: int, split_seed: int, crop_padding: int = 0,
                 flip: bool = False, download: bool = False) -> AdvSplits:
    """The three splits of dataset ``name`` (a ``tasks.common.data`` registry name)."""
    base = build_dataset(name, root, "train", download, image_size=image_size)
    test = build_dataset(name, root, "test", False, image_size=image_size)
    train_idx, val_idx = official_split(len(base), val_size, split_seed)
    augmented = LabelledImages(base.source, base.targets, base.info,
                               train_transform(base.info.image_size, crop_padding, flip))
    if base.transform is not None:  # e.g. a resize the registry added: keep it before the augmentation
        augmented.transform = v2.Compose([base.transform, augmented.transform]) if augmented.transform else base.transform
    info = base.info
    description = (f"{info.name}: {len(train_idx)} train / {len(val_idx)} val (split seed {split_seed}) / "
                   f"{len(test)} test")
    return AdvSplits(Subset(augmented, train_idx), Subset(base, val_idx), test, info, description)


def first(dataset: Dataset, samples: int | None) -> Dataset:
    """The first ``samples`` items of ``dataset`` (all of them for ``None``); more than there are is an error."""
    if samples is None:
        return dataset
    if samples < 1 or samples > len(dataset):
        raise UserError(f"asked for {samples} evaluation images but the split has {len(dataset)}; "
                        f"use a number between 1 and {len(dataset)} (or null for all)")
    return dataset if samples == len(dataset) else Subset(dataset, range(samples))
