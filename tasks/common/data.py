"""Datasets by config name, and a resumable, distributed-aware batch stream.

Registry names: ``cifar10``, ``cifar100`` (torchvision, real pickle format), ``imagefolder`` (torchvision
ImageFolder), ``digits`` (scikit-learn's 1,797 real hand-written digits, upsampled to 32×32 RGB — embedded in the
scikit-learn wheel, so demos run on a fresh machine). Tasks register more with :func:`register_dataset`.

Every dataset returns ``(image, label)`` with images as float tensors in [0, 1] (before the task's transform).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import functional as TF

from .errors import UserError
from .runtime import DistEnv

Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class DatasetInfo:
    """What a task needs to know besides the samples."""

    name: str
    num_classes: int
    image_size: int
    channels: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # per-channel statistics for input normalisation
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    stand_in: str | None = None  # set when the data is not the real thing (documented wherever numbers appear)


class LabelledImages(Dataset):
    """(image, label) pairs from any source, images converted to float [0, 1] CHW tensors, then ``transform``."""

    def __init__(self, source: Dataset, targets: list[int], info: DatasetInfo, transform: Transform | None = None):
        self.source = source
        self.targets = list(targets)
        self.info = info
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.source[index]
        if not isinstance(image, torch.Tensor):
            image = TF.to_tensor(image)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(label)


_REGISTRY: dict[str, Callable[..., LabelledImages]] = {}


def register_dataset(name: str) -> Callable:
    """Decorator adding a builder ``f(root, split, download, transform, **kwargs) -> LabelledImages``."""

    def deco(fn: Callable[..., LabelledImages]) -> Callable[..., LabelledImages]:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


def build_dataset(name: str, root: str, split: str = "train", download: bool = False,
                  transform: Transform | None = None, **kwargs: Any) -> LabelledImages:
    """The dataset registered as ``name`` (``split`` is ``train`` or ``test``)."""
    if name not in _REGISTRY:
        raise UserError(f"unknown dataset {name!r}; valid: {', '.join(dataset_names())}")
    if split not in ("train", "test"):
        raise UserError(f"unknown split {split!r} for dataset {name!r}; valid: train, test")
    return _REGISTRY[name](root=root, split=split, download=download, transform=transform, **kwargs)


# --- CIFAR ---------------------------------------------------------------------------------------------------


class _NoMd5CIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR-10 reader without the md5 check, so a real copy and a tiny test fixture both load.

    Integrity is still checked by unpickling every batch file."""

    train_list = [[n, None] for n, _ in torchvision.datasets.CIFAR10.train_list]
    test_list = [[n, None] for n, _ in torchvision.datasets.CIFAR10.test_list]
    meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}


class _NoMd5CIFAR100(torchvision.datasets.CIFAR100):
    train_list = [[n, None] for n, _ in torchvision.datasets.CIFAR100.train_list]
    test_list = [[n, None] for n, _ in torchvision.datasets.CIFAR100.test_list]
    meta = {**torchvision.datasets.CIFAR100.meta, "md5": None}


CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


def _cifar(cls: type, folder: str, label: str, num_classes: int, root: str, split: str, download: bool,
           transform: Transform | None, mean: tuple, std: tuple, image_size: int = 32) -> LabelledImages:
    path = Path(root) / folder
    if download and not path.is_dir():
        # the md5-checked parent class downloads and verifies the archive
        try:
            cls.__mro__[1](root=root, train=split == "train", download=True)
        except Exception as e:
            raise UserError(f"could not download {label} into {root}: {e}") from e
    if not path.is_dir():
        raise UserError(
            f"{label} not found: expected the extracted '{folder}' folder under {Path(root).resolve()}; "
            f"put it there, set data.root=<folder containing {folder}>, or data.download=true where online"
        )
    try:
        ds = cls(root=root, train=split == "train", download=False)
    except Exception as e:
        raise UserError(f"{label} under {path} is unreadable ({type(e).__name__}: {e}); re-extract it") from e
    if image_size != 32:
        resize = torchvision.transforms.Resize(image_size, antialias=True)
        transform = resize if transform is None else torchvision.transforms.Compose([resize, transform])
    info = DatasetInfo(label, num_classes, image_size, 3, mean, std)
    return LabelledImages(ds, ds.targets, info, transform)


@register_dataset("cifar10")
def cifar10(root: str, split: str = "train", download: bool = False, transform: Transform | None = None,
            image_size: int = 32) -> LabelledImages:
    return _cifar(_NoMd5CIFAR10, "cifar-10-batches-py", "CIFAR-10", 10, root, split, download, transform,
                  CIFAR10_MEAN, CIFAR10_STD, image_size)


@register_dataset("cifar100")
def cifar100(root: str, split: str = "train", download: bool = False, transform: Transform | None = None,
             image_size: int = 32) -> LabelledImages:
    return _cifar(_NoMd5CIFAR100, "cifar-100-python", "CIFAR-100", 100, root, split, download, transform,
                  CIFAR100_MEAN, CIFAR100_STD, image_size)


# --- image folders -----------------------------------------------------------------------------------------


@register_dataset("imagefolder")
def image_folder(root: str, split: str = "train", download: bool = False, transform: Transform | None = None,
                 image_size: int = 32, classes: list[str] | None = None) -> LabelledImages:
    """``root/<split>/<class>/*.png|jpg`` (or ``root/<class>/...`` when there is no split folder), resized and
    centre-cropped to ``image_size``. ``classes`` keeps only those class folders, in that order."""
    base = Path(root) / split if (Path(root) / split).is_dir() else Path(root)
    if not base.is_dir():
        raise UserError(f"image folder not found: {base}; set data.root to a folder of <class>/<image> files")
    size = int(image_size)
    to_size = torchvision.transforms.Compose([
        torchvision.transforms.Resize(size), torchvision.transforms.CenterCrop(size),
    ])

    def keep(path: str) -> bool:
        return torchvision.datasets.folder.has_file_allowed_extension(path, torchvision.datasets.folder.IMG_EXTENSIONS)

    try:
        ds = torchvision.datasets.ImageFolder(str(base), transform=to_size, is_valid_file=keep,
                                              allow_empty=classes is not None)
    except (FileNotFoundError, RuntimeError) as e:
        raise UserError(f"no images under {base}: {e}") from e
    targets = ds.targets
    if classes is not None:
        missing = [c for c in classes if c not in ds.class_to_idx]
        if missing:
            raise UserError(f"class folders missing under {base}: {', '.join(missing[:5])}"
                            + (" ..." if len(missing) > 5 else ""))
        remap = {ds.class_to_idx[c]: i for i, c in enumerate(classes)}
        ds.samples = [(p, remap[t]) for p, t in ds.samples if t in remap]
        ds.targets = [t for _, t in ds.samples]
        ds.imgs = ds.samples
        targets = ds.targets
        if not ds.samples:
            raise UserError(f"no images for the requested classes under {base}")
    n_classes = len(classes) if classes is not None else len(ds.classes)
    info = DatasetInfo(f"imagefolder:{base}", n_classes, size, 3)
    return LabelledImages(_RGB(ds), targets, info, transform)


class _RGB(Dataset):
    """PIL images forced to 3 channels (grey or RGBA files in user folders)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image, label = self.ds[i]
        return image.convert("RGB") if hasattr(image, "convert") else image, label


# --- embedded digits --------------------------------------------------------------------------------------------

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@register_dataset("digits")
def digits(root: str = "", split: str = "train", download: bool = False, transform: Transform | None = None,
           image_size: int = 32) -> LabelledImages:
    """scikit-learn's hand-written digits (1,797 real 8×8 images, 10 classes) as ``image_size``² RGB in [0, 1].

    Fixed stratified split: 80 % train (1,437) / 20 % test (360), ``random_state=0``. Needs no files or internet.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)  # (1797, 8, 8), ink in [0, 1]
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    idx = np.sort(idx_train if split == "train" else idx_test)
    x = images[idx].unsqueeze(1)
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False).clamp_(0, 1)
    x = x.expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(labels[idx])
    source = torch.utils.data.TensorDataset(x, y)
    mean = float(x.mean())
    std = float(x.std())
    info = DatasetInfo("digits", 10, image_size, 3, (mean,) * 3, (std,) * 3)
    return LabelledImages(source, y.tolist(), info, transform)


# --- a resumable, distributed-aware stream of batches ---------------------------------------------------------------


class EpochSampler(Sampler[int]):
    """Per-epoch permutation from ``(seed, epoch)``, identical on every rank, sharded ``perm[rank::world]``.

    The union of the ranks' batches at any step equals the single-process batch of that step, so a DDP job
    computes what one process with the global batch computes. ``start`` skips indices (resuming mid-epoch).
    """

    def __init__(self, n: int, shuffle: bool, seed: int, env: DistEnv, drop_last: bool = True) -> None:
        self.n, self.shuffle, self.seed, self.env = n, shuffle, seed, env
        self.epoch = 0
        self.start = 0
        # Every rank gets the same number of indices: drop (or wrap) the tail.
        self.per_rank = n // env.world_size if drop_last else math.ceil(n / env.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        total = self.per_rank * self.env.world_size
        perm = (perm + perm[: max(0, total - len(perm))])[:total]
        return perm[self.env.rank :: self.env.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.start :])

    def __len__(self) -> int:
        return self.per_rank - self.start


class _Seeded(Dataset):
    """Runs the wrapped dataset's random transforms under a seed fixed by (seed, epoch, batch), so augmentation does
    not depend on the number of workers, on which worker loads a batch, or on where a run was resumed.

    The DataLoader fetches whole batches through ``__getitems__``; seeding once per batch keeps the cost of
    saving/restoring the RNG negligible.
    """

    def __init__(self, ds: Dataset, seed: int) -> None:
        self.ds, self.seed, self.epoch = ds, seed, 0

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        # The first index identifies the batch: indices come from one permutation per epoch.
        state = torch.get_rng_state()
        torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + int(indices[0]))
        try:
            return [self.ds[i] for i in indices]
        finally:
            torch.set_rng_state(state)


class BatchStream:
    """An endless iterator of batches over epochs whose position is checkpointable.

    ``batch_size`` is the global batch; each of ``world_size`` ranks gets ``batch_size // world_size`` samples.
    ``state_dict()`` stores how many batches were consumed; after ``load_state_dict`` the stream continues with
    exactly the batches (and augmentations) an uninterrupted run would have drawn.
    """

    def __init__(self, dataset: Dataset, batch_size: int, env: DistEnv, seed: int, shuffle: bool = True,
                 num_workers: int = 0, pin_memory: bool = False) -> None:
        if batch_size % env.world_size:
            raise UserError(f"batch size {batch_size} is not divisible by the {env.world_size} processes")
        self.local_batch = batch_size // env.world_size
        self.dataset = _Seeded(dataset, seed)
        self.sampler = EpochSampler(len(dataset), shuffle, seed, env)
        if self.sampler.per_rank < self.local_batch:
            raise UserError(f"dataset of {len(dataset)} samples is smaller than one batch of {batch_size}")
        self.batches_per_epoch = self.sampler.per_rank // self.local_batch
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.consumed = 0
        self._it: Iterator | None = None

    @property
    def epoch(self) -> int:
        return self.consumed // self.batches_per_epoch

    def _open(self) -> None:
        epoch, within = divmod(self.consumed, self.batches_per_epoch)
        self.sampler.set_epoch(epoch, start=within * self.local_batch)
        self.dataset.epoch = epoch
        # The DataLoader draws its workers' base seed from `generator`; without one it would draw from the global
        # RNG whenever an epoch opens, and a resumed run (which opens an epoch mid-way) would then diverge.
        g = torch.Generator().manual_seed(self.sampler.seed * 100_003 + epoch)
        self._it = iter(DataLoader(
            self.dataset, batch_size=self.local_batch, sampler=self.sampler, drop_last=True,
            num_workers=self.num_workers, pin_memory=self.pin_memory, generator=g,
        ))

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._open()
        try:
            batch = next(self._it)
        except StopIteration:
            self._open()
            batch = next(self._it)
        self.consumed += 1
        if self.consumed % self.batches_per_epoch == 0:
            self._it = None  # the next call opens the next epoch
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = int(state["consumed"])
        self._it = None


def eval_loader(dataset: Dataset, batch_size: int, env: DistEnv, num_workers: int = 0) -> DataLoader:
    """A deterministic, non-shuffled loader over this rank's shard (every sample exactly once over all ranks)."""
    indices = list(range(env.rank, len(dataset), env.world_size))
    subset = torch.utils.data.Subset(dataset, indices)
    return DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def split_indices(n: int, holdout: int, seed: int) -> tuple[list[int], list[int]]:
    """A fixed random split of ``range(n)`` into (n - holdout, holdout) sorted index lists."""
    if not 0 < holdout < n:
        raise UserError(f"cannot hold out {holdout} of {n} samples")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(perm[holdout:]), sorted(perm[:holdout])
