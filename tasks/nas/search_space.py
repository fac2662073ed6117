"""The NAS-Bench-201 search space: operations, cell edges, the SaBN condition index and genotype utilities.

A cell has nodes 0..3 (0 = cell input, 3 = cell output) and one edge ``"i<-j"`` for every j < i, in the order
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`` (the sorted order of the official code, which is also the order of the rows
of α and of the entries of an arch string). A *genotype* here is the tuple of the six op names in that order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

#: The five candidate operations, in the official order (their position is the op id used by α and the
#: condition index).
OP_NAMES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Ops without learnable weights; a genotype dominated by them is DARTS' known failure mode ("collapse").
PARAMETER_FREE_OPS: frozenset[str] = frozenset({"none", "skip_connect", "avg_pool_3x3"})
#: Nodes per cell, including the input node 0.
MAX_NODES = 4

Genotype = tuple[str, ...]


def edge_names(max_nodes: int = MAX_NODES) -> tuple[str, ...]:
    """Edge keys ``"i<-j"`` in α-row order: by target node i, then source node j."""
    return tuple(f"{i}<-{j}" for i in range(1, max_nodes) for j in range(i))


#: The six edges of an NB201 cell in α-row order.
EDGES: tuple[str, ...] = edge_names(MAX_NODES)


def edge_index(target: int, source: int) -> int:
    """Row of α (and position in a genotype) of edge ``target<-source``."""
    if not 0 <= source < target:
        raise ValueError(f"invalid edge {target}<-{source}: need 0 <= source < target")
    return target * (target - 1) // 2 + source


def parse_edge(name: str) -> tuple[int, int]:
    """``"3<-1"`` -> ``(3, 1)`` (target, source)."""
    target, source = name.split("<-")
    return int(target), int(source)


def num_conditions(source: int, num_ops: int = len(OP_NAMES)) -> int:
    """K of the conditional norm on an edge leaving node ``source``: one condition per combination of the ops on
    the ``source`` edges entering that node, ``num_ops ** source`` (1, 5, 25 for nodes 0, 1, 2)."""
    return num_ops**source


def condition_index(source: int, op_choices: Sequence[int], num_ops: int = len(OP_NAMES)) -> int:
    """Condition id of the norms on every edge leaving node ``source`` (paper §1.3).

    ``op_choices[e]`` is the op id chosen on edge e (α-row order) for this forward pass — a multinomial sample of
    softmax(α) (DARTS), the hard Gumbel sample (GDAS) or the argmax. The id is ``Σ_k num_ops**k · op(source<-k)``
    over the edges entering ``source``; edges leaving node 0 always use 0.
    """
    index = 0
    for k in range(source):
        index += num_ops**k * int(op_choices[edge_index(source, k)])
    return index


def genotype_from_alpha(alpha: Tensor, op_names: Sequence[str] = OP_NAMES) -> Genotype:
    """Per-edge argmax of α (including ``none``, as the official code does) as op names in edge order."""
    if alpha.dim() != 2 or alpha.shape[1] != len(op_names):
        raise ValueError(f"alpha must have shape (num_edges, {len(op_names)}), got {tuple(alpha.shape)}")
    return tuple(op_names[i] for i in alpha.detach().argmax(dim=-1).tolist())


def arch_str(genotype: Sequence[str]) -> str:
    """NB201 architecture string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` of a genotype (ops in edge order)."""
    num_edges = len(genotype)
    max_nodes = _nodes_for_edges(num_edges)
    nodes = []
    for target in range(1, max_nodes):
        ops = (genotype[edge_index(target, source)] for source in range(target))
        nodes.append("|" + "|".join(f"{op}~{source}" for source, op in enumerate(ops)) + "|")
    return "+".join(nodes)


def parse_arch_str(text: str, op_names: Sequence[str] = OP_NAMES, max_nodes: int = MAX_NODES) -> Genotype:
    """Inverse of :func:`arch_str`: the genotype (op names in edge order) of an NB201 architecture string."""
    ops: list[str] = []
    node_strs = text.split("+")
    if len(node_strs) != max_nodes - 1:
        raise ValueError(f"invalid arch string {text!r}: expected {max_nodes - 1} nodes joined by '+'")
    for target, node in enumerate(node_strs, start=1):
        inputs = [part for part in node.split("|") if part]
        if len(inputs) != target:
            raise ValueError(f"invalid arch string {text!r}: node {target} must have {target} inputs")
        for source, item in enumerate(inputs):
            op, _, src = item.partition("~")
            if op not in op_names or src != str(source):
                raise ValueError(f"invalid arch string {text!r}: bad input {item!r} of node {target}")
            ops.append(op)
    return tuple(ops)


def count_parameter_free(genotype: Sequence[str] | str) -> int:
    """How many edges of a genotype (or arch string) carry a parameter-free op (none, skip, avg-pool)."""
    ops = parse_arch_str(genotype) if isinstance(genotype, str) else genotype
    return sum(op in PARAMETER_FREE_OPS for op in ops)


def alpha_entropy(alpha: Tensor) -> float:
    """Mean over edges of the entropy (nats) of softmax(α); log(5) ≈ 1.609 is uniform, 0 is one-hot."""
    logp = torch.log_softmax(alpha.detach().double(), dim=-1)
    return float(-(logp.exp() * logp).sum(dim=-1).mean())


def _nodes_for_edges(num_edges: int) -> int:
    # n nodes have n(n-1)/2 edges
    n = round((1 + math.sqrt(1 + 8 * num_edges)) / 2)
    if n * (n - 1) // 2 != num_edges:
        raise ValueError(f"{num_edges} ops do not form a complete cell DAG")
    return n
