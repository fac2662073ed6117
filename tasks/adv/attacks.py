"""PGD L∞ through a chosen BN branch, and clean/robust accuracy counts.

The attack works on any ``nn.Module`` that maps images in [0, 1] to logits with a plain ``model(x)`` call. The BN
branch the attacker uses and whether the model runs in train or eval mode while attacking are explicit arguments:
the official training code attacks through branch 1 in **train** mode (so branch-1 BN running statistics move with
every attack iterate), its evaluation attacks in eval mode. Everything the attack changes on the model — module
train/eval flags, the active branch, ``requires_grad`` of parameters — is restored afterwards, also when it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sabn

AttackMode = Literal["eval", "train", "keep"]
ATTACK_MODES = ("eval", "train", "keep")
LossFn = Callable[[Tensor, Tensor], Tensor]


def summed_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy summed over the batch: each sample's input gradient then does not shrink with the batch size
    (the sign, which is all PGD uses, is the same as for the mean)."""
    return F.cross_entropy(logits, y, reduction="sum")


def using_branch(model: nn.Module, branch: int | None) -> AbstractContextManager[Any]:
    """A context manager running ``model`` through BN ``branch`` and restoring the previous branch on exit.

    Uses ``model.use_branch`` when the model has one (see :class:`tasks.adv.model.PreActResNet18`), otherwise
    :func:`sabn.conditioned` (a no-op for models without conditional layers); ``None`` leaves the branch alone.
    """
    if branch is None:
        return nullcontext(model)
    use_branch = getattr(model, "use_branch", None)
    if callable(use_branch):
        return use_branch(branch)
    return sabn.conditioned(model, branch)


@contextmanager
def preserved_model_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every module's train/eval flag and every parameter's ``requires_grad`` on exit (also on errors)."""
    modes = [(m, m.training) for m in model.modules()]
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
        for p, requires_grad in grads:
            p.requires_grad_(requires_grad)


def _uniform_noise(x: Tensor, eps: float, generator: torch.Generator | None) -> Tensor:
    """U(−eps, eps) noise shaped like ``x``; drawn on the generator's device so a CPU generator also seeds CUDA runs."""
    device = generator.device if generator is not None else x.device
    noise = torch.empty(x.shape, dtype=x.dtype, device=device).uniform_(-eps, eps, generator=generator)
    return noise.to(x.device)


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool = True,
    branch: int | None = 1,
    mode: AttackMode = "eval",
    loss_fn: LossFn | None = None,
    generator: torch.Generator | None = None,
    clamp_start: bool = False,
) -> Tensor:
    """Projected gradient ascent in the L∞ ball of radius ``eps`` around images ``x`` in [0, 1].

    Start at ``x + U(−eps, eps)`` (``random_start``) or at ``x``; then ``steps`` times: ascend
    ``step_size · sign(∇_x loss_fn(model(x_adv), y))``, project onto the ε-ball, clamp to [0, 1].

    Args:
        branch: the BN branch the attack runs through (official: 1, adversarial); ``None`` keeps the active one.
        mode: ``"eval"`` (running statistics, none updated), ``"train"`` (batch statistics; the branch's running
            statistics move with every iterate, as in the official training loop) or ``"keep"`` (as the model is).
            Callers should record which one they used.
        loss_fn: ``loss_fn(logits, y)`` → scalar to ascend (non-scalars are summed); default cross-entropy summed
            over the batch.
        generator: seeds the random start; with a seeded generator the result is deterministic.
        clamp_start: clamp the random start to [0, 1] before the first step. Default ``False`` = the official code,
            whose start may leave [0, 1] (only the iterates after each step are clamped).

    Returns the detached adversarial batch (for ``steps = 0`` and no clamping it may lie outside [0, 1]). Parameter
    gradients are neither computed nor accumulated (the gradient is taken w.r.t. the input only, with parameters
    frozen during the attack); the model's train/eval flags, branch and ``requires_grad`` flags are restored.
    Pass the bare module, not a DDP wrapper (its forward would synchronise buffers on every attack step).
    """
    if mode not in ATTACK_MODES:
        raise ValueError(f"mode must be one of {', '.join(ATTACK_MODES)}, got {mode!r}")
    if eps < 0 or step_size < 0:
        raise ValueError(f"eps and step_size must be >= 0, got eps={eps}, step_size={step_size}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point image batch, got dtype {x.dtype}")
    if y.shape[:1] != x.shape[:1]:
        raise ValueError(f"x has {x.shape[0]} samples but y has shape {tuple(y.shape)}")
    if x.numel() > 0:
        lo_val, hi_val = torch.aminmax(x.detach())
        if lo_val < 0 or hi_val > 1:
            raise ValueError(
                f"pgd expects images in [0, 1] (normalisation belongs inside the model), got range "
                f"[{float(lo_val):.3g}, {float(hi_val):.3g}]"
            )
    loss_fn = summed_cross_entropy if loss_fn is None else loss_fn
    x = x.detach()
    # Projection onto the ε-ball followed by the [0, 1] clamp is one clamp to these bounds (x lies in [0, 1]).
    lower = (x - eps).clamp_(min=0.0)
    upper = (x + eps).clamp_(max=1.0)

    with preserved_model_state(model), using_branch(model, branch), torch.enable_grad():
        if mode == "eval":
            model.eval()
        elif mode == "train":
            model.train()
        for p in model.parameters():
            p.requires_grad_(False)

        x_adv = x + _uniform_noise(x, eps, generator) if random_start else x.clone()
        if clamp_start:
            x_adv = x_adv.clamp(0.0, 1.0)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = loss_fn(model(x_adv), y)
            if loss.dim() != 0:
                loss = loss.sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.clamp(x_adv.detach() + step_size * grad.sign(), lower, upper)
    return x_adv.detach()


@dataclass(frozen=True)
class RobustCounts:
    """Correct-prediction counts of one evaluation; add them up across batches or processes.

    ``total`` samples, ``clean_correct`` right on the clean inputs, ``robust_correct`` right on the attacked inputs.
    """

    total: int = 0
    clean_correct: int = 0
    robust_correct: int = 0

    def __add__(self, other: RobustCounts) -> RobustCounts:
        if not isinstance(other, RobustCounts):
            return NotImplemented
        return RobustCounts(
            self.total + other.total,
            self.clean_correct + other.clean_correct,
            self.robust_correct + other.robust_correct,
        )

    @property
    def clean_accuracy(self) -> float:
        """Fraction in [0, 1] (NaN when no sample was evaluated)."""
        return self.clean_correct / self.total if self.total else float("nan")

    @property
    def robust_accuracy(self) -> float:
        """Fraction in [0, 1] (NaN when no sample was evaluated)."""
        return self.robust_correct / self.total if self.total else float("nan")

    def to_tensor(self, device: torch.device | str = "cpu") -> Tensor:
        """``[total, clean_correct, robust_correct]`` as int64, e.g. for ``torch.distributed.all_reduce``."""
        return torch.tensor([self.total, self.clean_correct, self.robust_correct], dtype=torch.int64, device=device)

    @classmethod
    def from_tensor(cls, t: Tensor) -> RobustCounts:
        """Inverse of :meth:`to_tensor`."""
        total, clean, robust = (int(v) for v in t.tolist())
        return cls(total, clean, robust)


def evaluate_robust(
    model: nn.Module,
    loader: Iterable[Any],
    attack_kwargs: Mapping[str, Any],
    branch: int | None,
    device: torch.device | str,
    max_batches: int | None = None,
) -> RobustCounts:
    """Clean and PGD-robust correct counts of ``model`` through BN ``branch`` over ``loader``.

    The model is in eval mode for the clean pass, the attack and the robust pass (the official evaluation protocol);
    the attack is white-box through the same branch. ``attack_kwargs`` are :func:`pgd`'s ``eps``, ``step_size``,
    ``steps`` and optionally ``random_start``, ``loss_fn``, ``generator``, ``clamp_start``. ``loader`` yields
    ``(images in [0, 1], labels)`` batches. The model's modes and branch are restored afterwards.
    """
    forbidden = {"branch", "mode"} & set(attack_kwargs)
    if forbidden:
        raise ValueError(f"attack_kwargs must not set {', '.join(sorted(forbidden))}: evaluate_robust fixes them")
    counts = RobustCounts()
    with preserved_model_state(model):
        model.eval()
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            with torch.no_grad(), using_branch(model, branch):
                clean = int((model(x).argmax(1) == y).sum())
            x_adv = pgd(model, x, y, branch=branch, mode="eval", **attack_kwargs)
            with torch.no_grad(), using_branch(model, branch):
                robust = int((model(x_adv).argmax(1) == y).sum())
            counts = counts + RobustCounts(int(y.shape[0]), clean, robust)
    return counts
