"""Evaluating a generator: every number with its protocol, and per-class sample grids.

Metrics (names as in ``conf/paper_tables.yaml``):

* ``is`` (and ``is_std``), ``fid`` — pytorch-fid's TF-FID Inception (``tasks.gan.inception``): IS from its
  1008 logits in ``eval.inception.is_splits`` splits, FID from pool3 against the cached statistics of the
  reference split. Generated images are made uint8 as the official code does (truncation of 127.5·x + 127.5)
  before Inception sees them. Skipped (with the reason logged) when no weights can be had.
* ``class_acc``, ``fd_classifier`` — the run's own small classifier (``tasks.gan.classifier``), always labelled as
  a stand-in for Inception.

Samples: ``eval.num_samples`` latents z ~ N(0, I) with uniform random labels, drawn from ``eval.seed`` (the same
samples at every evaluation, independent of the training RNG, so evaluating never changes a run's trajectory),
in batches of ``eval.batch_size``; under DDP each rank generates every world_size-th batch and the statistics are
summed. BN mode: ``eval`` (running statistics) or ``batch`` (each sampling batch's own statistics; the buffers are
restored afterwards, so sampling leaves the model as it was).

Caches under ``eval.cache_dir``, named by protocol: the classifier, and reference statistics
``refstats_<dataset>_<split><count>_<res>px_<features>.npz`` (μ, Σ, n and a description). Evaluating from a
checkpoint needs the data only when a cache file is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from tasks.common.checkpoint import capture_rng, restore_rng
from tasks.common.data import LabelledImages
from tasks.common.errors import UserError
from tasks.common.results import Metric
from tasks.common.runtime import DistEnv, all_reduce_sum, barrier, eval_mode

from .classifier import TrainedClassifier, get_classifier
from .config import choice
from .data import class_names, load_split
from .images import save_class_grid, to_uint8
from .inception import FEATURE_DIM, InceptionFeatures, InceptionUnavailable, InceptionWeights, load_inception
from .metrics import FrechetReference, GaussianStats, InceptionScoreAccumulator

log = logging.getLogger(__name__)

_WELL_KNOWN = ("cifar10", "cifar100", "digits")


class DataSource:
    """The run's dataset splits, loaded on first use: evaluating from a checkpoint reads no data when every cache
    file exists."""

    def __init__(self, data_cfg: DictConfig) -> None:
        self.cfg = data_cfg
        self._splits: dict[tuple[str, bool], LabelledImages] = {}

    def split(self, split: str, signed: bool = True, purpose: str | None = None) -> LabelledImages:
        """The ``split`` in [-1, 1] (``signed``) or [0, 1]; ``purpose`` explains a missing-data error."""
        if (split, signed) not in self._splits:
            try:
                self._splits[(split, signed)] = load_split(self.cfg, split, signed)
            except UserError as e:
                if purpose is None:
                    raise
                raise UserError(f"{purpose} needs the {split} data: {e}") from e
        return self._splits[(split, signed)]

    @property
    def resolution(self) -> int:
        return int(self.cfg.image_size)

    @property
    def key(self) -> str:
        """Names the data in cache files: the registry name, plus a hash of the root and class selection for
        folder datasets (the well-known datasets are assumed to be the standard ones whatever their root)."""
        name = str(self.cfg.name)
        if name in _WELL_KNOWN:
            return name
        ident = json.dumps([str(Path(str(self.cfg.root)).resolve()), self.cfg.get("classes_file"),
                            None if self.cfg.get("class_range") is None else list(self.cfg.class_range)])
        return f"{name}-{hashlib.sha1(ident.encode()).hexdigest()[:8]}"


def describe_bn_mode(bn_mode: str, batch_size: int) -> str:
    return ("eval (BN running statistics)" if bn_mode == "eval"
            else f"batch statistics (train-mode BN over each sampling batch of {batch_size})")


def describe_ema(train_cfg: DictConfig, weights: str) -> str:
    """What generator weights were evaluated, for the protocol."""
    if weights == "live":
        return "live generator (no EMA)"
    if choice(train_cfg.ema_buffers) == "live":
        return f"EMA of the parameters (decay {train_cfg.ema_decay:g}) with the live generator's BN statistics"
    return f"EMA of parameters and buffers (decay {train_cfg.ema_decay:g}, hard copies before step {train_cfg.ema_start})"


@contextmanager
def rng_preserved() -> Iterator[None]:
    """Leave the global RNG streams (python, NumPy, torch, CUDA) as they were: building caches or evaluating
    must not change the trajectory of the run around it (data loaders draw their seeds from the global stream)."""
    state = capture_rng()
    try:
        yield
    finally:
        restore_rng(state)


@contextmanager
def sampling_mode(G: nn.Module, bn_mode: str) -> Iterator[nn.Module]:
    """``eval``: G in eval mode. ``batch``: G in train mode (BN uses each batch's statistics); every buffer (BN
    running statistics, spectral-norm vectors) is restored afterwards, so sampling does not change the model."""
    if bn_mode == "eval":
        with eval_mode(G):
            yield G
        return
    saved = {name: b.detach().clone() for name, b in G.named_buffers()}
    was_training = G.training
    G.train()
    try:
        yield G
    finally:
        with torch.no_grad():
            for name, b in G.named_buffers():
                b.copy_(saved[name])
        G.train(was_training)


def evaluation_batches(num_samples: int, batch_size: int, num_classes: int, latent_dim: int, seed: int,
                       env: DistEnv) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(first index, z, labels) of this rank's batches; batch b is drawn from (seed, b) alone, so the samples do
    not depend on the number of processes."""
    for b, start in enumerate(range(0, num_samples, batch_size)):
        if b % env.world_size != env.rank:
            continue
        n = min(batch_size, num_samples - start)
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + b)
        yield start, torch.randn(n, latent_dim, generator=g), torch.randint(0, num_classes, (n,), generator=g)


def _subset(dataset: LabelledImages, count: int | None) -> tuple[Any, int]:
    if count is None or count >= len(dataset):
        return dataset, len(dataset)
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:count].sort().values
    return Subset(dataset, idx.tolist()), int(count)


def reference_statistics(path: Path, compute: Callable[[], tuple[GaussianStats, str]]) -> tuple[FrechetReference,
                                                                                              str]:
    """(reference, description) from the cache file ``path``, computed and cached atomically if missing."""
    if path.is_file():
        with np.load(path) as z:
            return FrechetReference(z["mu"], z["sigma"]), str(z["description"])
    stats, description = compute()
    mu, sigma = stats.mean_cov()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npz")
    np.savez(tmp, mu=mu.cpu().numpy(), sigma=sigma.cpu().numpy(), n=int(stats.n), description=description)
    os.replace(tmp, path)
    log.info("reference statistics cached in %s", path)
    return FrechetReference(mu, sigma), description


class Evaluator:
    """Builds the feature networks and reference statistics once (:meth:`prepare`), then evaluates generators."""

    def __init__(self, cfg: DictConfig, data: DataSource, num_classes: int, device: torch.device,
                 env: DistEnv | None = None) -> None:
        self.cfg, self.e = cfg, cfg.eval
        self.data = data
        self.num_classes = int(num_classes)
        self.device = device
        self.env = env or DistEnv()
        self.cache_dir = Path(str(self.e.cache_dir))
        self.classifier: TrainedClassifier | None = None
        self.classifier_ref: FrechetReference | None = None
        self.classifier_ref_desc = ""
        self.inception: InceptionFeatures | None = None
        self.inception_weights: InceptionWeights | None = None
        self.inception_ref: FrechetReference | None = None
        self.inception_ref_desc = ""
        self.skipped: dict[str, str] = {}
        self._labels: list[str] | None = None

    # -- set-up ----------------------------------------------------------------------------------------------------
    def prepare(self) -> Evaluator:
        """Train/load the classifier, load Inception, compute/load reference statistics (rank 0 first, so the
        other ranks read the cache it wrote)."""
        if not self.env.is_main:
            barrier()
        with rng_preserved():
            self._prepare()
        if self.env.is_main:
            barrier()
        return self

    def _prepare(self) -> None:
        split, count = choice(self.e.reference_split), self.e.reference_count
        tag = f"{split}{'all' if count is None else int(count)}_{self.data.resolution}px"
        if self.e.classifier.enabled:
            self.classifier = get_classifier(self.data, self.e.classifier, self.cache_dir, self.device)
            path = self.cache_dir / f"refstats_{self.data.key}_{tag}_{self.classifier.path.stem}.npz"
            self.classifier_ref, self.classifier_ref_desc = reference_statistics(
                path, lambda: self._real_features("classifier", split, count, path))
        if self.e.inception.enabled:
            try:
                self.inception, self.inception_weights = load_inception(
                    self.e.inception.weights, bool(self.e.inception.download), self.device)
            except InceptionUnavailable as e:
                self.skipped["is"] = self.skipped["fid"] = str(e)
                log.warning("IS/FID skipped: %s", e)
                return
            path = self.cache_dir / f"refstats_{self.data.key}_{tag}_inception-{self.inception_weights.tag}.npz"
            self.inception_ref, self.inception_ref_desc = reference_statistics(
                path, lambda: self._real_features("inception", split, count, path))

    @torch.no_grad()
    def _real_features(self, which: str, split: str, count: int | None, path: Path) -> tuple[GaussianStats, str]:
        """Feature statistics of the real reference images (classifier: [-1, 1]; Inception: uint8 / 255)."""
        dataset = self.data.split(split, signed=which == "classifier",
                                  purpose=f"computing the reference statistics {path} (not cached yet)")
        subset, n = _subset(dataset, count)
        batch = int(self.e.inception.batch_size) if which == "inception" else 500
        stats = GaussianStats(FEATURE_DIM if which == "inception" else self.classifier.model.feature_dim, self.device)
        log.info("computing %s reference statistics on %s %s (%d images)", which, dataset.info.name, split, n)
        for x, _ in DataLoader(subset, batch_size=batch, num_workers=int(self.data.cfg.num_workers)):
            x = x.to(self.device)
            if which == "inception":
                stats.update(self.inception((x * 255).round() / 255)[0])
            else:
                stats.update(self.classifier.model(x)[0])
        return stats, f"{dataset.info.name} {split} ({n} images)"

    # -- evaluation --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, G: nn.Module, step: int, weights: str) -> dict[str, Metric]:
        """Every enabled metric of generator ``G`` (a plain module, not DDP), with its protocol. ``weights``
        describes which weights ``G`` holds (EMA or live, which BN statistics)."""
        e, t0 = self.e, time.time()
        n = int(e.num_samples)
        clf, inc = self.classifier, self.inception
        hits = torch.zeros(2, dtype=torch.float64, device=self.device)
        clf_stats = GaussianStats(clf.model.feature_dim, self.device) if clf else None
        inc_stats = GaussianStats(FEATURE_DIM, self.device) if inc else None
        is_acc = InceptionScoreAccumulator(n, int(e.inception.is_splits), self.device) if inc else None
        with sampling_mode(G, choice(e.bn_mode)):
            for start, z, y in evaluation_batches(n, int(e.batch_size), self.num_classes, G.latent_dim, int(e.seed),
                                                  self.env):
                z, y = z.to(self.device), y.to(self.device)
                fake = G(z, y).float().clamp(-1, 1)
                if clf is not None:
                    features, logits = clf.model(fake)
                    hits += torch.stack([(logits.argmax(1) == y).sum(), torch.tensor(len(y), device=self.device)])
                    clf_stats.update(features)
                if inc is not None:
                    pool, logits = inc(to_uint8(fake).float() / 255)
                    inc_stats.update(pool)
                    is_acc.update(logits, torch.arange(start, start + len(y), device=self.device))
        all_reduce_sum(hits)
        protocol = {"samples": n, "labels": "uniform random", "sample_seed": int(e.seed),
                    "bn_mode": describe_bn_mode(choice(e.bn_mode), int(e.batch_size)), "weights": weights,
                    "step": int(step)}
        metrics: dict[str, Metric] = {}
        if clf is not None:
            clf_stats.all_reduce()
            info = {"features": clf.description, "classifier_test_acc": round(clf.test_acc, 2)}
            metrics["class_acc"] = Metric(float(100 * hits[0] / hits[1]), {**protocol, **info}, clf.stand_in)
            fd = self.classifier_ref.distance(*clf_stats.mean_cov())
            metrics["fd_classifier"] = Metric(fd, {**protocol, **info, "reference": self.classifier_ref_desc,
                                                   "feature_dim": clf.model.feature_dim}, clf.stand_in)
        if inc is not None:
            inc_stats.all_reduce()
            is_acc.all_reduce()
            w = self.inception_weights
            common = {**protocol, "features": w.description, "to_uint8": "truncation of 127.5x+127.5 (official)",
                      "resize": "bilinear to 299, align_corners=False (pytorch-fid)"}
            is_mean, is_std = is_acc.result()
            is_proto = {**common, "logits": "1008, pool3·fc.weightᵀ without bias", "splits": int(e.inception.is_splits)}
            metrics["is"] = Metric(is_mean, {**is_proto, "std_over_splits": round(is_std, 4)}, w.stand_in)
            metrics["is_std"] = Metric(is_std, is_proto, w.stand_in)
            fid = self.inception_ref.distance(*inc_stats.mean_cov())
            metrics["fid"] = Metric(fid, {**common, "reference": self.inception_ref_desc, "feature": "pool3 (2048)"},
                                    w.stand_in)
        log.info("evaluated %d samples at step %d in %.1f s: %s", n, step, time.time() - t0,
                 ", ".join(f"{k} {m.value:.4g}" for k, m in metrics.items() if m.value is not None))
        return metrics

    # -- pictures ------------------------------------------------------------------------------------------------
    def grid_classes(self) -> list[int]:
        """Rows of the sample grid: ``grid_max_classes`` classes evenly spaced over all classes."""
        k = self.num_classes
        rows = min(k, int(self.e.grid_max_classes))
        return sorted(set(np.linspace(0, k - 1, rows).round().astype(int).tolist()))

    def row_labels(self, classes: list[int]) -> list[str]:
        if self._labels is None:
            try:
                self._labels = class_names(self.data.split("train"))
            except UserError:  # no data at hand: label the rows by class id
                self._labels = [str(i) for i in range(self.num_classes)]
        return [f"{c}: {self._labels[c]}" if self._labels[c] != str(c) else str(c) for c in classes]

    @torch.no_grad()
    def save_grid(self, G: nn.Module, path: str | os.PathLike, classes: list[int] | None = None) -> Path:
        """A PNG with one row per grid class and ``grid_per_class`` samples each; column j uses the same z in every
        row (so rows differ only by the class) and the same z at every evaluation. Written by rank 0. ``classes``:
        the rows (default :meth:`grid_classes`)."""
        classes, cols = classes or self.grid_classes(), int(self.e.grid_per_class)
        g = torch.Generator().manual_seed(int(self.e.seed) + 7919)
        z = torch.randn(cols, G.latent_dim, generator=g).repeat(len(classes), 1).to(self.device)
        y = torch.tensor(classes).repeat_interleave(cols).to(self.device)
        with sampling_mode(G, choice(self.e.bn_mode)):
            images = G(z, y).float()  # on every rank: batch-statistics BN may be synchronised across them
        if not self.env.is_main:
            return Path(path)
        return save_class_grid(images, len(classes), cols, self.row_labels(classes), path)
