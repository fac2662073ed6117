"""The NB201 supernet: forward/backward for every norm × algorithm, condition routing, GDAS single-op evaluation,
and the official checkpoint layouts (official_state_dicts.md, "NAS supernet DARTS-V1[-ccbn|-sabn]")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tasks.nas.search_space import EDGES, condition_index, parse_edge
from tasks.nas.supernet import NORM_VARIANTS, NB201SuperNet, ReLUConvNorm, SearchCell


def tiny(norm: str = "bn", algorithm: str = "darts", seed: int = 0, **kw) -> NB201SuperNet:
    torch.manual_seed(seed)
    return NB201SuperNet(channels=4, num_cells=1, num_classes=3, norm=norm, algorithm=algorithm, **kw)


def batch(n: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def search_cells(model):
    return [c for c in model.cells if isinstance(c, SearchCell)]


# --- forward / backward -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["darts", "gdas"])
@pytest.mark.parametrize("norm", NORM_VARIANTS)
def test_forward_backward_every_norm_and_algorithm(norm, algorithm):
    model = tiny(norm, algorithm)
    x, y = batch()
    logits = model(x)
    assert logits.shape == (4, 3)
    F.cross_entropy(logits, y).backward()
    grad = model.arch_parameters.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    if algorithm == "darts":
        # every op runs in the mixture: every α entry and every weight gets a gradient
        assert (grad != 0).all()
        assert all(p.grad is not None for p in model.weight_parameters())


def test_three_stages_with_resnet_reductions_and_shared_alpha():
    model = NB201SuperNet(channels=4, num_cells=2, num_classes=5)
    kinds = [type(c).__name__ for c in model.cells]
    assert kinds == ["SearchCell"] * 2 + ["ResNetBasicBlock"] + ["SearchCell"] * 2 + ["ResNetBasicBlock"] + ["SearchCell"] * 2
    assert model.arch_parameters.shape == (6, 5)
    assert model.arch_parameters.abs().max() < 1e-2  # 1e-3 · N(0, 1)
    assert [p for p in model.alpha_parameters()] == [model.arch_parameters]
    assert len(model.weight_parameters()) == len(list(model.parameters())) - 1


def test_plain_bn_variant_is_nb201_default():
    op = search_cells(tiny("bn"))[0].edges["2<-1"][3]
    bn = op.norm
    assert isinstance(bn, torch.nn.BatchNorm2d) and not bn.affine and not bn.track_running_stats


# --- conditions -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["ccbn", "sabn", "saauxbn"])
def test_k_per_edge_is_five_to_the_source_node(norm):
    for cell in search_cells(tiny(norm)):
        for key in EDGES:
            _, source = parse_edge(key)
            for op in cell.edges[key]:
                if isinstance(op, ReLUConvNorm):
                    assert op.norm.num_conditions == 5**source


def record_conditions(model):
    """(search-cell number, edge, condition) for every conditional norm call."""
    calls = []
    for s, cell in enumerate(search_cells(model)):
        for key in EDGES:
            for op in cell.edges[key]:
                if isinstance(op, ReLUConvNorm):
                    op.norm.register_forward_pre_hook(
                        lambda mod, args, s=s, key=key: calls.append((s, key, args[1]))
                    )
    return calls


@pytest.mark.parametrize("norm", ["ccbn", "sabn", "saauxbn"])
def test_norms_receive_the_hand_computed_condition_as_one_int(norm):
    model = tiny(norm)
    calls = record_conditions(model)
    choices = [3, 4, 2, 1, 0, 4]  # edges 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
    expected_by_source = {0: 0, 1: 3, 2: 4 + 5 * 2}
    with model.using_op_choices(choices):
        model(batch()[0])
    assert len(calls) == 3 * 6 * 2  # 3 search cells × 6 edges × 2 conv ops
    for _, key, cond in calls:
        assert type(cond) is int  # whole-batch condition: the fused single-BN path
        assert cond == expected_by_source[parse_edge(key)[1]]


def test_each_cell_draws_its_own_multinomial_sample_per_forward():
    torch.manual_seed(0)
    model = tiny("saauxbn")
    calls = record_conditions(model)
    model(batch()[0])
    choices = model.last_op_choices
    assert len(choices) == 3 and all(len(c) == 6 for c in choices)
    assert len({tuple(c) for c in choices}) > 1  # uniform α: identical draws in all cells are ~5^-12 likely
    for s, key, cond in calls:
        assert cond == condition_index(parse_edge(key)[1], choices[s])
    first = [list(c) for c in choices]
    model(batch()[0])
    assert model.last_op_choices != first  # a fresh draw per forward


def test_argmax_condition_mode_uses_argmax_alpha_in_every_cell():
    model = tiny("sabn", condition_mode="argmax")
    with torch.no_grad():
        model.arch_parameters.zero_()
        model.arch_parameters[torch.arange(6), torch.tensor([1, 2, 3, 4, 0, 1])] = 1.0
    model(batch()[0])
    assert model.last_op_choices == [[1, 2, 3, 4, 0, 1]] * 3


def test_bn_variant_draws_no_conditions():
    model = tiny("bn")
    model(batch()[0])
    assert model.last_op_choices is None


def test_sampled_conditions_follow_softmax_alpha():
    model = tiny("ccbn")
    with torch.no_grad():
        model.arch_parameters.copy_(torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0]]).repeat(6, 1))
    draws = torch.tensor([model.sample_op_choices() for _ in range(200)])  # (200, 3 cells, 6 edges)
    p3 = torch.softmax(model.arch_parameters[0], -1)[3].item()  # ≈ 0.974
    assert abs((draws == 3).float().mean().item() - p3) < 0.03


# --- GDAS -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["bn", "saauxbn"])
def test_gdas_runs_only_the_sampled_op_yet_alpha_gets_gradient(norm):
    model = tiny(norm, "gdas")
    calls = []
    for s, cell in enumerate(search_cells(model)):
        for key in EDGES:
            for k, op in enumerate(cell.edges[key]):
                op.register_forward_hook(lambda mod, args, out, s=s, key=key, k=k: calls.append((s, key, k)))
    x, y = batch()
    F.cross_entropy(model(x), y).backward()
    index = model.last_op_choices[0]
    assert all(c == index for c in model.last_op_choices)  # one Gumbel sample for the whole network
    expected = sorted((s, key, index[e]) for s in range(3) for e, key in enumerate(EDGES))
    assert sorted(calls) == expected  # one op per edge per cell, the sampled one
    assert model.arch_parameters.grad.abs().sum() > 0


def test_gdas_alpha_gradient_equals_the_official_per_op_sum(monkeypatch):
    """Edge output = h[a]·op_a(x) + Σ_{k≠a} h[k] (official forward_gdas): same value and same α gradient."""
    import tasks.nas.supernet as supernet_module

    model = tiny("ccbn", "gdas")
    probs_logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(3))
    index = torch.tensor([3, 0, 2, 1, 4, 3])

    def fixed_sample(alpha, tau):
        probs = (alpha + probs_logits).softmax(-1)
        return F.one_hot(index, 5).float() - probs.detach() + probs, index

    monkeypatch.setattr(supernet_module, "gumbel_hard_sample", fixed_sample)
    x, y = batch()
    F.cross_entropy(model(x), y).backward()
    ours = model.arch_parameters.grad.clone()

    model.arch_parameters.grad = None
    hardwts, idx = fixed_sample(model.arch_parameters, 1.0)
    choices = idx.tolist()
    h = model.stem(x)
    for cell in model.cells:
        if not isinstance(cell, SearchCell):
            h = cell(h)
            continue
        conds = cell.node_conditions(choices)
        nodes = [h]
        for i in range(1, 4):
            total = 0
            for j in range(i):
                e = EDGES.index(f"{i}<-{j}")
                for k, op in enumerate(cell.edges[f"{i}<-{j}"]):
                    total = total + (hardwts[e, k] * op(nodes[j], conds[j]) if k == choices[e] else hardwts[e, k])
            nodes.append(total)
        h = nodes[-1]
    F.cross_entropy(model.classifier(model.global_pooling(model.lastact(h)).flatten(1)), y).backward()
    torch.testing.assert_close(ours, model.arch_parameters.grad)


def test_gdas_output_equals_the_discrete_architecture():
    """Hard weights are exactly one-hot in value: the supernet computes the sampled architecture."""
    model = tiny("bn", "gdas").eval()
    x, _ = batch()
    out = model(x)
    index = model.last_op_choices[0]
    weights = F.one_hot(torch.tensor(index), 5).float()
    model.algorithm = "darts"
    torch.testing.assert_close(out, _darts_with_weights(model, x, weights))


def _darts_with_weights(model, x, weights):
    h = model.stem(x)
    for cell in model.cells:
        h = cell(h, weights) if isinstance(cell, SearchCell) else cell(h)
    return model.classifier(model.global_pooling(model.lastact(h)).flatten(1))


# --- official layouts ---------------------------------------------------------------------------------------------
# Subset of official_state_dicts.md (C 16, N 5, 100 classes) — full lists are compared below when the shared
# reference file is present.

COMMON_KEYS = """
arch_parameters (6, 5)
stem.0.weight (16, 3, 3, 3)
stem.1.weight (16,)
stem.1.running_var (16,)
stem.1.num_batches_tracked ()
cells.5.conv_a.op.1.weight (32, 16, 3, 3)
cells.5.conv_a.op.2.running_mean (32,)
cells.5.conv_b.op.1.weight (32, 32, 3, 3)
cells.5.downsample.1.weight (32, 16, 1, 1)
cells.11.conv_a.op.1.weight (64, 32, 3, 3)
cells.11.conv_b.op.2.bias (64,)
cells.11.downsample.1.weight (64, 32, 1, 1)
cells.0.edges.1<-0.2.op.1.weight (16, 16, 1, 1)
cells.0.edges.3<-2.3.op.1.weight (16, 16, 3, 3)
cells.10.edges.3<-2.2.op.1.weight (32, 32, 1, 1)
cells.16.edges.3<-2.3.op.1.weight (64, 64, 3, 3)
lastact.0.weight (64,)
lastact.0.num_batches_tracked ()
classifier.weight (100, 64)
classifier.bias (100,)
"""
VARIANT_KEYS = {
    "bn": (1691986, 220, ""),
    "ccbn": (1777106, 400, """
cells.0.edges.1<-0.2.sw_bn.embed.weight (1, 32)
cells.0.edges.2<-1.3.sw_bn.embed.weight (5, 32)
cells.0.edges.3<-2.3.sw_bn.embed.weight (25, 32)
cells.10.edges.3<-2.3.sw_bn.embed.weight (25, 64)
cells.16.edges.3<-2.2.sw_bn.embed.weight (25, 128)
"""),
    "saauxbn": (1790546, 760, """
cells.0.edges.1<-0.2.bn.shared_weight (16,)
cells.0.edges.1<-0.2.bn.shared_bias (16,)
cells.0.edges.1<-0.2.bn.embed.weight (1, 32)
cells.0.edges.3<-1.2.bn.embed.weight (5, 32)
cells.10.edges.3<-2.2.bn.shared_weight (32,)
cells.10.edges.3<-2.3.bn.embed.weight (25, 64)
cells.16.edges.3<-2.3.bn.shared_bias (64,)
cells.16.edges.3<-2.3.bn.embed.weight (25, 128)
"""),
}


def parse_keys(text: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in filter(None, text.strip().splitlines()):
        key, shape = line.rsplit(" (", 1)
        out[key] = tuple(int(v) for v in shape.rstrip(")").split(",") if v.strip())
    return out


def full_size(norm: str) -> NB201SuperNet:
    return NB201SuperNet(channels=16, num_cells=5, num_classes=100, norm=norm)


@pytest.mark.parametrize("norm", list(VARIANT_KEYS))
def test_official_key_names_shapes_and_counts(norm):
    params, entries, extra = VARIANT_KEYS[norm]
    model = full_size(norm)
    sd = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(sd) == entries
    for key, shape in parse_keys(COMMON_KEYS + extra).items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key


def fake_official(keys: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.tensor(3) if k.endswith("num_batches_tracked") else torch.rand(shape, generator=g) + 0.5
            for k, shape in keys.items()}


def test_official_sabn_checkpoint_loads_into_both_sabn_variants_and_they_agree():
    """Official NAS "SaBN" = shared + per-condition affine with per-condition statistics; without running statistics
    a whole-batch condition normalises with batch statistics either way, so sabn and saauxbn compute the same."""
    official = {k: v for k, v in tiny("saauxbn").state_dict().items()}
    assert any(k.endswith("bn.shared_weight") for k in official)
    sd = fake_official({k: tuple(v.shape) for k, v in official.items()})
    aux, one = tiny("saauxbn", seed=1), tiny("sabn", seed=2)
    aux.load_state_dict(sd)  # strict
    one.load_state_dict(sd)  # strict, shared affine renamed into the inner BN
    x, _ = batch()
    with aux.using_op_choices([2, 3, 4, 1, 3, 2]), one.using_op_choices([2, 3, 4, 1, 3, 2]):
        torch.testing.assert_close(aux(x), one(x))


def test_per_condition_statistics_do_not_load_into_one_statistics_sabn():
    model = tiny("sabn")
    sd = dict(model.state_dict())
    prefix = "cells.0.edges.2<-1.2.bn."
    sd[prefix + "shared_weight"] = sd.pop(prefix + "bn.weight")
    sd[prefix + "shared_bias"] = sd.pop(prefix + "bn.bias")
    sd[prefix + "bns.0.running_mean"] = torch.zeros(4)
    with pytest.raises(RuntimeError, match="norm='saauxbn'"):
        model.load_state_dict(sd)


REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "official_state_dicts.md"
SECTIONS = {"bn": "NAS supernet DARTS-V1 (", "ccbn": "NAS supernet DARTS-V1-ccbn (", "saauxbn": "NAS supernet DARTS-V1-sabn ("}


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared reference file not present")
@pytest.mark.parametrize("norm", list(SECTIONS))
def test_full_official_layout_matches_reference_file(norm):
    text = REFERENCE.read_text()
    start = text.index("### " + SECTIONS[norm])
    block = re.search(r"```\n(.*?)```", text[start:], re.S).group(1)
    official = parse_keys(block)
    ours = {k: tuple(v.shape) for k, v in full_size(norm).state_dict().items()}
    assert ours == official
    if norm == "saauxbn":  # the official "sabn" checkpoint also loads into the one-statistics SaBN supernet
        full_size("sabn").load_state_dict(fake_official(official))


def test_norm_kwargs_reach_the_search_cell_norms():
    model = tiny("sabn", norm_kwargs={"init_std": 0.0, "eps": 1e-3})
    norm = search_cells(model)[0].edges["3<-2"][3].norm
    assert norm.bn.eps == 1e-3
    assert torch.equal(norm.embed.weight[:, :4], torch.ones(25, 4))
    plain = search_cells(tiny("bn", norm_kwargs={"eps": 1e-3}))[0].edges["1<-0"][2].norm
    assert plain.eps == 1e-3
