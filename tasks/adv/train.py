"""Adversarial training (paper §2.3, official ``Adv/``): PGD examples through branch 1, the objective
``clean_weight · CE(x, branch 0) + adv_weight · CE(x_adv, branch 1)``, per-epoch validation, and the final
clean / PGD-10 / PGD-20 evaluation of the last and of the best-validation weights."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from tasks.common.analysis import GradientAnalysis
from tasks.common.checkpoint import atomic_torch_save
from tasks.common.data import BatchStream, eval_loader
from tasks.common.errors import UserError
from tasks.common.norms import check_norm, norm_factory
from tasks.common.results import Metric
from tasks.common.run import Run
from tasks.common.runtime import autocast, grad_scaler, prepare_model

from .attacks import pgd
from .config import BestBy, InputNorm
from .curves import plot_curves
from .data import AdvSplits, build_splits, first
from .evaluation import (
    AUTOATTACK_LABEL,
    NO_BRANCHES_NOTE,
    PGDSettings,
    autoattack_protocol,
    evaluate_branches,
    require_torchattacks,
)
from .model import ADV_BRANCH, ADV_NORMS, CLEAN_BRANCH, IMAGENET_MEAN, IMAGENET_STD, PreActResNet18

log = logging.getLogger(__name__)
BRANCHES = (CLEAN_BRANCH, ADV_BRANCH)


def name_of(option: object) -> str:
    """The plain string of a config option (enum members arrive as enums)."""
    return str(getattr(option, "value", option))


def lr_at(step: int, steps_per_epoch: int, t: DictConfig) -> float:
    """The learning rate of optimiser step ``step`` (0-based): the official linear warm-up
    ``warmup_start_lr + i · (lr − warmup_start_lr) / warmup_iters`` over the first ``warmup_iters`` iterations,
    then ``lr · gamma^(number of milestones ≤ epoch)``."""
    if step < t.warmup_iters:
        return min(t.warmup_start_lr + step * (t.lr - t.warmup_start_lr) / t.warmup_iters, t.lr)
    epoch = step // steps_per_epoch
    return t.lr * t.gamma ** sum(epoch >= m for m in t.milestones)


class AdvObjective(nn.Module):
    """The training loss of a batch, as one module so that DDP sees one forward with both branch passes:
    ``clean_weight · CE(net(x; branch 0), y) + adv_weight · CE(net(x_adv; branch 1), y)``.

    With ``clean_weight = 0`` (PGD-AT) the clean pass is skipped. Returns ``(loss, clean logits or None, adversarial
    logits)``. For ``norm=bn`` the branches are ignored: the two passes go through one BN, each with its own batch
    statistics (official).
    """

    def __init__(self, net: PreActResNet18, clean_weight: float, adv_weight: float) -> None:
        super().__init__()
        self.net = net
        self.clean_weight, self.adv_weight = float(clean_weight), float(adv_weight)

    def forward(self, x: Tensor, x_adv: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        logits_adv = self.net(x_adv, branch=ADV_BRANCH)
        loss = self.adv_weight * F.cross_entropy(logits_adv, y)
        logits_clean = None
        if self.clean_weight > 0:
            logits_clean = self.net(x, branch=CLEAN_BRANCH)
            loss = loss + self.clean_weight * F.cross_entropy(logits_clean, y)
        return loss, logits_clean, logits_adv


class BestWeights:
    """The weights (and BN statistics) of the best validated epoch so far; checkpointed with the run, so a resumed
    run keeps them. A value must be strictly greater than the best so far (the earliest of equal epochs wins)."""

    def __init__(self, criterion: str) -> None:
        self.criterion = criterion
        self.value: float | None = None
        self.epoch: int | None = None
        self.step: int | None = None
        self.weights: dict[str, Tensor] | None = None

    def offer(self, value: float, epoch: int, step: int, model: nn.Module) -> bool:
        """Keep a CPU copy of ``model``'s state if ``value`` beats the best so far; returns whether it did."""
        if self.value is not None and not value > self.value:
            return False
        self.value, self.epoch, self.step = float(value), int(epoch), int(step)
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "value": self.value, "epoch": self.epoch, "step": self.step,
                "weights": self.weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.criterion, self.value, self.epoch = state["criterion"], state["value"], state["epoch"]
        self.step, self.weights = state["step"], state["weights"]


def best_key(cfg: DictConfig) -> str:
    """The per-epoch log key that ``eval.best_by`` selects by."""
    by = BestBy(name_of(cfg.eval.best_by))
    kind = f"pgd{int(cfg.eval.epoch_pgd_steps)}" if "robust" in by.value else "clean"
    return f"val/{kind}_acc_b{by.value[-1]}"


def check_settings(cfg: DictConfig) -> None:
    """One-line errors for settings the schema cannot check."""
    check_norm(cfg.norm, ADV_NORMS, "adv")
    if cfg.model.name != "preact_resnet18":
        raise UserError(f"model.name={cfg.model.name} is not available for the adv task; choose preact_resnet18")
    o, e = cfg.objective, cfg.eval
    if o.clean_weight < 0 or o.adv_weight <= 0:
        raise UserError(f"objective weights must be clean_weight >= 0 and adv_weight > 0, got {o.clean_weight}, "
                        f"{o.adv_weight}")
    if not e.pgd_steps or any(int(s) < 1 for s in e.pgd_steps) or e.epoch_pgd_steps < 1:
        raise UserError(f"eval.pgd_steps and eval.epoch_pgd_steps must be >= 1, got {list(e.pgd_steps)}, "
                        f"{e.epoch_pgd_steps}")
    if e.every_epochs < 1 or e.restarts < 1 or cfg.train.attack.steps < 0:
        raise UserError("eval.every_epochs and eval.restarts must be >= 1 and train.attack.steps >= 0")
    if min(e.eps, e.step_size, cfg.train.attack.eps, cfg.train.attack.step_size) < 0:
        raise UserError("attack eps and step sizes must be >= 0")
    if cfg.train.lr <= 0 or cfg.train.warmup_iters < 0:
        raise UserError(f"train.lr must be > 0 and train.warmup_iters >= 0, got {cfg.train.lr}, {cfg.train.warmup_iters}")
    if e.autoattack:
        require_torchattacks()


def build_net(cfg: DictConfig, splits: AdvSplits) -> PreActResNet18:
    """The PreAct ResNet-18 for the configured norm, dataset classes/channels and input normalisation."""
    info = splits.info
    if cfg.model.input_norm == InputNorm.imagenet and info.channels != len(IMAGENET_MEAN):
        raise UserError(f"model.input_norm=imagenet needs RGB images; {info.name} has {info.channels} channels "
                        "(use model.input_norm=dataset)")
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if cfg.model.input_norm == InputNorm.imagenet else (info.mean, info.std)
    return PreActResNet18(str(cfg.norm.name), info.num_classes, int(cfg.model.base_width), mean, std,
                          num_branches=2, norm_layer=norm_factory(cfg.norm, num_conditions=2))


def eval_settings(cfg: DictConfig) -> PGDSettings:
    e = cfg.eval
    return PGDSettings(float(e.eps), float(e.step_size), bool(e.random_start), bool(e.clamp_start), int(e.restarts))


def validate(net: nn.Module, loaders: dict[str, Any], cfg: DictConfig, device: torch.device) -> dict[str, float]:
    """Clean and PGD-``epoch_pgd_steps`` accuracy and loss through both branches on each per-epoch split."""
    row: dict[str, float] = {}
    for split, loader in loaders.items():
        res = evaluate_branches(net, loader, branches=BRANCHES, pgd_steps=[int(cfg.eval.epoch_pgd_steps)],
                                settings=eval_settings(cfg), device=device, seed=int(cfg.eval.seed),
                                num_classes=net.num_classes, with_loss=True)
        row.update({f"{split}/{k}": v for k, v in res.items()})
    return row


def train(cfg: DictConfig) -> None:
    check_settings(cfg)
    d, t, a = cfg.data, cfg.train, cfg.train.attack
    splits = build_splits(d.name, d.root, int(d.image_size), int(t.val_size), int(t.split_seed), int(t.crop_padding),
                          bool(t.flip), bool(d.download))

    with Run(cfg, model_name=str(cfg.model.name), dataset_name=splits.info.name) as run:
        stream = BatchStream(splits.train, t.batch_size, run.env, cfg.seed, num_workers=d.num_workers)
        net = build_net(cfg, splits)
        objective = prepare_model(AdvObjective(net, cfg.objective.clean_weight, cfg.objective.adv_weight),
                                  run.device, run.env, cfg.device)
        opt = torch.optim.SGD(net.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov,
                              weight_decay=t.weight_decay)
        spe, total = stream.batches_per_epoch, t.epochs * stream.batches_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, spe, t) / t.lr)
        scaler = grad_scaler(run.device, cfg.device.amp)
        best = BestWeights(best_key(cfg))
        objects = {"model": net, "opt": opt, "sched": sched, "scaler": scaler, "data": stream, "best": best}
        start = run.resume(objects)
        history: list[dict[str, float]] = list(run.extra.get("history", []))
        loaders = epoch_loaders(cfg, splits, run)
        analysis = GradientAnalysis(cfg.analysis, net, run, prefix="model")

        for step in run.steps(start, total):
            x, y = (v.to(run.device, non_blocking=True) for v in next(stream))
            with autocast(run.device, cfg.device.amp):
                x_adv = pgd(net, x, y, a.eps, a.step_size, int(a.steps), a.random_start, branch=ADV_BRANCH,
                            mode=name_of(a.mode), clamp_start=a.clamp_start)
            with analysis.measure(step):  # gradient balance/diversity of the branch affines (analysis.every)
                with autocast(run.device, cfg.device.amp):
                    loss, logits_clean, logits_adv = objective(x, x_adv, y)
                run.check_finite(step, loss=loss)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            run.log(step, {"train/loss": loss.detach(), "train/adv_acc_b1": batch_acc(logits_adv, y),
                           **({} if logits_clean is None else {"train/clean_acc_b0": batch_acc(logits_clean, y)}),
                           "lr": sched.get_last_lr()[0], "epoch": step / spe})
            epoch = step // spe
            if step % spe == 0 and (epoch % cfg.eval.every_epochs == 0 or step == total):
                row = {"epoch": epoch, **validate(net, loaders, cfg, run.device)}
                history.append(row)
                best.offer(row[best.criterion], epoch, step, net)
                run.log(step, {**row, "val/best": best.value, "val/best_epoch": best.epoch}, force=True)
                save_curves(history, run, step)
            run.step_done(step, objects, extra={"history": history})

        metrics = final_metrics(net, best, splits, cfg, run)
        save_weights(net, best, run)
        run.finish(metrics, steps=total, objects=objects,
                   extra={"best_checkpoint": {"criterion": best.criterion, "value": best.value, "epoch": best.epoch},
                          "data_splits": splits.description})


def per_process(samples: int | None, world_size: int) -> int | None:
    """The first-``samples`` count of one process: eval loaders shard images round-robin over the processes."""
    return None if samples is None else -(-int(samples) // world_size)


def batch_acc(logits: Tensor, y: Tensor) -> Tensor:
    return (logits.detach().argmax(1) == y).float().mean() * 100


def epoch_loaders(cfg: DictConfig, splits: AdvSplits, run: Run) -> dict[str, Any]:
    """The per-epoch evaluation loaders: ``val`` (``eval.val_samples`` images) and, if asked, ``test``."""
    e, workers = cfg.eval, int(cfg.data.num_workers)
    loaders = {"val": eval_loader(first(splits.val, e.val_samples), e.batch_size, run.env, workers)}
    if e.epoch_test_samples > 0:
        loaders["test"] = eval_loader(first(splits.test, e.epoch_test_samples), e.batch_size, run.env, workers)
    return loaders


def save_curves(history: list[dict[str, float]], run: Run, step: int) -> None:
    """``curves.png`` in the run directory, also sent to W&B (at the global step: W&B steps must increase)."""
    if run.env.is_main:
        cfg = run.cfg
        path = plot_curves(history, run.run_dir / "curves.png",
                           title=f"{cfg.exp} ({cfg.norm.name}, {cfg.scale_name}, seed {cfg.seed})")
        run.logger.log_image(step, "curves", path)


def save_weights(net: PreActResNet18, best: BestWeights, run: Run) -> None:
    """``model_last.pt`` and ``model_best.pt``: plain state dicts in the official layout (``tasks.adv.evaluate``
    and the official code read them)."""
    if run.env.is_main:
        atomic_torch_save(net.state_dict(), run.run_dir / "model_last.pt")
        if best.weights is not None:
            atomic_torch_save(best.weights, run.run_dir / "model_best.pt")


def final_metrics(net: PreActResNet18, best: BestWeights, splits: AdvSplits, cfg: DictConfig,
                  run: Run) -> dict[str, Metric]:
    """Clean, PGD-k (every ``eval.pgd_steps``) and optionally AutoAttack accuracy through both branches on the test
    split, for the last weights (``<name>``) and the best-validation weights (``best_<name>``)."""
    e = cfg.eval
    test = first(splits.test, e.test_samples)
    loader = eval_loader(test, e.batch_size, run.env, int(cfg.data.num_workers))
    settings = eval_settings(cfg)
    a = cfg.train.attack
    common = {
        "split": f"{splits.info.name} test", "samples": len(test), "data": splits.description,
        "train": (f"objective {cfg.objective.clean_weight}·CE(clean, b0) + {cfg.objective.adv_weight}·CE(adv, b1); "
                  f"PGD-{a.steps} ε={a.eps:.5g} step={a.step_size:.5g} through b1 in "
                  f"{name_of(a.mode)} mode; {cfg.train.epochs} epochs"),
    }
    val_n = len(first(splits.val, e.val_samples))
    candidates = [("", net, f"last (epoch {cfg.train.epochs})")]
    if best.weights is not None:
        best_net = copy.deepcopy(net)
        best_net.load_state_dict(best.weights)
        candidates.append(("best_", best_net, f"best validation epoch {best.epoch} by {best.criterion} "
                                              f"({val_n} validation images, clean + PGD-{e.epoch_pgd_steps})"))
    metrics: dict[str, Metric] = {}
    for prefix, model, which in candidates:
        log.info("final evaluation of the %s weights on %d test images", prefix.rstrip("_") or "last", len(test))
        values = evaluate_branches(
            model, loader, branches=BRANCHES, pgd_steps=[int(s) for s in e.pgd_steps], settings=settings,
            device=run.device, seed=int(e.seed), autoattack_branches=(ADV_BRANCH,) if e.autoattack else (),
            autoattack_samples=per_process(e.autoattack_samples, run.env.world_size), num_classes=net.num_classes)
        for name, value in values.items():
            kind, branch = name.split("_acc_")
            proto = {**common, "checkpoint": which, "branch": int(branch[1:]) if net.is_conditional else NO_BRANCHES_NOTE}
            if kind == "clean":
                proto.update(attack="none", bn_mode="eval (running statistics)")
            elif kind == "autoattack":
                n_aa = len(test) if e.autoattack_samples is None else min(len(test), int(e.autoattack_samples))
                proto.update(autoattack_protocol(settings.eps), samples=n_aa)
            else:
                proto.update(settings.describe(int(kind[3:])))
            metrics[prefix + name] = Metric(value, proto)
    if e.autoattack:
        log.info("AutoAttack: %s", AUTOATTACK_LABEL)
    return metrics
