"""Search-space bookkeeping: edge order, the SaBN condition index, genotypes and NB201 arch strings."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.nas.search_space import (
    EDGES,
    OP_NAMES,
    alpha_entropy,
    arch_str,
    condition_index,
    count_parameter_free,
    edge_index,
    genotype_from_alpha,
    num_conditions,
    parse_arch_str,
)


def test_edges_are_in_official_sorted_order_and_indexed_consistently():
    assert EDGES == ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
    assert list(EDGES) == sorted(EDGES)
    for e, name in enumerate(EDGES):
        target, source = map(int, name.split("<-"))
        assert edge_index(target, source) == e


def test_conditions_per_source_node_are_powers_of_five():
    assert [num_conditions(j) for j in range(3)] == [1, 5, 25]


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        # choices per edge 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
        ([3, 4, 2, 1, 0, 4], [0, 3, 4 + 5 * 2, 1 + 5 * 0 + 25 * 4]),
        ([0, 0, 0, 0, 0, 0], [0, 0, 0, 0]),
        ([4, 4, 4, 4, 4, 4], [0, 4, 24, 124]),
        ([1, 0, 1, 2, 3, 1], [0, 1, 5, 2 + 15 + 25]),
    ],
)
def test_condition_index_matches_hand_computed_values(choices, expected):
    assert [condition_index(j, choices) for j in range(4)] == expected


def test_condition_index_stays_below_k():
    for choices in ([4] * 6, [2, 3, 4, 0, 1, 2]):
        for j in range(3):
            assert 0 <= condition_index(j, choices) < num_conditions(j)


def test_arch_string_format_and_round_trip():
    genotype = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    text = arch_str(genotype)
    assert text == "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert parse_arch_str(text) == genotype


@pytest.mark.parametrize("bad", ["|none~0|", "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
def test_malformed_arch_strings_are_rejected(bad):
    with pytest.raises(ValueError, match="invalid arch string"):
        parse_arch_str(bad)


def test_genotype_is_per_edge_argmax_including_none():
    alpha = torch.zeros(6, 5)
    picks = [0, 1, 2, 3, 4, 0]
    for e, k in enumerate(picks):
        alpha[e, k] = 1.0
    genotype = genotype_from_alpha(alpha)
    assert genotype == tuple(OP_NAMES[k] for k in picks)
    assert count_parameter_free(genotype) == 4  # none, skip, pool, none
    assert count_parameter_free(arch_str(genotype)) == 4


def test_alpha_entropy_bounds():
    assert alpha_entropy(torch.zeros(6, 5)) == pytest.approx(math.log(5))
    peaked = torch.full((6, 5), -100.0)
    peaked[:, 2] = 100.0
    assert alpha_entropy(peaked) == pytest.approx(0.0, abs=1e-12)
