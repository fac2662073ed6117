"""Drop-in conversion, feeding conditions, inference folding and SyncBatchNorm conversion."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import sabn


def trained_resnet18(num_classes: int = 10) -> nn.Module:
    """A torchvision resnet18 whose BN layers hold non-trivial statistics and affines."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
        model.train()
        for _ in range(2):
            model(torch.randn(8, 3, 32, 32))
    return model.eval()


@pytest.mark.parametrize("variant", ["ccbn", "sabn", "auxbn", "saauxbn"])
def test_convert_resnet18_preserves_outputs_for_every_condition(variant):
    model = trained_resnet18()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    sabn.convert(model, variant, num_conditions=3)
    layers = sabn.conditional_layers(model)
    assert len(layers) == n_bn == 20
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules() if m not in _inner_bns(model))
    with torch.no_grad():
        for y in (0, 2, torch.tensor([0, 1, 2, 1])):
            with sabn.conditioned(model, y):
                torch.testing.assert_close(model(x), before, atol=1e-5, rtol=1e-5)
    # training mode too: batch statistics do not depend on the affine split
    model.train()
    ref = trained_resnet18().train()
    with torch.no_grad(), sabn.conditioned(model, 1):
        torch.testing.assert_close(model(x), ref(x), atol=1e-4, rtol=1e-4)


def _inner_bns(model: nn.Module) -> set[nn.Module]:
    inner = set()
    for layer in sabn.conditional_layers(model):
        inner |= {m for m in layer.modules() if m is not layer}
    return inner


def test_converted_resnet18_trains():
    model = sabn.convert(trained_resnet18(), "sabn", num_conditions=2).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    cond = torch.randint(0, 2, (16,))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        with sabn.conditioned(model, cond):
            loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    layer = sabn.conditional_layers(model)[0]
    assert layer.embed.weight.grad is not None and layer.bn.weight.grad is not None
    assert losses[-1] < losses[0]


def test_convert_rejects_unknown_variant_and_models_without_bn():
    with pytest.raises(ValueError, match="valid: ccbn, sabn, auxbn, saauxbn, mimicnorm"):
        sabn.convert(nn.BatchNorm2d(3), "xbn", 2)
    with pytest.raises(ValueError, match="no BatchNorm"):
        sabn.convert(nn.Linear(3, 3), "sabn", 2)


def test_convert_handles_batchnorm1d_and_a_bare_layer():
    mlp = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 2))
    mlp.train()
    mlp(torch.randn(10, 5))
    mlp.eval()
    x = torch.randn(6, 5)
    before = mlp(x)
    sabn.convert(mlp, "saauxbn", 2)
    with sabn.conditioned(mlp, 1):
        torch.testing.assert_close(mlp(x), before)
    assert isinstance(sabn.convert(nn.BatchNorm2d(4), "ccbn", 3), sabn.CategoricalConditionalBatchNorm2d)


def test_conditioned_restores_previous_condition_even_on_error():
    model = nn.Sequential(sabn.SandwichBatchNorm2d(3, 4), sabn.AuxBatchNorm2d(3, 4))
    sabn.set_condition(model, 2)
    with pytest.raises(RuntimeError), sabn.conditioned(model, 3):
        assert all(m._condition == 3 for m in sabn.conditional_layers(model))
        raise RuntimeError("boom")
    assert all(m._condition == 2 for m in sabn.conditional_layers(model))
    # an explicit condition beats the stored one
    layer = model[0].eval()
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(layer(x, 1), layer(x, torch.tensor([1, 1])))
    assert not torch.allclose(layer(x, 1), layer(x))


@pytest.mark.parametrize("name", ["sabn", "saauxbn"])
def test_fold_is_exact_in_eval_mode(name):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), sabn.build_norm(name, 8, num_conditions=5), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), sabn.build_norm(name, 8, num_conditions=5),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(10, 3, 6, 6)
    y = torch.randint(0, 5, (10,))
    for k in range(5):  # give every branch statistics
        with sabn.conditioned(model, k):
            model(x + k)
    model.eval()
    with torch.no_grad(), sabn.conditioned(model, y):
        before = model(x)
    sabn.fold(model)
    expected_type = sabn.CategoricalConditionalBatchNorm2d if name == "sabn" else sabn.AuxBatchNorm2d
    assert all(type(m) is expected_type for m in sabn.conditional_layers(model))
    assert not any(isinstance(m, (sabn.SandwichBatchNorm2d, sabn.SandwichAuxBatchNorm2d)) for m in model.modules())
    with torch.no_grad(), sabn.conditioned(model, y):
        after = model(x)
    assert (after - before).abs().max().item() < 1e-6 * max(1.0, before.abs().max().item())


def test_sync_batchnorm_conversion_reaches_inner_and_per_branch_statistics():
    model = nn.Sequential(
        sabn.SandwichBatchNorm2d(4, 3), sabn.CategoricalConditionalBatchNorm2d(4, 3),
        sabn.SandwichAuxBatchNorm2d(4, 2), sabn.AuxBatchNorm2d(4, 2),
    )
    x = torch.randn(6, 4, 3, 3)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    ref = [m.state_dict() for m in model]
    with sabn.conditioned(model, y):
        expected = model(x)
    for m, sd in zip(model, ref):
        m.load_state_dict(sd)
    keys = set(model.state_dict())
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    inner = [m for m in synced.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(inner) == 1 + 1 + 2 + 2
    assert not any(type(m) is nn.BatchNorm2d for m in synced.modules())
    assert set(synced.state_dict()) == keys
    # without a process group SyncBatchNorm computes plain BN: same outputs as before conversion
    with sabn.conditioned(synced, y):
        torch.testing.assert_close(synced(x), expected)
