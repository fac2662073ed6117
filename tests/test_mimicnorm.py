"""MimicNorm in the library: weight mean, its re-parameterisation, the last BN, and converting BN networks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import sabn
from sabn import mimicnorm as mn


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),                 # fan-in 27: skipped by the CIFAR rule
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),                # fan-in 72: centred
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),    # depthwise, fan-in 9: skipped by both rules
        nn.Conv2d(16, 8, 1), nn.ReLU(),                           # fan-in 16: skipped by the CIFAR rule only
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    )


def filter_means(conv: nn.Conv2d) -> torch.Tensor:
    return conv.weight.detach().mean(dim=(1, 2, 3))


@pytest.mark.parametrize(("rule", "centred"), [("fan_in>50", {2}), ("groups==1", {0, 2, 6}), ("all", {0, 2, 4, 6})])
def test_weight_mean_centres_exactly_the_selected_filters(rule, centred):
    net = small_net()
    before = {i: m.weight.detach().clone() for i, m in enumerate(net) if isinstance(m, nn.Conv2d)}
    assert mn.weight_mean_(net, rule) == len(centred)
    for i, w in before.items():
        conv = net[i]
        if i in centred:
            assert filter_means(conv).abs().max() < 1e-6
            torch.testing.assert_close(conv.weight - w, -w.mean(dim=(1, 2, 3), keepdim=True).expand_as(w))
        else:
            assert torch.equal(conv.weight, w), f"conv {i} must stay untouched"
    assert net[10].weight.mean().abs() > 0  # Linear layers are never centred


def train(net, opt, steps=25):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 3, 8, 8, generator=g)
        y = torch.randint(0, 5, (16,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=5e-4),
    lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
])
def test_projection_and_reparameterisation_agree_under_sgd(make_opt):
    a, b = small_net(), small_net()
    mn.weight_mean_(a)
    mn.weight_mean_(b)  # same centred starting point
    opt_a = make_opt(a.parameters())
    mn.project_after_steps(opt_a, a)
    mn.parametrize_weight_mean(b)
    train(a, opt_a)
    train(b, make_opt(b.parameters()))
    for ca, cb in zip(mn.selected_convs(a), mn.selected_convs(b)):
        torch.testing.assert_close(ca.weight, cb.weight, atol=1e-6, rtol=1e-5)
        assert filter_means(cb).abs().max() < 1e-6


def test_projection_and_reparameterisation_differ_under_adam():
    a, b = small_net(), small_net()
    mn.weight_mean_(a)
    mn.weight_mean_(b)
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2)
    mn.project_after_steps(opt_a, a)
    mn.parametrize_weight_mean(b)
    train(a, opt_a)
    train(b, torch.optim.Adam(b.parameters(), lr=1e-2))
    gap = max((ca.weight - cb.weight).abs().max().item() for ca, cb in zip(mn.selected_convs(a), mn.selected_convs(b)))
    assert gap > 1e-3  # documented: adaptive optimisers break the equivalence


def test_last_bn_normalises_the_logits():
    bn = mn.last_bn(7)
    logits = torch.randn(64, 7) * 5 + 3
    out = bn(logits)
    torch.testing.assert_close(out.mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(0, unbiased=False), torch.ones(7), atol=1e-3, rtol=0)
    assert not bn.affine and bn.running_mean.abs().sum() > 0


@pytest.mark.parametrize(("arch", "blocks", "k"), [("resnet18", 8, 2), ("resnet50", 16, 3)])
def test_convert_torchvision_resnet_removes_every_intermediate_bn(arch, blocks, k):
    model = getattr(torchvision.models, arch)(num_classes=10)
    sabn.convert(model, "mimicnorm", num_classes=10)
    assert not mn.has_intermediate_bn(model)
    assert isinstance(model.fc, nn.Sequential) and isinstance(model.fc[1], nn.BatchNorm1d)
    scales = [m for m in model.modules() if isinstance(m, mn.ResidualScale)]
    shortcut = [m for m in scales if m.scale.item() == pytest.approx(1.2)]
    assert len(scales) == blocks + len(shortcut) and len(shortcut) == (3 if arch == "resnet18" else 4)
    last_block_scale = [m for m in scales if m not in shortcut][-1]
    assert last_block_scale.scale.item() == pytest.approx(1.2**k / blocks)
    assert model.conv1.bias is not None and model.layer1[0].conv1.bias is not None
    for conv in mn.selected_convs(model):
        assert filter_means(conv).abs().max() < 1e-6
    assert model.conv1 in mn.selected_convs(model)  # the 7x7 RGB stem has fan-in 147 > 50: centred
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    mn.project_after_steps(opt, model)
    x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 10, (4,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert all(filter_means(c).abs().max() < 1e-6 for c in mn.selected_convs(model))


def test_convert_ablations_and_errors():
    model = torchvision.models.resnet18(num_classes=4)
    mn.to_mimicnorm(model, 4, weight_mean=False, last=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())
    with pytest.raises(ValueError, match="num_classes"):
        sabn.convert(torchvision.models.resnet18(), "mimicnorm")
    with pytest.raises(ValueError, match="no BatchNorm"):
        mn.to_mimicnorm(nn.Sequential(nn.Linear(2, 2)), 2)
    with pytest.raises(ValueError, match="unknown weight-mean rule"):
        mn.weight_mean_(small_net(), "fan_in>10")
    assert mn.branch_scale_init(2, 4) == pytest.approx(1.44 / 4)
    assert mn.branch_scale_init(2, 4, "paper") == pytest.approx(0.5)
