"""Training images for the GANs (in [-1, 1], as the official code's ``Normalize(0.5, 0.5)``) and the ImageNet
dogs+cats subset of SNGAN-projection (registered as dataset ``imagenet_dogcat``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig

from tasks.common.data import (
    DatasetInfo,
    LabelledImages,
    Transform,
    build_dataset,
    image_folder,
    register_dataset,
)
from tasks.common.errors import UserError


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images → [-1, 1] (the generators' tanh range)."""
    return x * 2.0 - 1.0


def load_split(data: DictConfig, split: str, signed: bool = True) -> LabelledImages:
    """The configured dataset's ``split``, images in [-1, 1] (``signed``) or [0, 1], no augmentation (as the
    official code)."""
    kwargs: dict = {"image_size": int(data.image_size)}
    if str(data.name) == "imagenet_dogcat":
        kwargs |= {"classes_file": data.get("classes_file"), "class_range": data.get("class_range")}
    return build_dataset(str(data.name), str(data.root), split, bool(data.download) and split == "train",
                         to_signed if signed else None, **kwargs)


def class_names(dataset: LabelledImages) -> list[str]:
    """Human-readable class names (torchvision's ``classes`` where the source has them, else the label ids)."""
    source = dataset.source
    while not hasattr(source, "classes") and hasattr(source, "ds"):
        source = source.ds
    names = getattr(source, "classes", None)
    if names is not None and len(names) == dataset.info.num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(dataset.info.num_classes)]


def select_class_folders(base: Path, classes_file: str | None, class_range: Sequence[int] | None) -> list[str]:
    """The class folders of an ImageNet-style ``base``, in label order (see ``conf/data/imagenet_dogcat.yaml``)."""
    if classes_file is not None and class_range is not None:
        raise UserError("set data.classes_file or data.class_range, not both")
    if classes_file is not None:
        path = Path(classes_file)
        if not path.is_file():
            raise UserError(f"data.classes_file not found: {path}")
        names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        if not names:
            raise UserError(f"data.classes_file {path} lists no class folders")
        return names
    folders = sorted(p.name for p in base.iterdir() if p.is_dir())
    if class_range is None:
        return folders
    if len(class_range) != 2 or not 0 <= int(class_range[0]) <= int(class_range[1]):
        raise UserError(f"data.class_range must be [first, last] with 0 <= first <= last, got {list(class_range)}")
    first, last = int(class_range[0]), int(class_range[1])
    if last >= len(folders):
        raise UserError(f"data.class_range={[first, last]} but {base} has only {len(folders)} class folders "
                        "(class_range indexes the sorted folders of a full ILSVRC-2012 train folder)")
    return folders[first: last + 1]


@register_dataset("imagenet_dogcat")
def imagenet_dogcat(root: str, split: str = "train", download: bool = False, transform: Transform | None = None,
                    image_size: int = 128, classes_file: str | None = None,
                    class_range: Sequence[int] | None = None) -> LabelledImages:
    """SNGAN-projection's ImageNet dogs+cats: ``root/<split>/<class>/*`` (or ``root/<class>/*``), short side resized
    and centre-cropped to ``image_size``; classes from :func:`select_class_folders`, labelled 0..K-1 in that order.
    """
    if download:
        raise UserError("ImageNet cannot be downloaded automatically; extract it and set data.root")
    base = Path(root) / split if (Path(root) / split).is_dir() else Path(root)
    if not base.is_dir():
        raise UserError(f"ImageNet dogs+cats not found: {Path(root).resolve()} is not a folder of class folders; "
                        "set data.root (or $SABN_IMAGENET)")
    classes = select_class_folders(base, classes_file, class_range)
    ds = image_folder(root, split, False, transform, image_size=image_size, classes=classes)
    ds.info = DatasetInfo(f"ImageNet dogs+cats ({len(classes)} classes)", len(classes), int(image_size), 3)
    return ds
