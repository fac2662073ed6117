"""The offline demo data of the style-transfer task, written once as PNG folders (``data=skimage_demo``).

Content: the real colour photos that ship inside the scikit-image wheel (no download) — astronaut, coffee, rocket,
hubble_deep_field, immunohistochemistry and the left motorcycle view for training; chelsea, camera (grey) and
retina held out for validation. Styles: scikit-image's grey textures (brick, grass for training; gravel held out)
plus generated colour patterns (stripes, checker, rings, blobs for training; dots, plaid held out), drawn from a
fixed seed so every machine writes the same files. Images are stored with the shorter side at most
:data:`MAX_SIDE` pixels (the demo crops 64 px of a 128×128 resize; smaller files keep loading cheap).

Layout under the root: ``content/{train,val}/*.png``, ``style/{train,val}/*.png`` and ``SOURCE.txt`` (written
last; a root without it is an unfinished or foreign folder). The folder is built under a temporary name and renamed
into place, so concurrent first uses (parallel tests) never see half-written data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tasks.common.errors import UserError

MAX_SIDE = 256
PATTERN_SIZE = 256
PATTERN_SEED = 20_240_601
MARKER = "SOURCE.txt"

CONTENT_TRAIN = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "motorcycle")
CONTENT_VAL = ("chelsea", "camera", "retina")
TEXTURES_TRAIN = ("brick", "grass")
TEXTURES_VAL = ("gravel",)
PATTERNS_TRAIN = ("stripes", "checker", "rings", "blobs")
PATTERNS_VAL = ("dots", "plaid")


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left view; the right one would leak into validation
    return getattr(skimage.data, name)()


# -- generated colour patterns ---------------------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy / size, xx / size


def _mix(mask: np.ndarray, a: tuple[int, int, int], b: tuple[int, int, int]) -> np.ndarray:
    """Blend two RGB colours by ``mask`` ∈ [0, 1]."""
    ca, cb = np.array(a, np.float32), np.array(b, np.float32)
    return mask[..., None] * ca + (1.0 - mask[..., None]) * cb


def _stripes(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    return _mix(0.5 + 0.5 * np.sin(2 * np.pi * 9 * (x + y)), (235, 120, 30), (20, 40, 110))


def _checker(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    mask = ((np.floor(x * 8) + np.floor(y * 8)) % 2).astype(np.float32)
    return _mix(mask, (200, 30, 60), (240, 220, 160))


def _rings(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    r = np.hypot(x - 0.5, y - 0.5)
    phase = 2 * np.pi * 7 * r
    return np.stack([127 + 120 * np.sin(phase), 127 + 120 * np.sin(phase + 2.1), 127 + 120 * np.sin(phase + 4.2)], -1)


def _blobs(rng: np.random.Generator, n: int) -> np.ndarray:
    coarse = Image.fromarray((rng.random((6, 6, 3)) * 255).astype(np.uint8))
    smooth = np.asarray(coarse.resize((n, n), Image.BICUBIC), np.float32)
    return smooth + rng.normal(0, 12, (n, n, 3))


def _dots(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    d = np.hypot((x * 10) % 1 - 0.5, (y * 10) % 1 - 0.5)
    return _mix((d < 0.3).astype(np.float32), (30, 150, 90), (250, 245, 230))


def _plaid(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    h = 0.5 + 0.5 * np.sin(2 * np.pi * 6 * y)
    v = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * x)
    return 0.5 * _mix(h, (160, 20, 30), (30, 30, 40)) + 0.5 * _mix(v, (220, 190, 60), (40, 70, 140))


PATTERNS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "stripes": _stripes, "checker": _checker, "rings": _rings, "blobs": _blobs, "dots": _dots, "plaid": _plaid,
}


def pattern(name: str, size: int = PATTERN_SIZE) -> np.ndarray:
    """A generated colour pattern as uint8 (size, size, 3); the same on every machine."""
    rng = np.random.default_rng([PATTERN_SEED, list(PATTERNS).index(name)])
    return np.clip(PATTERNS[name](rng, size), 0, 255).astype(np.uint8)


# -- writing the folders -----------------------------------------------------------------------------------------


def _save(array: np.ndarray, path: Path) -> None:
    img = Image.fromarray(array).convert("RGB")
    scale = MAX_SIDE / min(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    img.save(path)


def _write(folder: Path) -> None:
    parts: list[tuple[str, str, Callable[[], np.ndarray]]] = []
    for split, names in (("train", CONTENT_TRAIN), ("val", CONTENT_VAL)):
        parts += [(f"content/{split}", f"photo_{n}", lambda n=n: _skimage(n)) for n in names]
    for split, textures, patterns in (("train", TEXTURES_TRAIN, PATTERNS_TRAIN), ("val", TEXTURES_VAL, PATTERNS_VAL)):
        parts += [(f"style/{split}", f"texture_{n}", lambda n=n: _skimage(n)) for n in textures]
        parts += [(f"style/{split}", f"pattern_{n}", lambda n=n: pattern(n)) for n in patterns]
    for sub, stem, make in parts:
        (folder / sub).mkdir(parents=True, exist_ok=True)
        _save(make(), folder / sub / f"{stem}.png")
    (folder / MARKER).write_text(
        "Style-transfer demo data written by tasks/nst/demo_data.py (not COCO / WikiArt).\n"
        f"content/train: scikit-image photos {', '.join(CONTENT_TRAIN)}\n"
        f"content/val:   scikit-image photos {', '.join(CONTENT_VAL)}\n"
        f"style/train:   scikit-image grey textures {', '.join(TEXTURES_TRAIN)}; generated colour patterns "
        f"{', '.join(PATTERNS_TRAIN)}\n"
        f"style/val:     scikit-image grey texture {', '.join(TEXTURES_VAL)}; generated colour patterns "
        f"{', '.join(PATTERNS_VAL)}\n"
        f"Stored with the shorter side at most {MAX_SIDE} px; patterns from seed {PATTERN_SEED}.\n"
    )


def ensure_demo_folders(root: str | os.PathLike) -> Path:
    """Write the demo folders under ``root`` unless they are already complete; returns ``root``."""
    root = Path(root)
    if (root / MARKER).is_file():
        return root
    if root.exists() and any(root.iterdir()):
        raise UserError(f"data.root={root} exists but is not a complete demo folder (no {MARKER}); "
                        "delete it to have it rewritten, or point data.root elsewhere")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(tmp)
        if root.exists():
            root.rmdir()  # empty (checked above)
        os.rename(tmp, root)
    except OSError:
        if not (root / MARKER).is_file():  # not a lost race with another process writing the same folder
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
