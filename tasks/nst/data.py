"""Image folders for style transfer: two independent training streams (content, style) and fixed validation pairs.

* Training (as the official code): every image is resized to ``load_size``×``load_size`` (aspect ratio not kept),
  then a random ``image_size`` crop is taken; content and style images come from two independent shuffled streams.
* Validation (differs from the official code, which uses random crops): the same resize, then the **centre** crop,
  and a fixed content×style pairing (:func:`val_pairs`), so every validation measures the same images.
* Unlabelled folders, searched recursively for the usual image extensions, sorted by path. The index of a style
  image in the sorted training style folder is its id (the condition of ``sain``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from PIL import Image, ImageFile
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from tasks.common.errors import UserError

from .demo_data import ensure_demo_folders

# WikiArt holds a few very large and a few truncated files; the official code reads them the same way.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = True

DATASETS = ("image_folders", "skimage_demo")


def find_images(folder: str | Path, setting: str) -> list[Path]:
    """Every image file under ``folder`` (recursively), sorted; a missing or empty folder is a one-line error
    naming the ``setting`` to change."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UserError(f"{setting}: folder not found: {root} (set {setting}=<folder of images>)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
    if not files:
        raise UserError(f"{setting}: no images ({', '.join(IMG_EXTENSIONS[:4])} ...) under {root} "
                        f"(set {setting}=<folder of images>)")
    return files


class ImageFiles(Dataset):
    """``(image, index)`` for a list of files: RGB float tensors in [0, 1] after ``transform``.

    ``repeat`` > 1 lists every file that many times per epoch (each access draws its own random crop), so a folder
    smaller than one batch still fills whole batches; ``index`` is always the file's position (the style id).
    """

    def __init__(self, files: list[Path], transform: v2.Transform, repeat: int = 1) -> None:
        self.files, self.transform, self.repeat = files, transform, max(1, int(repeat))

    def __len__(self) -> int:
        return len(self.files) * self.repeat

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        index = i % len(self.files)
        return self.load(index), index

    def load(self, index: int) -> torch.Tensor:
        path = self.files[index]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except OSError as e:
            raise UserError(f"cannot read image {path}: {e}") from e
        return self.transform(img)


def train_transform(load_size: int, crop: int) -> v2.Transform:
    """Resize to load_size² (PIL bilinear, antialiased, as torchvision's Resize in the official code), random crop."""
    return v2.Compose([v2.Resize((load_size, load_size), antialias=True), v2.RandomCrop(crop),
                       v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def val_transform(load_size: int, crop: int) -> v2.Transform:
    return v2.Compose([v2.Resize((load_size, load_size), antialias=True), v2.CenterCrop(crop),
                       v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def val_pairs(n_content: int, n_style: int, num_pairs: int | None) -> list[tuple[int, int]]:
    """The fixed validation pairing: pair k = (content k mod n_c, style (k + ⌊k / n_c⌋) mod n_s).

    The first min(n_c, n_s) pairs zip content k with style k (the official count when ``num_pairs`` is None);
    each further pass over the contents shifts the styles by one, so contents meet new styles.
    """
    n = min(n_content, n_style) if num_pairs is None else int(num_pairs)
    if n < 1:
        raise UserError(f"val.num_pairs must be at least 1, got {n}")
    return [(k % n_content, (k + k // n_content) % n_style) for k in range(n)]


class PairedImages(Dataset):
    """Validation pairs ``(content, style, style_id)``: centre crops of ``content[i]`` and ``style[j]``, id j."""

    def __init__(self, content: ImageFiles, style: ImageFiles, pairs: list[tuple[int, int]]) -> None:
        self.content, self.style, self.pairs = content, style, pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        i, j = self.pairs[k]
        return self.content.load(i), self.style.load(j), j


@dataclass
class NSTData:
    """What training needs: the two training streams' datasets, the validation pairs and the sample-grid images."""

    name: str  # what results.json calls the data set
    train_content: ImageFiles
    train_style: ImageFiles
    train_style_centre: ImageFiles  # the training styles as centre crops (sain's initial affines, its grid)
    val: PairedImages
    val_description: str  # for the protocol of the validation metrics
    grid_content: torch.Tensor  # (R, 3, S, S) centre crops: rows of the sample grid
    grid_style: torch.Tensor  # (K, 3, S, S): columns
    grid_style_ids: torch.Tensor  # (K,) ids of the grid styles (sain)
    stand_in: str | None  # set for the demo data (not COCO / WikiArt)

    @property
    def num_styles(self) -> int:
        return len(self.train_style.files)


def _repeats(n: int, batch_size: int) -> int:
    return max(1, math.ceil(batch_size / n))


def build_data(cfg: DictConfig, conditional: bool) -> NSTData:
    """The datasets for ``cfg`` (the whole run config). ``conditional`` (sain): validation pairs the held-out
    content with the *training* styles, whose ids the network knows; the held-out style folder is not read."""
    d, v, batch = cfg.data, cfg.val, int(cfg.train.batch_size)
    if d.name not in DATASETS:
        raise UserError(f"data={d.name} is not a style-transfer data set; use data=coco_wikiart (image folders) "
                        "or data=skimage_demo")
    stand_in = None
    if d.name == "skimage_demo":
        ensure_demo_folders(d.root)
        stand_in = "demo data: scikit-image photos as content, its textures + generated patterns as styles"
    load, crop = int(d.load_size), int(d.image_size)
    if crop > load:
        raise UserError(f"data.image_size={crop} (the crop) must not exceed data.load_size={load}")
    content = find_images(d.content_dir, "data.content_dir")
    style = find_images(d.style_dir, "data.style_dir")
    val_content = find_images(d.val_content_dir, "data.val_content_dir")
    train_tf, val_tf = train_transform(load, crop), val_transform(load, crop)
    style_centre = ImageFiles(style, val_tf)
    val_c = ImageFiles(val_content, val_tf)
    val_s = style_centre if conditional else ImageFiles(find_images(d.val_style_dir, "data.val_style_dir"), val_tf)
    val_style = val_s.files
    pairs = val_pairs(len(val_content), len(val_style), v.num_pairs)
    style_source = "training styles (sain knows only their ids)" if conditional else "held-out styles"
    val_description = (f"{len(pairs)} fixed pairs of {len(val_content)} held-out content images × "
                       f"{len(val_style)} {style_source}; centre {crop}-px crops of {load}×{load} resizes "
                       "(official: random crops and pairs)")
    rows, cols = min(int(v.grid_contents), len(val_content)), min(int(v.grid_styles), len(val_style))
    return NSTData(
        name=f"{d.name}:{Path(d.content_dir).name}+{Path(d.style_dir).name}" if d.name == "image_folders"
        else "skimage-demo",
        train_content=ImageFiles(content, train_tf, _repeats(len(content), batch)),
        train_style=ImageFiles(style, train_tf, _repeats(len(style), batch)),
        train_style_centre=style_centre,
        val=PairedImages(val_c, val_s, pairs),
        val_description=val_description,
        grid_content=torch.stack([val_c.load(i) for i in range(rows)]),
        grid_style=torch.stack([val_s.load(j) for j in range(cols)]),
        grid_style_ids=torch.arange(cols),
        stand_in=stand_in,
    )
