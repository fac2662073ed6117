"""Architecture-parameter math of the weight-sharing NAS algorithms: GDAS sampling and τ schedule, the first-order
α step (DARTS-V1, GDAS) and the DARTS second-order (unrolled) α step (DARTS-V2).

Everything takes plain arguments (a model, tensors, numbers); the search loop that calls these lives elsewhere.
Facts: ../shared/reference/reference_repos.md §3.5 (GDAS) and §4 (DARTS-V2 ``backward_step_unrolled``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Criterion = Callable[[Tensor, Tensor], Tensor]


# --- GDAS -----------------------------------------------------------------------------------------------------


def gumbel_hard_sample(alpha: Tensor, tau: float, max_tries: int = 100) -> tuple[Tensor, Tensor]:
    """GDAS straight-through Gumbel sample of one op per edge.

    Returns ``(hardwts, index)``: ``index`` (E,) is argmax of softmax((log_softmax(α) + g) / τ) with Gumbel noise g,
    ``hardwts`` (E, num_ops) = one_hot(index) − p.detach() + p, i.e. one-hot in the forward pass and the gradient
    of the soft probabilities p in the backward pass. Like the official code it draws again when the noise or the
    probabilities are not finite (an exponential sample of exactly 0 gives an infinite g).
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    log_p = alpha.log_softmax(dim=-1)
    for _ in range(max_tries):
        gumbels = -torch.empty_like(alpha).exponential_().log()
        probs = ((log_p + gumbels) / tau).softmax(dim=-1)
        # one host synchronisation per sample, as in the official loop
        if bool(torch.isfinite(gumbels).all() & torch.isfinite(probs).all()):
            index = probs.argmax(dim=-1)
            one_hot = torch.zeros_like(probs).scatter_(-1, index.unsqueeze(-1), 1.0)
            return one_hot - probs.detach() + probs, index
    raise FloatingPointError(f"no finite Gumbel sample in {max_tries} draws; alpha holds NaN/inf or tau={tau} is too small")


def gdas_tau(epoch: int, total_epochs: int, tau_max: float = 10.0, tau_min: float = 0.1) -> float:
    """GDAS temperature at ``epoch`` (0-based): linear from ``tau_max`` at the first epoch to ``tau_min`` at the last.

    A one-epoch search uses ``tau_max`` (the official formula divides by total_epochs − 1).
    """
    if total_epochs < 1 or not 0 <= epoch < total_epochs:
        raise ValueError(f"need 0 <= epoch < total_epochs, got epoch={epoch}, total_epochs={total_epochs}")
    if total_epochs == 1:
        return float(tau_max)
    return float(tau_max - (tau_max - tau_min) * epoch / (total_epochs - 1))


# --- parameter groups -------------------------------------------------------------------------------------------


def _alphas(model: nn.Module, alphas: Sequence[Tensor] | None) -> list[Tensor]:
    if alphas is not None:
        return list(alphas)
    if hasattr(model, "alpha_parameters"):
        return list(model.alpha_parameters())
    raise TypeError(f"{type(model).__name__} has no alpha_parameters(); pass alphas=[...] explicitly")


def _weights(model: nn.Module, alphas: list[Tensor], weights: Sequence[Tensor] | None) -> list[Tensor]:
    if weights is not None:
        return list(weights)
    if hasattr(model, "weight_parameters"):
        return list(model.weight_parameters())
    ids = {id(a) for a in alphas}
    return [p for p in model.parameters() if id(p) not in ids]


def _set_grads(params: Sequence[Tensor], grads: Sequence[Tensor]) -> None:
    for p, g in zip(params, grads):
        p.grad = g.detach().clone()


def _grads_or_zeros(grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> list[Tensor]:
    # a weight that did not take part in the loss (e.g. an unused embedding row set) has gradient zero
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


# --- first-order α step (DARTS-V1, GDAS) ---------------------------------------------------------------------


def arch_step(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    arch_optimizer: torch.optim.Optimizer,
    criterion: Criterion = F.cross_entropy,
    alphas: Sequence[Tensor] | None = None,
) -> Tensor:
    """One first-order α update on an arch (validation) batch: α.grad = ∇α L_val(w, α), then ``arch_optimizer``.

    Only α's gradient is computed (``backward(inputs=α)``), so the weights' ``.grad`` is left untouched and the
    weight-gradient kernels are skipped. Returns the detached loss.
    """
    params = _alphas(model, alphas)
    loss = criterion(model(inputs), targets)
    for p in params:
        p.grad = None
    loss.backward(inputs=params)
    arch_optimizer.step()
    return loss.detach()


# --- DARTS-V2 (second order) --------------------------------------------------------------------------------------


def sgd_hyperparameters(
    optimizer: torch.optim.Optimizer, weights: Sequence[Tensor]
) -> tuple[float, float, float, list[Tensor | None]]:
    """``(lr, momentum, weight_decay, momentum_buffers)`` of the weight optimizer, as the official virtual step reads
    them: hyper-parameters of ``param_groups[0]``, the SGD ``momentum_buffer`` of each weight (None if absent)."""
    group = optimizer.param_groups[0]
    buffers = [optimizer.state.get(w, {}).get("momentum_buffer") for w in weights]
    return float(group["lr"]), float(group.get("momentum", 0.0)), float(group.get("weight_decay", 0.0)), buffers


def _condition_scope(model: nn.Module) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of contexts in which every forward of ``model`` uses the same condition draw.

    The finite-difference Hessian-vector product compares two training losses; with SaBN's sampled conditions
    (a fresh draw per forward) the difference would be dominated by the draw, so the virtual step and both
    perturbed passes share one draw. Models without conditions get a no-op context.
    """
    sample = getattr(model, "sample_op_choices", None)
    use = getattr(model, "using_op_choices", None)
    if sample is None or use is None:
        return contextlib.nullcontext
    choices = sample()
    return lambda: use(choices)


@contextlib.contextmanager
def _buffers_restored(model: nn.Module):
    """Undo running-statistic updates made inside the block (the official code runs this pass on a deep copy)."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, value in saved:
                b.copy_(value)


def darts_v2_arch_step(
    model: nn.Module,
    base_inputs: Tensor,
    base_targets: Tensor,
    arch_inputs: Tensor,
    arch_targets: Tensor,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    momentum_buffers: Sequence[Tensor | None] | None = None,
    arch_optimizer: torch.optim.Optimizer | None = None,
    criterion: Criterion = F.cross_entropy,
    r: float = 0.01,
    alphas: Sequence[Tensor] | None = None,
    weights: Sequence[Tensor] | None = None,
) -> Tensor:
    """DARTS second-order α gradient (official ``backward_step_unrolled``), written into ``α.grad``; then
    ``arch_optimizer.step()`` when one is given. Returns the detached validation loss at the virtual weights.

    1. Virtual SGD step on the base batch: w′ = w − lr·(momentum·buf + ∇w L_train(w, α) + weight_decay·w)
       (``buf`` = the SGD momentum buffers, zeros when absent; Nesterov is not reproduced, as in the official code).
    2. L_val(w′, α) on the arch batch gives dα = ∇α L_val and v = ∇w′ L_val.
    3. Hessian-vector product by central differences at w: R = r/‖v‖, w± = w ± R·v,
       HVP = (∇α L_train(w+, α) − ∇α L_train(w−, α)) / (2R).
    4. α.grad = dα − lr·HVP.

    The weights are changed in place and restored exactly (no deep copy of the network); running statistics
    updated by the virtual-weight pass are restored too. The three base-batch passes share one condition draw
    of a SaBN supernet (see :func:`_condition_scope`). ``alphas``/``weights`` default to the model's
    ``alpha_parameters()`` / ``weight_parameters()``. Use :func:`sgd_hyperparameters` to read ``lr``, ``momentum``,
    ``weight_decay`` and ``momentum_buffers`` from the weight optimizer.
    """
    alpha_list = _alphas(model, alphas)
    weight_list = _weights(model, alpha_list, weights)
    if momentum_buffers is not None and len(momentum_buffers) != len(weight_list):
        raise ValueError(f"{len(momentum_buffers)} momentum buffers for {len(weight_list)} weights")
    base_scope = _condition_scope(model)

    # 1. the virtual step
    with base_scope():
        train_loss = criterion(model(base_inputs), base_targets)
    dtheta = _grads_or_zeros(torch.autograd.grad(train_loss, weight_list, allow_unused=True), weight_list)
    backup = [w.detach().clone() for w in weight_list]
    with torch.no_grad():
        for i, (w, g) in enumerate(zip(weight_list, dtheta)):
            step = g + weight_decay * w
            buf = momentum_buffers[i] if momentum_buffers is not None else None
            if buf is not None and momentum != 0.0:
                step = step + momentum * buf
            w.sub_(lr * step)

    try:
        # 2. validation loss at the virtual weights
        with _buffers_restored(model):
            val_loss = criterion(model(arch_inputs), arch_targets)
            grads = torch.autograd.grad(val_loss, alpha_list + weight_list, allow_unused=True)
        dalpha = _grads_or_zeros(grads[: len(alpha_list)], alpha_list)
        vector = _grads_or_zeros(grads[len(alpha_list) :], weight_list)

        # 3. finite-difference Hessian-vector product around the real weights
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in vector]))
        if float(norm) == 0.0:
            hvp = [torch.zeros_like(a) for a in alpha_list]
        else:
            radius = r / norm
            grad_at = []
            for sign in (1.0, -1.0):
                with torch.no_grad():
                    for w, w0, v in zip(weight_list, backup, vector):
                        w.copy_(w0 + sign * radius * v)
                with base_scope():
                    loss = criterion(model(base_inputs), base_targets)
                grad_at.append(_grads_or_zeros(torch.autograd.grad(loss, alpha_list, allow_unused=True), alpha_list))
            hvp = [(gp - gn) / (2 * radius) for gp, gn in zip(*grad_at)]
    finally:
        with torch.no_grad():
            for w, w0 in zip(weight_list, backup):
                w.copy_(w0)

    # 4. the unrolled α gradient
    _set_grads(alpha_list, [da - lr * h for da, h in zip(dalpha, hvp)])
    if arch_optimizer is not None:
        arch_optimizer.step()
    return val_loss.detach()
