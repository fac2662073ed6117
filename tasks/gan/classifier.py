"""A small CNN trained on the run's own training split: the feature network of the ``class_acc`` and
``fd_classifier`` metrics where Inception cannot be had (the digits at demo/smoke scale; it works for CIFAR too).

``class_acc`` = % of conditional samples it assigns to the requested class; ``fd_classifier`` = Fréchet distance
in its penultimate features (4·width dimensions) between samples and the reference split. It is a stand-in for
Inception and is labelled as one wherever its numbers appear. Trained once per protocol (dataset, split size,
resolution, width, epochs, seed) and cached under ``eval.cache_dir``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.data import DataLoader

from tasks.common.checkpoint import atomic_torch_save, load_file
from tasks.common.data import LabelledImages
from tasks.common.errors import UserError
from tasks.common.runtime import eval_mode

if TYPE_CHECKING:
    from .evaluation import DataSource

log = logging.getLogger(__name__)

FORMAT = 1


class FeatureClassifier(nn.Module):
    """conv-BN-ReLU ×5 (two max-pools), global average pool → features (4·width) → linear; inputs in [-1, 1]."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        w = width

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(3, w), *block(w, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)
        self.feature_dim = 4 * w

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(penultimate features, class logits)."""
        f = self.features(x)
        return f, self.head(f)


@dataclass
class TrainedClassifier:
    """A cached classifier and what it is: the text that labels every number computed with it."""

    model: FeatureClassifier
    path: Path
    test_acc: float
    protocol: dict[str, Any]

    @property
    def stand_in(self) -> str:
        return (f"feature network = small CNN trained on {self.protocol['dataset']} "
                f"({self.protocol['train_images']} train images, test acc. {self.test_acc:.1f}%), not Inception")

    @property
    def description(self) -> str:
        return f"CNN width {self.protocol['width']} trained on {self.protocol['dataset']} ({self.path.name})"


def classifier_path(cache_dir: str | Path, dataset_key: str, resolution: int, cfg: DictConfig) -> Path:
    """The cache file name: every setting that changes the classifier (it always trains on the whole train split)."""
    name = (f"classifier_{dataset_key}_{resolution}px_w{cfg.width}_e{cfg.epochs}_b{cfg.batch_size}_lr{cfg.lr:g}"
            f"_s{cfg.seed}.pt")
    return Path(cache_dir) / name


def _shift(x: Tensor, generator: torch.Generator, pad: int = 2) -> Tensor:
    """Random translations by up to ``pad`` pixels (the only augmentation): makes the classifier tolerant of the
    small misalignments of generated digits."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    dx, dy = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]: dy[i] + h, dx[i]: dx[i] + w] for i in range(n)])


@torch.no_grad()
def _accuracy(model: nn.Module, dataset: LabelledImages, device: torch.device, batch: int = 500) -> float:
    hits = total = 0
    with eval_mode(model):
        for x, y in DataLoader(dataset, batch_size=batch):
            hits += int((model(x.to(device))[1].argmax(1).cpu() == y).sum())
            total += len(y)
    return 100.0 * hits / max(1, total)


def train_classifier(train_set: LabelledImages, test_set: LabelledImages, cfg: DictConfig,
                     device: torch.device) -> tuple[FeatureClassifier, float]:
    """Adam, cosine schedule, random shifts; returns the model (eval mode) and its test accuracy (%)."""
    g = torch.Generator().manual_seed(int(cfg.seed))
    torch.manual_seed(int(cfg.seed))  # the initial weights (the evaluator restores the caller's RNG streams)
    model = FeatureClassifier(train_set.info.num_classes, int(cfg.width)).to(device)
    loader = DataLoader(train_set, batch_size=int(cfg.batch_size), shuffle=True, drop_last=True, generator=g)
    if len(loader) == 0:
        raise UserError(f"{len(train_set)} training images are fewer than eval.classifier.batch_size="
                        f"{cfg.batch_size}")
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg.lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg.epochs) * len(loader))
    model.train()
    for _ in range(int(cfg.epochs)):
        for x, y in loader:
            loss = F.cross_entropy(model(_shift(x, g).to(device))[1], y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model, _accuracy(model, test_set, device)


def _settings(cfg: DictConfig, resolution: int) -> dict[str, Any]:
    return {"resolution": int(resolution), "width": int(cfg.width), "epochs": int(cfg.epochs),
            "batch_size": int(cfg.batch_size), "lr": float(cfg.lr), "seed": int(cfg.seed)}


def get_classifier(data: DataSource, cfg: DictConfig, cache_dir: str | Path, device: torch.device) -> TrainedClassifier:
    """The cached classifier for this protocol; trained on ``data``'s train split (and cached atomically) on first
    use, so a cached one needs no data."""
    settings = _settings(cfg, data.resolution)
    path = classifier_path(cache_dir, data.key, data.resolution, cfg)
    if path.is_file():
        state = load_file(path, "feature classifier")
        protocol = state.get("protocol", {}) if isinstance(state, dict) else {}
        if state.get("format") == FORMAT and {k: protocol.get(k) for k in settings} == settings:
            model = FeatureClassifier(int(protocol["num_classes"]), int(cfg.width))
            model.load_state_dict(state["model"])
            return TrainedClassifier(model.to(device).eval(), path, float(state["test_acc"]), protocol)
        log.warning("%s was written for other settings; training the classifier again", path)
    purpose = f"training the feature classifier {path} (not cached yet)"
    train_set, test_set = data.split("train", purpose=purpose), data.split("test", purpose=purpose)
    protocol = {**settings, "dataset": train_set.info.name, "train_images": len(train_set),
                "num_classes": train_set.info.num_classes}
    log.info("training the feature classifier on %s (%d images, %d epochs)", train_set.info.name, len(train_set),
             int(cfg.epochs))
    model, test_acc = train_classifier(train_set, test_set, cfg, device)
    atomic_torch_save({"format": FORMAT, "protocol": protocol, "test_acc": test_acc,
                       "model": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
    log.info("feature classifier: test accuracy %.2f%% (cached in %s)", test_acc, path)
    return TrainedClassifier(model, path, test_acc, protocol)
