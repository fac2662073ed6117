"""Clean and robust accuracy through each BN branch: PGD-k (this package's :func:`~tasks.adv.attacks.pgd`) and,
optionally, AutoAttack from torchattacks. Shared by the per-epoch validation, the final evaluation of a training
run and ``python -m tasks.adv.evaluate``.

Protocol: the model is in eval mode for the clean pass, the attack and the prediction on the attacked images; the
attack is white-box through the same branch it is evaluated on. Counts are summed over DDP ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tasks.common.errors import UserError
from tasks.common.runtime import all_reduce_sum

from .attacks import pgd, preserved_model_state, using_branch

AUTOATTACK_LABEL = "torchattacks AutoAttack (standard, Linf)"
INSTALL_HINT = "pip install -e '.[attacks]'"
#: Protocol note of every branch metric of a model without branches.
NO_BRANCHES_NOTE = "norm=bn has one BN and no branches: the b0 and b1 numbers are one evaluation reported under both names"


@dataclass(frozen=True)
class PGDSettings:
    """The PGD evaluation attack besides its number of steps."""

    eps: float
    step_size: float
    random_start: bool = True
    clamp_start: bool = False
    restarts: int = 1

    def describe(self, steps: int) -> dict[str, Any]:
        """The protocol entries of a PGD-``steps`` evaluation."""
        return {
            "attack": f"PGD-{steps} L∞ (tasks.adv.attacks.pgd), cross-entropy, white-box through the same branch",
            "eps": self.eps, "eps_255": round(self.eps * 255, 4), "step_size": self.step_size,
            "step_size_255": round(self.step_size * 255, 4), "steps": steps, "restarts": self.restarts,
            "random_start": ("U(−ε, ε)" + (", clamped to [0, 1]" if self.clamp_start else ", not clamped (official)"))
            if self.random_start else "none",
            "bn_mode": "eval (running statistics) for the attack and the prediction",
        }


def has_branches(model: nn.Module) -> bool:
    """Whether the BN branch changes what ``model`` computes (False for ``norm=bn``)."""
    return bool(getattr(model, "is_conditional", True))


class BranchView(nn.Module):
    """``model`` seen through one BN branch: ``view(x) == model(x, branch=branch)`` (for attack libraries, which
    call ``model(x)``)."""

    def __init__(self, model: nn.Module, branch: int) -> None:
        super().__init__()
        self.model = model
        self.branch = branch

    def forward(self, x: Tensor) -> Tensor:
        with using_branch(self.model, self.branch):
            return self.model(x)


def require_torchattacks() -> Any:
    """The ``torchattacks`` module, or a one-line :class:`UserError` naming the extra to install."""
    try:
        import torchattacks
    except ImportError as e:
        raise UserError(f"AutoAttack needs the optional package torchattacks: {INSTALL_HINT}") from e
    return torchattacks


def autoattack_protocol(eps: float) -> dict[str, Any]:
    """The protocol entries of an AutoAttack evaluation (torchattacks' version, which differs from the original)."""
    import importlib.metadata as md

    try:
        version = md.version("torchattacks")
    except md.PackageNotFoundError:
        version = None
    return {
        "attack": AUTOATTACK_LABEL, "implementation": f"torchattacks {version}", "eps": eps,
        "eps_255": round(eps * 255, 4),
        "components": "APGD-CE, APGD-T, FAB-T (10 iterations each: torchattacks defaults; the original AutoAttack "
                      "uses 100), Square (5000 queries), applied in sequence to the still-correct samples",
        "bn_mode": "eval (running statistics)",
    }


def _autoattack(model: nn.Module, x: Tensor, y: Tensor, branch: int, eps: float, num_classes: int,
                seed: int) -> Tensor:
    torchattacks = require_torchattacks()
    attack = torchattacks.AutoAttack(BranchView(model, branch), norm="Linf", eps=eps, version="standard",
                                     n_classes=num_classes, seed=seed)
    # torchattacks' APGD re-seeds the global RNGs: keep the caller's streams untouched.
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return attack(x, y)


def evaluate_branches(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    branches: Sequence[int],
    pgd_steps: Sequence[int],
    settings: PGDSettings,
    device: torch.device,
    seed: int = 0,
    autoattack_branches: Sequence[int] = (),
    autoattack_samples: int | None = None,
    num_classes: int = 10,
    with_loss: bool = False,
) -> dict[str, float]:
    """Accuracies (%) of ``model`` over ``loader`` through each branch: ``clean_acc_b<k>``, ``pgd<s>_acc_b<k>`` for
    every ``s`` in ``pgd_steps`` and ``autoattack_acc_b<k>`` for the ``autoattack_branches`` (on the first
    ``autoattack_samples`` images of this process's loader, all for ``None``); with ``with_loss`` also the mean cross-entropies
    ``clean_loss_b<k>`` and ``pgd<s>_loss_b<k>`` (the worst restart per image).

    A model without branches (``norm=bn``) is evaluated once; every branch name then carries that one result. The
    attacks draw their random starts from one generator seeded with ``seed``, so the numbers are repeatable. The
    model's modes, branch and ``requires_grad`` flags are restored afterwards.
    """
    if settings.restarts < 1:
        raise UserError(f"restarts must be >= 1, got {settings.restarts}")
    branched = has_branches(model)
    # A model without branches is evaluated once (through the first requested branch, which it ignores).
    todo = list(dict.fromkeys(branches)) if branched else list(branches)[:1]
    aa_todo = list(dict.fromkeys(autoattack_branches)) if branched else list(autoattack_branches)[:1]
    gen = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, Tensor] = {}  # "<kind>_b<k>" -> [correct, loss sum, count]

    def add(key: str, correct: Tensor, loss: Tensor) -> None:
        row = torch.stack([correct.sum().double(), loss.sum().double(),
                           torch.tensor(float(correct.numel()), dtype=torch.float64, device=device)])
        sums[key] = sums[key] + row if key in sums else row

    def predict(x: Tensor, y: Tensor, b: int) -> tuple[Tensor, Tensor]:
        with torch.no_grad(), using_branch(model, b):
            logits = model(x).float()
        return logits.argmax(1) == y, F.cross_entropy(logits, y, reduction="none")

    seen = 0
    with preserved_model_state(model):
        model.eval()
        for batch in loader:
            x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
            for b in todo:
                add(f"clean_b{b}", *predict(x, y, b))
                for steps in pgd_steps:
                    correct, worst = torch.ones_like(y, dtype=torch.bool), torch.zeros(y.shape, device=device)
                    for _ in range(settings.restarts):
                        x_adv = pgd(model, x, y, settings.eps, settings.step_size, int(steps),
                                    random_start=settings.random_start, branch=b, mode="eval", generator=gen,
                                    clamp_start=settings.clamp_start)
                        right, loss = predict(x_adv, y, b)
                        correct, worst = correct & right, torch.maximum(worst, loss)
                    add(f"pgd{steps}_b{b}", correct, worst)
            room = x.shape[0] if autoattack_samples is None else min(x.shape[0], autoattack_samples - seen)
            for b in aa_todo if room > 0 else []:
                x_adv = _autoattack(model, x[:room], y[:room], b, settings.eps, num_classes, seed)
                add(f"autoattack_b{b}", *predict(x_adv, y[:room], b))
            seen += x.shape[0]

    out: dict[str, float] = {}
    for key in sorted(sums):
        correct, loss, count = all_reduce_sum(sums[key]).tolist()
        kind, branch = key.rsplit("_", 1)
        names = (f"{kind}_%s_{branch}",) if branched else tuple(
            f"{kind}_%s_b{b}" for b in (autoattack_branches if kind == "autoattack" else branches))
        for name in names:
            out[name % "acc"] = 100.0 * correct / max(count, 1.0)
            if with_loss and kind != "autoattack":
                out[name % "loss"] = loss / max(count, 1.0)
    return out
