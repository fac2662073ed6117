"""Conditional normalisation layers: CCBN, SaBN, AuxBN, SaAuxBN, SaIN, AdaIN and SaAdaIN.

Every conditional layer is a :class:`ConditionalNorm` and is called as ``layer(x, y)`` where ``y`` is either a
LongTensor of per-sample condition ids (shape ``N``) or a plain ``int`` meaning "the whole batch uses this
condition". When ``y`` is omitted the layer uses the condition set by :func:`sabn.conditioned` /
:func:`sabn.set_condition`, so a model's ``forward`` signature never has to change.

Formulas (x̂ = BN- or IN-normalised input, i = condition of the sample):

=========  ====================================================  ==========================================
layer      output                                                statistics
=========  ====================================================  ==========================================
CCBN       γ_i ⊙ x̂ + β_i                                         one BN set
SaBN       γ_i ⊙ (γ_sa ⊙ x̂ + β_sa) + β_i                         one BN set
AuxBN      γ_i ⊙ x̂_i + β_i                                       one BN set per condition (branch)
SaAuxBN    γ_i ⊙ (γ_sa ⊙ x̂_i + β_sa) + β_i                       one BN set per condition (branch)
SaIN       γ_i ⊙ (γ_sa ⊙ IN(x) + β_sa) + β_i                     per-sample instance statistics
AdaIN      σ(s) ⊙ (c − μ(c)) / σ(c) + μ(s)                       per-sample instance statistics
SaAdaIN    σ(s) ⊙ (γ_sa ⊙ (c − μ(c)) / σ(c) + β_sa) + μ(s)       per-sample instance statistics
=========  ====================================================  ==========================================

Parameter layouts follow the official code so its checkpoints load directly: CCBN/SaBN hold ``bn`` (a
``BatchNorm2d``; SaBN's affine is the shared affine) and ``embed`` (``nn.Embedding(K, 2C)``, first C columns the
scales, last C the shifts); AuxBN holds ``bn_list``; SaAuxBN holds ``bn_list``, ``shared_weight``,
``shared_bias`` and ``embed`` and also accepts the official adversarial layout (a K+1-row ``embed`` whose last row
is the shared affine) and the official NAS layout (``bns.{i}``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Condition = int | Tensor

_CHECK_RANGE = True


def set_range_checks(enabled: bool) -> None:
    """Switch the per-call check that condition ids lie in [0, K) on or off (on by default).

    The check costs one device synchronisation per layer call on CUDA; turn it off for timing-critical runs once
    the inputs are known to be valid.
    """
    global _CHECK_RANGE
    _CHECK_RANGE = bool(enabled)


def _init_affine_rows(embed: nn.Embedding, num_features: int, init_std: float) -> None:
    """Scales (first C columns) ~ N(1, init_std), shifts (last C columns) = 0, as in the paper's code."""
    with torch.no_grad():
        if init_std > 0:
            embed.weight[:, :num_features].normal_(1.0, init_std)
        else:
            embed.weight[:, :num_features].fill_(1.0)
        embed.weight[:, num_features:].zero_()


def _init_scale_shift(weight: Tensor, bias: Tensor, init_std: float) -> None:
    with torch.no_grad():
        if init_std > 0:
            weight.normal_(1.0, init_std)
        else:
            weight.fill_(1.0)
        bias.zero_()


def _cat_grads(weight: Tensor, bias: Tensor) -> Tensor | None:
    if weight.grad is None and bias.grad is None:
        return None
    gw = torch.zeros_like(weight) if weight.grad is None else weight.grad
    gb = torch.zeros_like(bias) if bias.grad is None else bias.grad
    return torch.cat([gw, gb]).detach()


def _as_channel_view(v: Tensor, ndim: int) -> Tensor:
    """(C,) -> (1, C, 1, ...) or (N, C) -> (N, C, 1, ...) so it broadcasts over spatial dimensions."""
    if v.dim() == 1:
        return v.view(1, -1, *([1] * (ndim - 2)))
    return v.view(v.shape[0], v.shape[1], *([1] * (ndim - 2)))


def _functional_batch_norm(bn: nn.BatchNorm2d, x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """What ``bn(x)`` computes (same statistics, same running-statistic updates), with the given affine instead
    of the module's own."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    track = not bn.training or bn.track_running_stats
    return F.batch_norm(
        x, bn.running_mean if track else None, bn.running_var if track else None,
        weight, bias, use_batch_stats, factor, bn.eps,
    )


class ConditionalNorm(nn.Module):
    """Base class of the conditional layers: condition handling, input checks and non-4D inputs.

    Subclasses implement ``_forward4d(x, y)`` for ``x`` of shape (N, C, H, W) and an already validated ``y``
    (an ``int`` or a LongTensor of shape N).
    """

    #: Whether the layer needs spatial positions to compute its statistics (instance norms do).
    needs_spatial: bool = False

    def __init__(self, num_features: int, num_conditions: int) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if num_conditions < 1:
            raise ValueError(f"num_conditions must be >= 1, got {num_conditions}")
        self.num_features = int(num_features)
        self.num_conditions = int(num_conditions)
        # Set by sabn.conditioned()/set_condition(); used when forward() gets no explicit condition.
        self._condition: Condition | None = None
        # sabn.analysis: while _recording, forward marks the conditions it sees in _present (a bool mask over K);
        # when not recording the hot path pays one attribute check and nothing else.
        self._recording = False
        self._present: Tensor | None = None

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_conditions={self.num_conditions}"

    def _name(self) -> str:
        return f"{type(self).__name__}({self.num_features}, num_conditions={self.num_conditions})"

    def resolve_condition(self, y: Condition | None, batch_size: int) -> Condition:
        """Validate ``y`` (or the stored condition when ``y`` is None) and return it as an int or LongTensor."""
        if y is None:
            y = self._condition
        if y is None:
            if self.num_conditions == 1:
                return 0
            raise ValueError(
                f"{self._name()} needs a condition: call it as layer(x, y) or run the model inside "
                "`with sabn.conditioned(model, y):`"
            )
        k = self.num_conditions
        if isinstance(y, bool) or not isinstance(y, (int, Tensor)):
            raise TypeError(f"{self._name()}: condition must be an int or a LongTensor, got {type(y).__name__}")
        if isinstance(y, Tensor):
            if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
                raise TypeError(f"{self._name()}: condition tensor must hold integer ids, got dtype {y.dtype}")
            if y.dim() == 0:
                y = int(y.item())
            elif y.dim() != 1 or y.shape[0] != batch_size:
                raise ValueError(
                    f"{self._name()}: condition tensor has shape {tuple(y.shape)} but the batch has "
                    f"{batch_size} samples; expected shape ({batch_size},)"
                )
            else:
                if _CHECK_RANGE and y.numel() > 0:
                    bad = (y < 0) | (y >= k)
                    if bool(bad.any()):
                        value = int(y[bad][0].item())
                        raise ValueError(f"{self._name()}: condition id {value} is out of range [0, {k})")
                return y.long()
        if not 0 <= y < k:
            raise ValueError(f"{self._name()}: condition id {y} is out of range [0, {k})")
        return int(y)

    def _record_present(self, y: Condition) -> None:
        if isinstance(y, int):
            self._present[y] = True
        elif y.numel():
            self._present |= torch.bincount(y, minlength=self.num_conditions).to(self._present.device) > 0

    def forward(self, x: Tensor, y: Condition | None = None) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self._name()}: expected input of shape (N, {self.num_features}, ...), got {tuple(x.shape)}"
            )
        if self.needs_spatial and x.dim() < 3:
            raise ValueError(f"{self._name()}: instance statistics need spatial dimensions, got {tuple(x.shape)}")
        y = self.resolve_condition(y, x.shape[0])
        if self._recording:
            self._record_present(y)
        if x.dim() == 4:
            return self._forward4d(x, y)
        # BN statistics are taken over N and every spatial position, so flattening the spatial dimensions into
        # one is exact; it lets (N, C), (N, C, L) and (N, C, D, H, W) inputs share the 4-D code path.
        shape = x.shape
        out = self._forward4d(x.reshape(shape[0], shape[1], -1, 1), y)
        return out.reshape(shape)

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers shared by the subclasses ---------------------------------------------------------------------
    def _conditional_rows(self, embed: nn.Embedding, y: Condition) -> tuple[Tensor, Tensor]:
        """The independent affine (γ_y, β_y): shapes (C,) for an int condition, (N, C) for per-sample ids."""
        rows = embed.weight[y] if isinstance(y, int) else embed(y)
        return rows[..., : self.num_features], rows[..., self.num_features :]

    def _bn_affine(self, bn: nn.Module, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        """scale ⊙ bn(x) + shift, where bn(x) includes bn's own affine when it has one.

        ``scale``/``shift`` are (C,) for a whole-batch condition or (N, C) per sample.
        """
        if type(bn) is not nn.BatchNorm2d:
            # e.g. a SyncBatchNorm after convert_sync_batchnorm: the module normalises, the rest is applied after.
            return self._affine(bn(x), scale, shift)
        if scale.dim() == 1:
            # One condition for the whole batch: every affine merges into the BN kernel's own weight and bias,
            # so the layer costs exactly one BN.
            if bn.affine:
                scale, shift = scale * bn.weight, torch.addcmul(shift, scale, bn.bias)
            return _functional_batch_norm(bn, x, scale, shift)
        if bn.affine:
            weight, bias = bn.weight, bn.bias
        else:
            # An explicit identity affine: PyTorch's CPU kernels run BN backward about twice as fast with a weight
            # tensor than with weight=None, and the result is the same.
            weight = torch.ones(bn.num_features, dtype=scale.dtype, device=x.device)
            bias = torch.zeros(bn.num_features, dtype=scale.dtype, device=x.device)
        return self._affine(_functional_batch_norm(bn, x, weight, bias), scale, shift)

    def _sandwich_affine(self, y: Condition) -> tuple[Tensor, Tensor]:
        """The shared and independent affines merged: γ_i (γ_sa x̂ + β_sa) + β_i = (γ_i γ_sa) x̂ + (γ_i β_sa + β_i).

        Merging the two small parameter vectors first means one pass over the activation instead of two. Used by
        the layers that keep the shared affine as ``shared_weight``/``shared_bias`` parameters.
        """
        gamma, beta = self._conditional_rows(self.embed, y)
        return gamma * self.shared_weight, torch.addcmul(beta, gamma, self.shared_bias)

    def condition_affine_grads(self) -> Tensor | None:
        """The gradient of each condition's independent affine, one row (scale grads, shift grads) per condition,
        shape (K, 2C); None before any backward pass. Used by :mod:`sabn.analysis`."""
        grad = self.embed.weight.grad
        return None if grad is None else grad.detach()

    def shared_affine_grads(self) -> Tensor | None:
        """The gradient of the shared affine (scale grads, shift grads), shape (2C,); None for layers without one."""
        return None

    @staticmethod
    def _affine(h: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        """scale ⊙ h + shift in one fused kernel; parameters follow h's dtype so AMP keeps half activations."""
        scale = _as_channel_view(scale.to(h.dtype), h.dim())
        shift = _as_channel_view(shift.to(h.dtype), h.dim())
        return torch.addcmul(shift, h, scale)

    @staticmethod
    def _per_branch(x: Tensor, y: Tensor, fn) -> Tensor:
        """Apply ``fn(k, x_k)`` to the samples of each condition k present in ``y`` and reassemble the batch.

        Conditions absent from the batch are never touched, so their running statistics do not move.
        """
        order = torch.argsort(y, stable=True)
        ys = y[order]
        branches, counts = torch.unique_consecutive(ys, return_counts=True)
        parts = torch.split(x[order], counts.tolist())
        out_sorted = torch.cat([fn(int(k), part) for k, part in zip(branches.tolist(), parts)])
        return out_sorted[torch.argsort(order)]


class CategoricalConditionalBatchNorm2d(ConditionalNorm):
    """CCBN: one set of BN statistics, a per-condition affine γ_i ⊙ x̂ + β_i (the GAN/NAS baseline)."""

    def __init__(
        self,
        num_features: int,
        num_conditions: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = True,
        init_std: float = 0.02,
    ) -> None:
        super().__init__(num_features, num_conditions)
        self.init_std = init_std
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine=False, track_running_stats=track_running_stats)
        self.embed = nn.Embedding(num_conditions, 2 * num_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.bn.reset_running_stats()
        _init_affine_rows(self.embed, self.num_features, self.init_std)

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:
        return self._bn_affine(self.bn, x, *self._conditional_rows(self.embed, y))


class SandwichBatchNorm2d(ConditionalNorm):
    """SaBN: γ_i ⊙ (γ_sa ⊙ x̂ + β_sa) + β_i with one set of BN statistics.

    The shared ("sandwich") affine is the affine of the inner ``bn`` (official GAN layout ``bn.weight``,
    ``bn.bias``); the independent affines are the rows of ``embed``.
    """

    def __init__(
        self,
        num_features: int,
        num_conditions: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = True,
        init_std: float = 0.02,
        shared_init_std: float = 0.02,
    ) -> None:
        super().__init__(num_features, num_conditions)
        self.init_std = init_std
        self.shared_init_std = shared_init_std
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine=True, track_running_stats=track_running_stats)
        self.embed = nn.Embedding(num_conditions, 2 * num_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.bn.reset_running_stats()
        _init_scale_shift(self.bn.weight, self.bn.bias, self.shared_init_std)
        _init_affine_rows(self.embed, self.num_features, self.init_std)

    def shared_affine_grads(self) -> Tensor | None:
        return _cat_grads(self.bn.weight, self.bn.bias)

    @property
    def shared_weight(self) -> Tensor:
        return self.bn.weight

    @property
    def shared_bias(self) -> Tensor:
        return self.bn.bias

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:
        # The inner BN applies the shared affine inside its own kernel, so SaBN costs what CCBN costs.
        return self._bn_affine(self.bn, x, *self._conditional_rows(self.embed, y))


class AuxBatchNorm2d(ConditionalNorm):
    """AuxBN: one BatchNorm2d (statistics and affine) per condition, γ_i ⊙ x̂_i + β_i (official ``bn_list``)."""

    def __init__(
        self,
        num_features: int,
        num_conditions: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = True,
        init_std: float = 0.0,
    ) -> None:
        super().__init__(num_features, num_conditions)
        self.init_std = init_std
        self.bn_list = nn.ModuleList(
            nn.BatchNorm2d(num_features, eps, momentum, affine=True, track_running_stats=track_running_stats)
            for _ in range(num_conditions)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for bn in self.bn_list:
            bn.reset_running_stats()
            _init_scale_shift(bn.weight, bn.bias, self.init_std)

    def condition_affine_grads(self) -> Tensor | None:
        rows = [_cat_grads(bn.weight, bn.bias) for bn in self.bn_list]
        if all(r is None for r in rows):
            return None
        like = next(r for r in rows if r is not None)
        return torch.stack([torch.zeros_like(like) if r is None else r for r in rows])

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:
        if isinstance(y, int):
            return self.bn_list[y](x)
        return self._per_branch(x, y, lambda k, xk: self.bn_list[k](xk))


class SandwichAuxBatchNorm2d(ConditionalNorm):
    """SaAuxBN: γ_i ⊙ (γ_sa ⊙ x̂_i + β_sa) + β_i with one set of BN statistics per condition.

    Also loads the official adversarial layout (``embed.weight`` with K+1 rows, the last being the shared affine)
    and the official NAS layout (``bns.{i}`` statistics), see :meth:`_load_from_state_dict`.
    """

    def __init__(
        self,
        num_features: int,
        num_conditions: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = True,
        init_std: float = 0.02,
        shared_init_std: float = 0.02,
    ) -> None:
        super().__init__(num_features, num_conditions)
        self.init_std = init_std
        self.shared_init_std = shared_init_std
        self.bn_list = nn.ModuleList(
            nn.BatchNorm2d(num_features, eps, momentum, affine=False, track_running_stats=track_running_stats)
            for _ in range(num_conditions)
        )
        self.shared_weight = nn.Parameter(torch.empty(num_features))
        self.shared_bias = nn.Parameter(torch.empty(num_features))
        self.embed = nn.Embedding(num_conditions, 2 * num_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for bn in self.bn_list:
            bn.reset_running_stats()
        _init_scale_shift(self.shared_weight, self.shared_bias, self.shared_init_std)
        _init_affine_rows(self.embed, self.num_features, self.init_std)

    def shared_affine_grads(self) -> Tensor | None:
        return _cat_grads(self.shared_weight, self.shared_bias)

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:
        scale, shift = self._sandwich_affine(y)
        if isinstance(y, int):
            return self._bn_affine(self.bn_list[y], x, scale, shift)
        ones, zeros = torch.ones_like(self.shared_weight), torch.zeros_like(self.shared_bias)
        h = self._per_branch(x, y, lambda k, xk: self._bn_affine(self.bn_list[k], xk, ones, zeros))
        return self._affine(h, scale, shift)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        c, k = self.num_features, self.num_conditions
        embed_key, sw_key, sb_key = prefix + "embed.weight", prefix + "shared_weight", prefix + "shared_bias"
        rows = state_dict.get(embed_key)
        if rows is not None and sw_key not in state_dict and rows.shape == (k + 1, 2 * c):
            # Official Adv layout: the shared affine is the last embedding row.
            state_dict[embed_key] = rows[:k].clone()
            state_dict[sw_key] = rows[k, :c].clone()
            state_dict[sb_key] = rows[k, c:].clone()
        old = prefix + "bns."
        for key in [key for key in state_dict if key.startswith(old)]:
            # Official NAS layout names the per-condition statistics `bns.{i}`.
            state_dict[prefix + "bn_list." + key[len(old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class SandwichInstanceNorm2d(ConditionalNorm):
    """SaIN: γ_i ⊙ (γ_sa ⊙ IN(x) + β_sa) + β_i, instance statistics with a per-condition affine (e.g. a style id)."""

    needs_spatial = True

    def __init__(
        self,
        num_features: int,
        num_conditions: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        track_running_stats: bool = False,
        init_std: float = 0.02,
        shared_init_std: float = 0.02,
    ) -> None:
        super().__init__(num_features, num_conditions)
        self.init_std = init_std
        self.shared_init_std = shared_init_std
        self.norm = nn.InstanceNorm2d(
            num_features, eps, momentum if momentum is not None else 0.1, affine=False,
            track_running_stats=track_running_stats,
        )
        self.shared_weight = nn.Parameter(torch.empty(num_features))
        self.shared_bias = nn.Parameter(torch.empty(num_features))
        self.embed = nn.Embedding(num_conditions, 2 * num_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.norm.track_running_stats:
            self.norm.reset_running_stats()
        _init_scale_shift(self.shared_weight, self.shared_bias, self.shared_init_std)
        _init_affine_rows(self.embed, self.num_features, self.init_std)

    def shared_affine_grads(self) -> Tensor | None:
        return _cat_grads(self.shared_weight, self.shared_bias)

    def _forward4d(self, x: Tensor, y: Condition) -> Tensor:
        return self._affine(self.norm(x), *self._sandwich_affine(y))


# ---------------------------------------------------------------------------------------------------------------
# Style-conditioned instance norms: the condition is a style feature map, not an id.


def calc_mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and std over spatial positions, std = sqrt(unbiased var + eps) as in AdaIN.

    Returns tensors of shape (N, C, 1, 1).
    """
    if feat.dim() != 4:
        raise ValueError(f"expected a feature map of shape (N, C, H, W), got {tuple(feat.shape)}")
    n, c = feat.shape[:2]
    if feat.shape[2] * feat.shape[3] < 2:
        raise ValueError(f"instance statistics need at least 2 spatial positions, got {tuple(feat.shape)}")
    flat = feat.reshape(n, c, -1)
    var, mean = torch.var_mean(flat, dim=2, correction=1)
    return mean.view(n, c, 1, 1), (var + eps).sqrt().view(n, c, 1, 1)


StyleInput = Tensor | tuple[Tensor, Tensor]


def _style_stats(content: Tensor, style: StyleInput, eps: float) -> tuple[Tensor, Tensor]:
    if isinstance(style, tuple):
        mean, std = style
    else:
        if style.dim() != 4 or style.shape[1] != content.shape[1]:
            raise ValueError(
                f"style features must have shape (N, {content.shape[1]}, H, W), got {tuple(style.shape)}"
            )
        mean, std = calc_mean_std(style, eps)
    if mean.shape[0] not in (1, content.shape[0]):
        raise ValueError(f"style batch {mean.shape[0]} must be 1 or equal the content batch {content.shape[0]}")
    return mean, std


def adaptive_instance_norm(content: Tensor, style: StyleInput, eps: float = 1e-5) -> Tensor:
    """AdaIN: σ(s) ⊙ (c − μ(c)) / σ(c) + μ(s).

    ``style`` is a style feature map (N or 1 samples) or a precomputed ``(mean, std)`` pair of shape (N, C, 1, 1).
    """
    c_mean, c_std = calc_mean_std(content, eps)
    s_mean, s_std = _style_stats(content, style, eps)
    return (content - c_mean) / c_std * s_std + s_mean


class AdaptiveInstanceNorm2d(nn.Module):
    """AdaIN as a module (no parameters); ``forward(content, style)``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps

    def extra_repr(self) -> str:
        return f"{self.num_features}"

    def forward(self, content: Tensor, style: StyleInput) -> Tensor:
        if content.dim() != 4 or content.shape[1] != self.num_features:
            raise ValueError(f"expected content of shape (N, {self.num_features}, H, W), got {tuple(content.shape)}")
        return adaptive_instance_norm(content, style, self.eps)


class SandwichAdaIN(nn.Module):
    """SaAdaIN: σ(s) ⊙ (γ_sa ⊙ (c − μ(c)) / σ(c) + β_sa) + μ(s); only the shared affine is learned.

    Initialised to exactly γ_sa = 1, β_sa = 0 as in the official code, so it starts out equal to AdaIN.
    Official layout: ``shared_weight``, ``shared_bias``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, shared_init_std: float = 0.0) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.shared_init_std = shared_init_std
        self.shared_weight = nn.Parameter(torch.empty(num_features))
        self.shared_bias = nn.Parameter(torch.empty(num_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _init_scale_shift(self.shared_weight, self.shared_bias, self.shared_init_std)

    def extra_repr(self) -> str:
        return f"{self.num_features}"

    def normalize(self, content: Tensor) -> Tensor:
        """The content features after instance normalisation and the shared affine (before the style's stats)."""
        if content.dim() != 4 or content.shape[1] != self.num_features:
            raise ValueError(f"expected content of shape (N, {self.num_features}, H, W), got {tuple(content.shape)}")
        c_mean, c_std = calc_mean_std(content, self.eps)
        w = _as_channel_view(self.shared_weight.to(content.dtype), 4)
        b = _as_channel_view(self.shared_bias.to(content.dtype), 4)
        return torch.addcmul(b, (content - c_mean) / c_std, w)

    def forward(self, content: Tensor, style: StyleInput) -> Tensor:
        s_mean, s_std = _style_stats(content, style, self.eps)
        return self.normalize(content) * s_std + s_mean


#: Layers whose condition is an id (what sabn.conditioned sets).
CONDITIONAL_LAYERS = (
    CategoricalConditionalBatchNorm2d,
    SandwichBatchNorm2d,
    AuxBatchNorm2d,
    SandwichAuxBatchNorm2d,
    SandwichInstanceNorm2d,
)
