"""Which samples feed the w-step, the α-step and the supernet accuracy; the per-epoch schedule; the two steps."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from tasks.common.data import build_dataset
from tasks.nas.data import (
    IMAGENET16_MEAN,
    SplitFileError,
    build_search_data,
    write_fake_imagenet16,
    write_split_file,
)
from tasks.nas.search import alpha_step, cosine_lr, optimizers, start_epoch, weight_step
from tasks.nas.supernet import NB201SuperNet

EVENS, ODDS = list(range(0, 100, 2)), list(range(1, 100, 2))


def same_image(a: torch.Tensor, b: torch.Tensor, mean, std) -> bool:
    expected = (b - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return torch.allclose(a, expected, atol=1e-6)


def test_cifar10_searches_on_the_train_half_and_tunes_alpha_on_the_valid_half(tmp_path, cifar10_root):
    write_split_file(tmp_path / "cifar-split.txt", {"train": EVENS, "valid": ODDS})
    data = build_search_data("cifar10", str(cifar10_root), 32, tmp_path)
    train = build_dataset("cifar10", str(cifar10_root), "train")
    assert data.info.name == "CIFAR-10"
    assert data.weights.indices == EVENS and data.arch.indices == ODDS and data.valid.indices == ODDS
    assert data.weights.dataset is data.arch.dataset  # α samples come from the train set, as NB201's cifar10-valid
    x, y = data.valid[3]
    assert y == train[ODDS[3]][1] and same_image(x, train[ODDS[3]][0], data.info.mean, data.info.std)
    assert "`valid` half of cifar-split.txt (50 images)" in data.protocol["alpha_data"]


def test_cifar100_tunes_alpha_on_the_xvalid_half_of_the_test_set(tmp_path, cifar100_root):
    write_split_file(tmp_path / "cifar100-test-split.txt", {"xvalid": ODDS, "xtest": EVENS})
    data = build_search_data("cifar100", str(cifar100_root), 32, tmp_path)
    test = build_dataset("cifar100", str(cifar100_root), "test")
    assert data.info.name == "CIFAR-100" and len(data.weights) == 200  # w on the whole train set
    assert data.arch.indices == ODDS and len(data.arch.dataset) == len(test) == 100
    x, y = data.valid[0]
    assert y == test[1][1] and same_image(x, test[1][0], data.info.mean, data.info.std)
    # the α samples get the search augmentation (flip + crop 32 pad 4): some crops differ from the plain image
    torch.manual_seed(0)
    assert any(not torch.equal(data.arch[i][0], data.valid[i][0]) for i in range(8))


def test_imagenet16_120_uses_its_val_split_and_nb201_statistics(tmp_path):
    write_fake_imagenet16(tmp_path / "ImageNet16")  # val_data keeps 5 of its 8 images (labels <= 120)
    write_split_file(tmp_path / "imagenet-16-120-test-split.txt", {"xvalid": [0, 2, 4], "xtest": [1, 3]})
    data = build_search_data("imagenet16-120", str(tmp_path), 16, tmp_path)
    assert data.info.name == "ImageNet16-120" and data.info.num_classes == 120
    assert data.info.mean == IMAGENET16_MEAN
    assert len(data.weights) == 50 and data.arch.indices == [0, 2, 4]
    assert tuple(data.arch[0][0].shape) == (3, 16, 16)  # crop 16, padding 2


def test_datasets_without_split_files_hold_out_a_fixed_half_for_alpha(tmp_path):
    data = build_search_data("digits", "", 16, tmp_path / "no-splits-needed", flip=False)
    w, a = set(data.weights.indices), set(data.arch.indices)
    assert not w & a and len(w | a) == 1437 and abs(len(w) - len(a)) <= 1
    assert build_search_data("digits", "", 16, tmp_path).arch.indices == data.arch.indices


def test_a_missing_split_file_is_a_clear_error(tmp_path, cifar100_root):
    with pytest.raises(SplitFileError, match=r"cifar100-test-split\.txt"):
        build_search_data("cifar100", str(cifar100_root), 32, tmp_path / "nowhere")


# --- schedule and steps -----------------------------------------------------------------------------------------

T = OmegaConf.create({"algorithm": "darts", "lr": 0.025, "lr_min": 0.001, "epochs": 50, "momentum": 0.9,
                      "nesterov": True, "weight_decay": 5e-4, "arch_lr": 3e-4, "arch_betas": [0.5, 0.999],
                      "arch_eps": 1e-8, "arch_weight_decay": 1e-3, "tau_max": 10.0, "tau_min": 0.1,
                      "unrolled_r": 0.01})


def tiny(algorithm: str = "darts", norm: str = "sabn") -> NB201SuperNet:
    torch.manual_seed(0)
    return NB201SuperNet(channels=4, num_cells=1, num_classes=3, norm=norm, algorithm=algorithm)


def test_cosine_schedule_and_gdas_temperature_are_set_per_epoch():
    assert cosine_lr(0, T) == pytest.approx(0.025)
    assert cosine_lr(25, T) == pytest.approx(0.013)
    assert cosine_lr(34, T) == pytest.approx(0.00657, abs=1e-5)  # the last epoch of the 35-epoch search
    model = tiny("gdas")
    w_opt, _ = optimizers(model, T)
    start_epoch(model, w_opt, 49, T)
    assert model.tau == pytest.approx(0.1) and w_opt.param_groups[0]["lr"] == pytest.approx(cosine_lr(49, T))


def test_weight_step_moves_only_the_weights_and_clips_their_gradient():
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    deltas = {}
    for clip in (None, 1e-6):
        model = tiny()
        w_opt, _ = optimizers(model, OmegaConf.merge(T, {"weight_decay": 0.0}))
        before = [p.detach().clone() for p in model.weight_parameters()]
        alpha = model.arch_parameters.detach().clone()
        loss, correct = weight_step(model, w_opt, x, y, clip)
        assert torch.equal(model.arch_parameters, alpha) and model.arch_parameters.grad is None
        assert 0 <= int(correct) <= 4 and torch.isfinite(loss)
        deltas[clip] = sum(float((p.detach() - b).norm()) for p, b in zip(model.weight_parameters(), before))
    assert deltas[None] > 1e-3 and deltas[1e-6] < 1e-6


@pytest.mark.parametrize("algorithm", ["darts", "darts_v2"])
def test_alpha_step_moves_only_alpha(algorithm):
    model = tiny()
    t = OmegaConf.merge(T, {"algorithm": algorithm})
    w_opt, a_opt = optimizers(model, t)
    batch = (torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
    weight_step(model, w_opt, *batch, 5.0)  # momentum buffers for the virtual step
    weights = [p.detach().clone() for p in model.weight_parameters()]
    alpha = model.arch_parameters.detach().clone()
    loss = alpha_step(model, a_opt, w_opt, batch, (torch.randn(4, 3, 8, 8), torch.tensor([2, 1, 0, 1])), t)
    assert torch.isfinite(loss) and not torch.equal(model.arch_parameters, alpha)
    assert all(torch.equal(p, b) for p, b in zip(model.weight_parameters(), weights))
