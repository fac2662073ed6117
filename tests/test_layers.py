"""The sabn layers against their formulas written out independently here, plus train/eval and state behaviour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sabn

EPS = 1e-5


def bn_hat(x: torch.Tensor) -> torch.Tensor:
    """Batch-normalised x with batch statistics over N, H, W (biased variance, as BN in training mode)."""
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS)


def in_hat(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean((2, 3), keepdim=True)
    var = x.var((2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS)


def col(v: torch.Tensor, ndim: int = 4) -> torch.Tensor:
    """(C,) or (N, C) -> broadcastable over (N, C, H, W)."""
    lead = v.shape if v.dim() == 2 else (1, v.shape[0])
    return v.reshape(*lead, *([1] * (ndim - 2)))


def randomize(layer: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter a non-trivial value so formulas are checked away from the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.dim() == 1 else 0.3))
    return layer


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(12, 6, 5, 4, generator=torch.Generator().manual_seed(1)) * 2 + 0.5


Y = torch.tensor([0, 1, 2, 0, 1, 2, 2, 2, 0, 1, 0, 0])


def test_ccbn_matches_formula(x):
    layer = randomize(sabn.CategoricalConditionalBatchNorm2d(6, 3))
    g, b = layer.embed.weight[:, :6], layer.embed.weight[:, 6:]
    expected = col(g[Y]) * bn_hat(x) + col(b[Y])
    torch.testing.assert_close(layer(x, Y), expected, atol=1e-5, rtol=1e-5)


def test_sabn_matches_formula(x):
    layer = randomize(sabn.SandwichBatchNorm2d(6, 3))
    g, b = layer.embed.weight[:, :6], layer.embed.weight[:, 6:]
    gs, bs = layer.bn.weight, layer.bn.bias
    expected = col(g[Y]) * (col(gs) * bn_hat(x) + col(bs)) + col(b[Y])
    torch.testing.assert_close(layer(x, Y), expected, atol=1e-5, rtol=1e-5)
    # an int condition means the whole batch uses it
    y2 = torch.full((12,), 2)
    torch.testing.assert_close(layer(x, 2), layer(x, y2), atol=1e-6, rtol=1e-6)


def test_auxbn_matches_formula_with_per_branch_statistics(x):
    layer = randomize(sabn.AuxBatchNorm2d(6, 3))
    out = layer(x, Y)
    for k in range(3):
        idx = Y == k
        bn = layer.bn_list[k]
        expected = col(bn.weight) * bn_hat(x[idx]) + col(bn.bias)
        torch.testing.assert_close(out[idx], expected, atol=1e-5, rtol=1e-5)


def test_saauxbn_matches_formula_with_per_branch_statistics(x):
    layer = randomize(sabn.SandwichAuxBatchNorm2d(6, 3))
    g, b = layer.embed.weight[:, :6], layer.embed.weight[:, 6:]
    out = layer(x, Y)
    for k in range(3):
        idx = Y == k
        expected = g[k].view(1, -1, 1, 1) * (
            col(layer.shared_weight) * bn_hat(x[idx]) + col(layer.shared_bias)
        ) + b[k].view(1, -1, 1, 1)
        torch.testing.assert_close(out[idx], expected, atol=1e-5, rtol=1e-5)
    # whole batch through one branch
    expected = col(g[1]) * (col(layer.shared_weight) * bn_hat(x) + col(layer.shared_bias)) + col(b[1])
    torch.testing.assert_close(layer(x, 1), expected, atol=1e-5, rtol=1e-5)


def test_sain_matches_formula(x):
    layer = randomize(sabn.SandwichInstanceNorm2d(6, 3))
    g, b = layer.embed.weight[:, :6], layer.embed.weight[:, 6:]
    expected = col(g[Y]) * (col(layer.shared_weight) * in_hat(x) + col(layer.shared_bias)) + col(b[Y])
    torch.testing.assert_close(layer(x, Y), expected, atol=1e-5, rtol=1e-5)


def test_adain_and_saadain_match_formula(x):
    style = torch.randn(12, 6, 3, 7) * 3 - 1
    c_mean, c_std = x.mean((2, 3), keepdim=True), (x.var((2, 3), keepdim=True) + EPS).sqrt()
    s_mean, s_std = style.mean((2, 3), keepdim=True), (style.var((2, 3), keepdim=True) + EPS).sqrt()
    expected = s_std * (x - c_mean) / c_std + s_mean
    torch.testing.assert_close(sabn.adaptive_instance_norm(x, style), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sabn.build_norm("adain", 6)(x, style), expected, atol=1e-5, rtol=1e-5)

    layer = randomize(sabn.SandwichAdaIN(6))
    sa = col(layer.shared_weight) * (x - c_mean) / c_std + col(layer.shared_bias)
    torch.testing.assert_close(layer(x, style), s_std * sa + s_mean, atol=1e-5, rtol=1e-5)


def test_adain_output_has_the_style_statistics(x):
    style = torch.randn(12, 6, 8, 8) * 4 + 3
    out = sabn.adaptive_instance_norm(x, style)
    torch.testing.assert_close(out.mean((2, 3)), style.mean((2, 3)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.std((2, 3)), style.std((2, 3)), atol=1e-3, rtol=1e-3)


def test_saadain_initialised_to_adain(x):
    style = torch.randn(12, 6, 4, 4)
    layer = sabn.SandwichAdaIN(6)
    assert torch.equal(layer.shared_weight, torch.ones(6)) and torch.equal(layer.shared_bias, torch.zeros(6))
    torch.testing.assert_close(layer(x, style), sabn.adaptive_instance_norm(x, style))


def test_sabn_with_one_condition_and_identity_affine_equals_bn(x):
    layer = sabn.SandwichBatchNorm2d(6, 1)
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        layer.embed.weight[:, :6] = 1.0
        layer.embed.weight[:, 6:] = 0.0
        bn.weight.copy_(layer.bn.weight)
        bn.bias.copy_(layer.bn.bias)
    torch.testing.assert_close(layer(x), bn(x))  # K=1 needs no condition
    torch.testing.assert_close(layer.bn.running_mean, bn.running_mean)
    layer.eval()
    bn.eval()
    torch.testing.assert_close(layer(x, 0), bn(x))


@pytest.mark.parametrize("shape", [(10, 6), (10, 6, 7), (10, 6, 3, 4), (10, 6, 2, 3, 4)])
@pytest.mark.parametrize("name", ["ccbn", "sabn", "auxbn", "saauxbn"])
def test_bn_layers_accept_any_rank_like_batchnorm(name, shape):
    x = torch.randn(*shape)
    y = torch.tensor([0, 1] * 5)
    layer = randomize(sabn.build_norm(name, 6, num_conditions=2))
    out = layer(x, y)
    assert out.shape == x.shape
    # flattening the spatial dims must be exact: compare with the explicit 4-D call
    ref = randomize(sabn.build_norm(name, 6, num_conditions=2))
    expected = ref(x.reshape(10, 6, -1, 1), y).reshape(shape)
    torch.testing.assert_close(out, expected)


def test_eval_mode_uses_running_statistics(x):
    layer = randomize(sabn.SandwichBatchNorm2d(6, 3))
    for _ in range(3):
        layer(x * 1.5 + 2, Y)
    layer.eval()
    rm, rv = layer.bn.running_mean, layer.bn.running_var
    xhat = (x - col(rm)) / torch.sqrt(col(rv) + EPS)
    g, b = layer.embed.weight[:, :6], layer.embed.weight[:, 6:]
    expected = col(g[Y]) * (col(layer.bn.weight) * xhat + col(layer.bn.bias)) + col(b[Y])
    before = rm.clone()
    torch.testing.assert_close(layer(x, Y), expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(layer.bn.running_mean, before), "eval must not move running statistics"


@pytest.mark.parametrize("name", ["auxbn", "saauxbn"])
def test_only_the_active_branch_statistics_move(name, x):
    layer = sabn.build_norm(name, 6, num_conditions=3)
    layer(x, 1)
    means = [bn.running_mean for bn in layer.bn_list]
    assert torch.count_nonzero(means[0]) == 0 and torch.count_nonzero(means[2]) == 0
    assert torch.count_nonzero(means[1]) > 0
    torch.testing.assert_close(means[1], 0.1 * x.mean((0, 2, 3)))
    # per-sample ids: branch 0 and 1 present, branch 2 absent
    layer2 = sabn.build_norm(name, 6, num_conditions=3)
    y = torch.tensor([0, 1] * 6)
    layer2(x, y)
    assert layer2.bn_list[2].num_batches_tracked.item() == 0
    torch.testing.assert_close(layer2.bn_list[0].running_mean, 0.1 * x[y == 0].mean((0, 2, 3)))
    torch.testing.assert_close(layer2.bn_list[1].running_mean, 0.1 * x[y == 1].mean((0, 2, 3)))


@pytest.mark.parametrize("name", ["ccbn", "sabn", "auxbn", "saauxbn", "sain"])
def test_state_dict_round_trip(name, x):
    a = randomize(sabn.build_norm(name, 6, num_conditions=3), seed=3)
    a(x, Y)
    b = sabn.build_norm(name, 6, num_conditions=3)
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    torch.testing.assert_close(a(x, Y), b(x, Y), rtol=0, atol=0)


def test_float64_gradcheck_sabn_and_saauxbn():
    x = torch.randn(6, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    for name in ("sabn", "saauxbn", "ccbn", "sain"):
        layer = randomize(sabn.build_norm(name, 3, num_conditions=2)).double()
        assert torch.autograd.gradcheck(lambda inp, layer=layer: layer(inp, y), (x,), eps=1e-6, atol=1e-5)
        # gradients with respect to the parameters, through a functional call
        names = [n for n, _ in layer.named_parameters()]
        ps = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())

        def fparams(*ps, layer=layer, names=names):
            return torch.func.functional_call(layer, dict(zip(names, ps)), (x.detach(), y))

        assert torch.autograd.gradcheck(fparams, ps, eps=1e-6, atol=1e-5)


def test_layers_follow_input_device_and_dtype(x):
    layer = sabn.SandwichBatchNorm2d(6, 3).double()
    out = layer(x.double(), Y)
    assert out.dtype == torch.float64
    # half-precision activations with float parameters (what autocast produces) stay half precision
    layer = sabn.SandwichBatchNorm2d(6, 3)
    out = layer(x.bfloat16(), Y)
    assert out.dtype == torch.bfloat16


# --- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ccbn", "sabn", "auxbn", "saauxbn", "sain"])
def test_bad_conditions_raise_clear_errors(name, x):
    layer = sabn.build_norm(name, 6, num_conditions=3)
    with pytest.raises(ValueError, match=r"condition id 3 is out of range \[0, 3\)"):
        layer(x, torch.tensor([0] * 11 + [3]))
    with pytest.raises(ValueError, match=r"condition id -1 is out of range"):
        layer(x, -1)
    with pytest.raises(ValueError, match=r"condition id 5 is out of range"):
        layer(x, 5)
    with pytest.raises(ValueError, match=r"shape \(5,\) but the batch has 12 samples"):
        layer(x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="integer ids"):
        layer(x, torch.zeros(12))
    with pytest.raises(ValueError, match="needs a condition"):
        layer(x)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 6, ...\)"):
        layer(torch.randn(4, 5, 3, 3), 0)


def test_instance_norms_reject_inputs_without_spatial_dims():
    with pytest.raises(ValueError, match="spatial"):
        sabn.build_norm("sain", 4, num_conditions=2)(torch.randn(3, 4), 0)
    with pytest.raises(ValueError, match="spatial positions"):
        sabn.adaptive_instance_norm(torch.randn(2, 4, 1, 1), torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="style batch"):
        sabn.adaptive_instance_norm(torch.randn(2, 4, 3, 3), torch.randn(3, 4, 3, 3))


def test_range_checks_can_be_switched_off(x):
    layer = sabn.build_norm("sabn", 6, num_conditions=3)
    sabn.set_range_checks(False)
    try:
        with pytest.raises(IndexError):  # the embedding still refuses, only with torch's own message
            layer(x, torch.tensor([0] * 11 + [3]))
    finally:
        sabn.set_range_checks(True)


# --- registry ----------------------------------------------------------------------------------------------


def test_registry_builds_every_name():
    expected = {"bn", "ccbn", "sabn", "auxbn", "saauxbn", "in", "sain", "adain", "saadain"}
    assert expected <= set(sabn.norm_names())
    for name in expected:
        layer = sabn.build_norm(name, 8, num_conditions=4)
        assert isinstance(layer, nn.Module)
        assert sabn.is_conditional(name) == isinstance(layer, sabn.CONDITIONAL_LAYERS)
    assert type(sabn.build_norm("bn", 8, num_conditions=4)) is nn.BatchNorm2d


def test_registry_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown norm 'sabnn'; valid names: .*saauxbn"):
        sabn.build_norm("sabnn", 8)
    with pytest.raises(ValueError, match="pass num_conditions"):
        sabn.build_norm("sabn", 8)


def test_init_follows_the_papers_code():
    torch.manual_seed(0)
    layer = sabn.SandwichBatchNorm2d(512, 50)
    scales = layer.embed.weight[:, :512]
    assert abs(scales.mean().item() - 1) < 0.01 and abs(scales.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(layer.embed.weight[:, 512:]) == 0
    assert abs(layer.bn.weight.std().item() - 0.02) < 0.004 and torch.count_nonzero(layer.bn.bias) == 0
    exact = sabn.SandwichBatchNorm2d(8, 2, init_std=0.0, shared_init_std=0.0)
    assert torch.equal(exact.embed.weight[:, :8], torch.ones(2, 8))
    aux = sabn.AuxBatchNorm2d(8, 2)
    assert all(torch.equal(bn.weight, torch.ones(8)) for bn in aux.bn_list)
