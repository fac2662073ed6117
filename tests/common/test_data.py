"""The dataset registry through the real loaders, and the resumable batch stream."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from tasks.common.data import BatchStream, EpochSampler, build_dataset, eval_loader, split_indices
from tasks.common.errors import UserError
from tasks.common.runtime import DistEnv


def test_cifar10_fixture_reads_through_torchvision(cifar10_root):
    train = build_dataset("cifar10", str(cifar10_root), "train")
    test = build_dataset("cifar10", str(cifar10_root), "test")
    assert len(train) == 100 and len(test) == 40
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert 0 <= y < 10 and train.info.num_classes == 10


def test_cifar100_fixture_reads_through_torchvision(cifar100_root):
    train = build_dataset("cifar100", str(cifar100_root), "train", image_size=16)
    assert len(train) == 200 and train.info.num_classes == 100
    assert train[3][0].shape == (3, 16, 16)


def test_missing_cifar_names_the_fix(tmp_path):
    with pytest.raises(UserError, match="CIFAR-100 not found: expected the extracted 'cifar-100-python' folder"):
        build_dataset("cifar100", str(tmp_path), "train")
    with pytest.raises(UserError, match="unknown dataset 'cifar'; valid: .*cifar10"):
        build_dataset("cifar", str(tmp_path))


def test_digits_are_real_embedded_data_with_a_fixed_split():
    train, test = build_dataset("digits", "", "train"), build_dataset("digits", "", "test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    x, _ = train[0]
    assert x.shape == (3, 32, 32) and 0 <= x.min() and x.max() <= 1
    counts = torch.bincount(torch.tensor(test.targets), minlength=10)
    assert counts.min() >= 35  # stratified
    again = build_dataset("digits", "", "test")
    assert torch.equal(again[5][0], test[5][0])


def test_image_folder_with_split_and_class_filter(tmp_path):
    for split in ("train", "test"):
        for cls in ("cat", "dog", "fish"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), color=(i * 50, 100, 150)).save(folder / f"{i}.png")
    ds = build_dataset("imagefolder", str(tmp_path), "train", image_size=16, classes=["fish", "cat"])
    assert len(ds) == 4 and ds.info.num_classes == 2
    assert sorted(set(ds.targets)) == [0, 1] and ds[0][0].shape == (3, 16, 16)
    with pytest.raises(UserError, match="class folders missing"):
        build_dataset("imagefolder", str(tmp_path), "train", classes=["bird"])


def _batches(stream, n):
    return [next(stream) for _ in range(n)]


def test_stream_resumes_mid_epoch_with_identical_batches_and_augmentations():
    ds = build_dataset("digits", "", "train", transform=v2.Compose([v2.RandomCrop(32, padding=4),
                                                                    v2.RandomHorizontalFlip()]))
    ref = BatchStream(ds, 100, DistEnv(), seed=3)
    expected = _batches(ref, 20)  # crosses the epoch boundary (14 batches per epoch)
    part = BatchStream(ds, 100, DistEnv(), seed=3)
    _batches(part, 9)
    resumed = BatchStream(ds, 100, DistEnv(), seed=3)
    resumed.load_state_dict(part.state_dict())
    got = _batches(resumed, 11)
    for (xe, ye), (xg, yg) in zip(expected[9:], got):
        assert torch.equal(ye, yg) and torch.equal(xe, xg)


def test_workers_do_not_change_the_batches():
    ds = build_dataset("digits", "", "train", transform=v2.RandomHorizontalFlip())
    a = _batches(BatchStream(ds, 64, DistEnv(), seed=1), 5)
    b = _batches(BatchStream(ds, 64, DistEnv(), seed=1, num_workers=2), 5)
    assert all(torch.equal(xa, xb) for (xa, _), (xb, _) in zip(a, b))


def test_sharded_batches_union_to_the_single_process_batch():
    single = EpochSampler(100, True, 7, DistEnv()).indices()
    r0 = EpochSampler(100, True, 7, DistEnv(0, 2, 0)).indices()
    r1 = EpochSampler(100, True, 7, DistEnv(1, 2, 1)).indices()
    local = 10
    for t in range(5):
        assert sorted(r0[t * local:(t + 1) * local] + r1[t * local:(t + 1) * local]) == sorted(
            single[t * 2 * local:(t + 1) * 2 * local])


def test_eval_loader_covers_every_sample_once_over_ranks():
    ds = build_dataset("digits", "", "test")
    seen = []
    for rank in range(3):
        for _, y in eval_loader(ds, 50, DistEnv(rank, 3, rank)):
            seen += y.tolist()
    assert sorted(seen) == sorted(ds.targets)


def test_bad_batch_settings():
    ds = build_dataset("digits", "", "test")
    with pytest.raises(UserError, match="not divisible"):
        BatchStream(ds, 65, DistEnv(0, 2, 0), seed=0)
    with pytest.raises(UserError, match="smaller than one batch"):
        BatchStream(ds, 1000, DistEnv(), seed=0)
    assert split_indices(10, 3, 0) == split_indices(10, 3, 0)
    with pytest.raises(UserError):
        split_indices(10, 10, 0)


def test_norm_factory_builds_every_registered_norm_from_its_config():
    import sabn
    from tasks.common.app import compose_config
    from tasks.common.norms import norm_factory

    for name in sabn.norm_names():
        cfg = compose_config("cls", [f"norm={name}"])
        layer = norm_factory(cfg.norm, num_conditions=3)(8)
        assert layer is not None
        if name in ("sabn", "saauxbn", "sain"):
            assert layer.shared_init_std == cfg.norm.shared_init_std


def test_opening_an_epoch_leaves_the_global_rng_alone():
    ds = build_dataset("digits", "", "test")
    stream = BatchStream(ds, 50, DistEnv(), seed=0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for _ in range(10):  # crosses epoch boundaries (7 batches per epoch)
        next(stream)
    assert torch.equal(torch.rand(3), expected)
