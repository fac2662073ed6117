"""The NAS-Bench-201 supernet with plain or conditional (CCBN / SaBN / SaAuxBN) norms in its search cells.

Layout (official ``TinyNetworkDarts`` as used by the SaBN code, reference_repos.md §3.4): stem conv3×3 + BN;
three stages of N search cells at C, 2C, 4C separated by ResNet basic blocks with stride 2; BN-ReLU ("lastact"),
global average pooling, linear classifier. One α of shape (6, 5), shared by every search cell.

Norm variants (only the two conv ops of a search cell carry them; stem, reduction blocks and lastact keep a plain
BN with affine and running statistics, as in the official code):

=========  =================================================================  ==============================
variant    norm in ``nor_conv_1x1`` / ``nor_conv_3x3``                         module name (official layout)
=========  =================================================================  ==============================
bn         BatchNorm2d(affine=False) — NB201 default                           ``op.2``
ccbn       one statistics set, per-condition affine γ_i x̂ + β_i                ``sw_bn`` (NAS CCBN baseline)
sabn       one statistics set, shared + per-condition affine (paper's SaBN)   ``bn``  (loads official ``bn.*``)
saauxbn    per-condition statistics, shared + per-condition affine            ``bn``  (= official NAS "SaBN")
=========  =================================================================  ==============================

An op on edge ``i<-j`` has K = 5^j conditions and, per forward pass, the condition
:func:`~tasks.nas.search_space.condition_index` of the ops chosen on the edges entering node j (paper §1.3). The
condition is one int for the whole batch, so each conditional norm runs as a single fused BN kernel.

With ``track_running_stats=False`` (the official setting) normalisation always uses batch statistics, so for a
whole-batch condition ``sabn`` and ``saauxbn`` compute the same function; they differ only when running statistics
are tracked. An official DARTS-V1-sabn checkpoint therefore loads into both (``sabn`` renames the shared affine).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sabn

from .algorithms import gumbel_hard_sample
from .search_space import (
    MAX_NODES,
    OP_NAMES,
    Genotype,
    arch_str,
    condition_index,
    edge_index,
    edge_names,
    genotype_from_alpha,
    num_conditions,
    parse_edge,
)

NORM_VARIANTS: tuple[str, ...] = ("bn", "ccbn", "sabn", "saauxbn")
ALGORITHMS: tuple[str, ...] = ("darts", "gdas")
#: How the per-forward op choices that index the conditional norms are drawn (DARTS): "sample" = multinomial sample
#: of softmax(α) per cell and edge (official code), "argmax" = argmax α (deterministic).
CONDITION_MODES: tuple[str, ...] = ("sample", "argmax")
#: Attribute name of the conditional norm inside a conv op, as in the official checkpoints.
NORM_ATTR: dict[str, str] = {"ccbn": "sw_bn", "sabn": "bn", "saauxbn": "bn"}

OpChoices = list[list[int]]


# --- candidate operations -------------------------------------------------------------------------------------
# Every op is called as op(x, condition); only the conv ops use the condition.


class Zero(nn.Module):
    """``none``: zeros of the input's shape (x·0, so NaNs propagate as in the official code)."""

    def forward(self, x: Tensor, condition: int = 0) -> Tensor:
        return x.mul(0.0)


class Skip(nn.Module):
    """``skip_connect`` in a search cell (stride 1, C_in = C_out): the identity."""

    def forward(self, x: Tensor, condition: int = 0) -> Tensor:
        return x


class AvgPool3x3(nn.Module):
    """``avg_pool_3x3``: 3×3 average pooling, stride 1, padding excluded from the average."""

    def __init__(self) -> None:
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: Tensor, condition: int = 0) -> Tensor:
        return self.op(x)


class ReLUConvNorm(nn.Module):
    """``nor_conv_kxk``: ReLU → conv k×k (no bias) → norm; the norm is plain BN (``op.2``) or a conditional norm
    (attribute ``NORM_ATTR[variant]``) called with the per-forward condition id. ``norm_kwargs`` (e.g. eps,
    momentum, init_std) go to :func:`sabn.build_norm`."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        norm: str = "bn",
        num_conditions: int = 1,
        track_running_stats: bool = False,
        bn_affine: bool = False,
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if norm not in NORM_VARIANTS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORM_VARIANTS)}")
        self.norm_name = norm
        extra = dict(norm_kwargs or {})
        layers: list[nn.Module] = [
            nn.ReLU(inplace=False),  # the same input feeds all five ops of a DARTS edge
            nn.Conv2d(c_in, c_out, kernel_size, stride=1, padding=kernel_size // 2, bias=False),
        ]
        if norm == "bn":
            layers.append(sabn.build_norm("bn", c_out, affine=bn_affine, track_running_stats=track_running_stats,
                                          **extra))
        self.op = nn.Sequential(*layers)
        self._norm_attr = NORM_ATTR.get(norm)
        if self._norm_attr is not None:
            layer = sabn.build_norm(norm, c_out, num_conditions=num_conditions,
                                    track_running_stats=track_running_stats, **extra)
            self.add_module(self._norm_attr, layer)

    @property
    def norm(self) -> nn.Module:
        """The normalisation layer, whatever its official name."""
        return self.op[2] if self._norm_attr is None else getattr(self, self._norm_attr)

    def forward(self, x: Tensor, condition: int = 0) -> Tensor:
        h = self.op(x)
        if self._norm_attr is None:
            return h
        return getattr(self, self._norm_attr)(h, condition)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        if self.norm_name == "sabn":
            # The official NAS "SaBN" names the shared affine bn.shared_weight / bn.shared_bias; our one-statistics
            # SaBN keeps it as the inner BN's affine (bn.bn.weight / bn.bn.bias).
            p = prefix + "bn."
            for old, new in (("shared_weight", "bn.weight"), ("shared_bias", "bn.bias")):
                if p + old in state_dict and p + new not in state_dict:
                    state_dict[p + new] = state_dict.pop(p + old)
            if any(key.startswith(p + "bns.") for key in state_dict):
                error_msgs.append(
                    f"{prefix}bn: the checkpoint holds per-condition running statistics (bns.*), which norm='sabn' "
                    "(one statistics set) cannot hold; build the supernet with norm='saauxbn'"
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


def make_op(name: str, channels: int, norm: str = "bn", num_conditions: int = 1,
            track_running_stats: bool = False, bn_affine: bool = False,
            norm_kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """The search-cell op ``name`` at ``channels`` channels (stride 1)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return Skip()
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        k = 1 if name == "nor_conv_1x1" else 3
        return ReLUConvNorm(channels, channels, k, norm, num_conditions, track_running_stats, bn_affine, norm_kwargs)
    raise ValueError(f"unknown op {name!r}; valid: {', '.join(OP_NAMES)}")


# --- cells --------------------------------------------------------------------------------------------------------


class SearchCell(nn.Module):
    """The NB201 search cell: node i = Σ_{j<i} edge(i<-j)(node j); ``edges["i<-j"]`` holds the five ops."""

    def __init__(self, channels: int, norm: str = "bn", track_running_stats: bool = False, bn_affine: bool = False,
                 op_names: Sequence[str] = OP_NAMES, max_nodes: int = MAX_NODES,
                 norm_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.op_names = tuple(op_names)
        self.max_nodes = max_nodes
        self.conditional = norm != "bn"
        self.edge_keys = edge_names(max_nodes)
        self.edges = nn.ModuleDict()
        for key in self.edge_keys:
            _, source = parse_edge(key)
            k = num_conditions(source, len(self.op_names))
            self.edges[key] = nn.ModuleList(
                make_op(name, channels, norm, k, track_running_stats, bn_affine, norm_kwargs) for name in self.op_names
            )

    def node_conditions(self, op_choices: Sequence[int] | None) -> list[int]:
        """Condition id of the edges leaving each node (index = source node), from this forward's op choices."""
        if op_choices is None:
            if self.conditional:
                raise ValueError("a search cell with conditional norms needs the op choices of this forward pass")
            return [0] * self.max_nodes
        if len(op_choices) != len(self.edge_keys):
            raise ValueError(f"expected {len(self.edge_keys)} op choices, got {len(op_choices)}")
        return [condition_index(j, op_choices, len(self.op_names)) for j in range(self.max_nodes)]

    def forward(self, x: Tensor, weights: Tensor, op_choices: Sequence[int] | None = None) -> Tensor:
        """DARTS: every edge is the ``weights``-weighted sum (weights = softmax(α), shape (6, 5)) of all its ops;
        ``op_choices`` (one op id per edge) only select the norms' conditions."""
        conds = self.node_conditions(op_choices)
        rows = weights.unbind(0)
        nodes = [x]
        for i in range(1, self.max_nodes):
            total: Tensor | None = None
            for j in range(i):
                e = edge_index(i, j)
                w = rows[e].unbind(0)
                for k, op in enumerate(self.edges[self.edge_keys[e]]):
                    term = w[k] * op(nodes[j], conds[j])
                    total = term if total is None else total + term
            nodes.append(total)
        return nodes[-1]

    def forward_gdas(self, x: Tensor, hardwts: Tensor, index: Sequence[int], rest: Tensor | None = None) -> Tensor:
        """GDAS: on each edge only op ``index[e]`` runs, scaled by its hard weight (1 in value); the other ops add
        their hard weights (0 in value), which routes the gradient to every α entry. ``index`` also sets the
        norms' conditions. ``rest`` (E,) = :func:`unchosen_weight_sum` (computed here when not given)."""
        conds = self.node_conditions(index)
        rest_e = (unchosen_weight_sum(hardwts, index) if rest is None else rest).unbind(0)
        nodes = [x]
        for i in range(1, self.max_nodes):
            total: Tensor | None = None
            for j in range(i):
                e = edge_index(i, j)
                a = int(index[e])
                term = self.edges[self.edge_keys[e]][a](nodes[j], conds[j]) * hardwts[e, a] + rest_e[e]
                total = term if total is None else total + term
            nodes.append(total)
        return nodes[-1]


def unchosen_weight_sum(hardwts: Tensor, index: Sequence[int] | Tensor) -> Tensor:
    """Per edge, the sum of the hard weights of the ops not chosen: exactly 0 in value (masking, not subtracting,
    keeps it exact) with gradient 1 to each of those weights, as the official per-op sum."""
    index_t = torch.as_tensor(index, device=hardwts.device).unsqueeze(-1)
    mask = torch.ones_like(hardwts).scatter_(-1, index_t, 0.0)
    return (hardwts * mask).sum(dim=-1)


class ReLUConvBN(nn.Module):
    """ReLU → conv → BN(affine, tracked) as used by the reduction block (official ``ReLUConvBN``, keys ``op.*``)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class ResNetBasicBlock(nn.Module):
    """Stride-2 reduction between stages: two ReLU-conv3×3-BN plus an avg-pool + 1×1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


# --- the supernet ---------------------------------------------------------------------------------------------------


class NB201SuperNet(nn.Module):
    """NAS-Bench-201 supernet for DARTS or GDAS with a plain or conditional norm in its search cells.

    Args:
        channels: C of the first stage (16 in the paper); stages use C, 2C, 4C.
        num_cells: N search cells per stage (5 in the paper).
        num_classes: classifier outputs.
        norm: one of :data:`NORM_VARIANTS`.
        algorithm: ``"darts"`` (softmax mixture of all ops) or ``"gdas"`` (one hard-sampled op per edge); the
            attribute may be changed later.
        track_running_stats: running statistics in the search-cell norms (official: False, batch statistics always).
        bn_affine: affine of the plain ``bn`` variant (official DARTS: False); conditional norms have their own.
        condition_mode: :data:`CONDITION_MODES`; how DARTS draws the op choices that index the conditional norms.
        tau: GDAS temperature (set per epoch with :func:`~tasks.nas.algorithms.gdas_tau`).
        norm_kwargs: extra keywords for the search-cell norms (:func:`sabn.build_norm`), e.g. eps, momentum,
            init_std; defaults follow the official code (ε 1e-5, momentum 0.1, affines ~ N(1, 0.02)).
    """

    def __init__(
        self,
        channels: int = 16,
        num_cells: int = 5,
        num_classes: int = 10,
        norm: str = "bn",
        algorithm: str = "darts",
        track_running_stats: bool = False,
        bn_affine: bool = False,
        condition_mode: str = "sample",
        tau: float = 10.0,
        in_channels: int = 3,
        op_names: Sequence[str] = OP_NAMES,
        max_nodes: int = MAX_NODES,
        norm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if norm not in NORM_VARIANTS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORM_VARIANTS)}")
        self.norm = norm
        self.algorithm = algorithm
        self.condition_mode = condition_mode
        self._check_modes()
        self.tau = float(tau)
        self.op_names = tuple(op_names)
        self.max_nodes = max_nodes
        self.num_edges = len(edge_names(max_nodes))

        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        stage_channels = [c] * num_cells + [2 * c] + [2 * c] * num_cells + [4 * c] + [4 * c] * num_cells
        reductions = [False] * num_cells + [True] + [False] * num_cells + [True] + [False] * num_cells
        cells: list[nn.Module] = []
        c_prev = c
        for c_cur, reduction in zip(stage_channels, reductions):
            if reduction:
                cells.append(ResNetBasicBlock(c_prev, c_cur, 2))
            else:
                cells.append(SearchCell(c_cur, norm, track_running_stats, bn_affine, self.op_names, max_nodes,
                                        norm_kwargs))
            c_prev = c_cur
        self.cells = nn.ModuleList(cells)
        self.num_search_cells = sum(isinstance(cell, SearchCell) for cell in cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.arch_parameters = nn.Parameter(1e-3 * torch.randn(self.num_edges, len(self.op_names)))

        #: Op choices that set the norms' conditions, one list per search cell, of the latest forward pass.
        self.last_op_choices: OpChoices | None = None
        #: When set (see :meth:`using_op_choices`), DARTS forwards use these choices instead of drawing new ones.
        self.fixed_op_choices: OpChoices | None = None

    def _check_modes(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.algorithm!r}; valid: {', '.join(ALGORITHMS)}")
        if self.condition_mode not in CONDITION_MODES:
            raise ValueError(f"unknown condition_mode {self.condition_mode!r}; valid: {', '.join(CONDITION_MODES)}")

    def extra_repr(self) -> str:
        return (f"norm={self.norm}, algorithm={self.algorithm}, condition_mode={self.condition_mode}, "
                f"search_cells={self.num_search_cells}")

    @property
    def conditional(self) -> bool:
        """Whether the search-cell norms take a condition."""
        return self.norm != "bn"

    # parameter groups: the weight optimizer gets weight_parameters(), the arch optimizer alpha_parameters()
    def alpha_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters: [α] of shape (6, 5)."""
        return [self.arch_parameters]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α."""
        return [p for name, p in self.named_parameters() if name != "arch_parameters"]

    # genotype
    def genotype(self) -> Genotype:
        """Per-edge argmax of α as op names in edge order."""
        return genotype_from_alpha(self.arch_parameters, self.op_names)

    def arch_str(self) -> str:
        """NB201 architecture string of :meth:`genotype`."""
        return arch_str(self.genotype())

    # conditions
    def sample_op_choices(self) -> OpChoices | None:
        """Op choices that index the conditional norms for one DARTS forward pass, one list of op ids per search
        cell: each cell draws its own multinomial sample of softmax(α) per edge (``condition_mode="sample"``), or
        every cell uses argmax α (``"argmax"``). None for the plain ``bn`` variant (nothing to index).
        Returns :attr:`fixed_op_choices` while those are set."""
        if self.fixed_op_choices is not None:
            return self.fixed_op_choices
        if not self.conditional:
            return None
        self._check_modes()
        with torch.no_grad():
            alpha = self.arch_parameters.detach()
            if self.condition_mode == "argmax":
                row = alpha.argmax(dim=-1).tolist()
                return [list(row) for _ in range(self.num_search_cells)]
            probs = alpha.softmax(dim=-1).repeat(self.num_search_cells, 1)
            # one draw for all cells and edges, one host transfer
            return torch.multinomial(probs, 1).view(self.num_search_cells, self.num_edges).tolist()

    def _normalise_choices(self, choices: Sequence[Sequence[int]] | Sequence[int]) -> OpChoices:
        rows = [list(choices)] * self.num_search_cells if choices and isinstance(choices[0], int) else choices
        rows = [[int(c) for c in row] for row in rows]
        if len(rows) != self.num_search_cells or any(len(row) != self.num_edges for row in rows):
            raise ValueError(f"op choices must be {self.num_edges} op ids (shared) or {self.num_search_cells} "
                             f"lists of {self.num_edges}")
        if any(not 0 <= c < len(self.op_names) for row in rows for c in row):
            raise ValueError(f"op ids must lie in [0, {len(self.op_names)})")
        return rows

    @contextlib.contextmanager
    def using_op_choices(self, choices: Sequence[Sequence[int]] | Sequence[int] | None) -> Iterator[None]:
        """Within the block, DARTS forwards index the norms with ``choices`` (per search cell, or one list of
        op ids for all cells) instead of drawing; None leaves drawing on. Restores the previous setting on exit."""
        previous = self.fixed_op_choices
        self.fixed_op_choices = None if choices is None else self._normalise_choices(choices)
        try:
            yield
        finally:
            self.fixed_op_choices = previous

    # forward
    def forward(self, x: Tensor) -> Tensor:
        """Logits of the supernet under the current α (and a fresh condition / Gumbel draw)."""
        self._check_modes()
        if self.algorithm == "darts":
            weights = F.softmax(self.arch_parameters, dim=-1)
            choices = self.sample_op_choices()
            self.last_op_choices = choices
        else:
            hardwts, index_t = gumbel_hard_sample(self.arch_parameters, self.tau)
            index = index_t.tolist()
            rest = unchosen_weight_sum(hardwts, index_t)
            # one sample for the whole network, as in GDAS; it selects both the op and the norms' condition
            self.last_op_choices = [list(index) for _ in range(self.num_search_cells)]
        h = self.stem(x)
        s = 0
        for cell in self.cells:
            if isinstance(cell, SearchCell):
                if self.algorithm == "darts":
                    h = cell(h, weights, None if choices is None else choices[s])
                else:
                    h = cell.forward_gdas(h, hardwts, index, rest)
                s += 1
            else:
                h = cell(h)
        h = self.global_pooling(self.lastact(h)).flatten(1)
        return self.classifier(h)
