"""Image-classification training loop (SGD, warm-up + step schedule, test accuracy every epoch), with MimicNorm's
weight centring and a measurement of one training step's peak memory."""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torchvision.transforms import v2

from sabn import mimicnorm
from tasks.common.data import BatchStream, build_dataset, eval_loader
from tasks.common.errors import UserError
from tasks.common.memory import SavedTensorBytes, peak_step_memory, precise_cpu_memory
from tasks.common.metrics import accuracy
from tasks.common.norms import norm_factory
from tasks.common.results import Metric
from tasks.common.run import Run
from tasks.common.runtime import autocast, grad_scaler, prepare_model

from .models import VARIANTS, build_model

CONVNET_NORMS = ("bn", "none")


def transforms(cfg: DictConfig, mean: tuple, std: tuple) -> tuple[v2.Transform, v2.Transform]:
    t = cfg.train
    aug = []
    if t.crop_padding > 0:
        aug.append(v2.RandomCrop(cfg.data.image_size, padding=int(t.crop_padding)))
    if t.flip:
        aug.append(v2.RandomHorizontalFlip())
    if t.rotation > 0:
        aug.append(v2.RandomRotation(float(t.rotation)))
    normalize = v2.Normalize(mean, std)
    return v2.Compose([*aug, normalize]), normalize


def lr_factor(step: int, steps_per_epoch: int, cfg: DictConfig) -> float:
    """Linear warm-up over ``warmup_epochs``, then ×gamma at each milestone epoch (evaluated per step)."""
    epoch = step / steps_per_epoch
    if epoch < cfg.warmup_epochs:
        return (step + 1) / (cfg.warmup_epochs * steps_per_epoch)
    return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)


def check_model_config(cfg: DictConfig) -> None:
    """Refuse unsupported model/norm/MimicNorm settings before anything is written."""
    name, variant, m = str(cfg.model.name), str(cfg.norm.name), cfg.mimicnorm
    allowed = CONVNET_NORMS if name == "convnet" else VARIANTS
    if variant not in allowed:
        raise UserError(f"norm={variant} is not available for model {name} in the cls task; "
                        f"choose one of: {', '.join(allowed)}")
    if m.rule not in mimicnorm.RULES or m.mode not in ("project", "reparam") or m.scale_rule not in ("code", "paper"):
        raise UserError(f"mimicnorm.rule must be one of {', '.join(mimicnorm.RULES)}, mimicnorm.mode one of "
                        f"project, reparam, mimicnorm.scale_rule one of code, paper (got {m.rule}, {m.mode}, "
                        f"{m.scale_rule})")


def make_model(cfg: DictConfig, num_classes: int) -> torch.nn.Module:
    m = cfg.mimicnorm
    return build_model(str(cfg.model.name), num_classes, str(cfg.norm.name), float(cfg.model.width),
                       norm_factory(cfg.norm), scale_rule=str(m.scale_rule), shortcut_scale=bool(m.shortcut_scale))


def train(cfg: DictConfig) -> None:
    d, t, m = cfg.data, cfg.train, cfg.mimicnorm
    check_model_config(cfg)
    probe = build_dataset(d.name, d.root, "train", d.download, image_size=d.image_size)
    train_tf, test_tf = transforms(cfg, probe.info.mean, probe.info.std)
    train_set = build_dataset(d.name, d.root, "train", False, train_tf, image_size=d.image_size)
    test_set = build_dataset(d.name, d.root, "test", False, test_tf, image_size=d.image_size)
    info = train_set.info
    centre = str(cfg.norm.name) in ("mimicnorm", "weightmean")

    with Run(cfg, model_name=cfg.model.name, dataset_name=info.name) as run:
        net = make_model(cfg, info.num_classes)  # after Run has seeded everything
        if centre and m.mode == "reparam":
            mimicnorm.parametrize_weight_mean(net, m.rule)
        elif centre:
            mimicnorm.weight_mean_(net, m.rule)  # centred from the start, then after every step (hook below)
        stream = BatchStream(train_set, t.batch_size, run.env, cfg.seed, num_workers=d.num_workers)
        test_batches = eval_loader(test_set, t.eval_batch_size, run.env, d.num_workers)
        model = prepare_model(net, run.device, run.env, cfg.device)
        opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov,
                              weight_decay=t.weight_decay)
        if centre and m.mode == "project":
            mimicnorm.project_after_steps(opt, net, m.rule)
        spe, total = stream.batches_per_epoch, t.epochs * stream.batches_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, spe, t))
        scaler = grad_scaler(run.device, cfg.device.amp)
        objects = {"model": model, "opt": opt, "sched": sched, "scaler": scaler, "data": stream}
        start = run.resume(objects)
        best, last = run.extra.get("best_acc", 0.0), run.extra.get("last_acc", 0.0)
        memory = run.extra.get("memory", {})
        probing = start < t.memory_probe_step <= total
        if probing and run.device.type == "cpu":
            precise_cpu_memory(True)  # from the first step on, so the probe sees every live tensor

        def train_step(x: torch.Tensor, y: torch.Tensor, watch: object = None) -> torch.Tensor:
            with autocast(run.device, cfg.device.amp), watch or nullcontext():
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            return loss

        for step in run.steps(start, total):
            x, y = (v.to(run.device, non_blocking=True) for v in next(stream))
            if step == t.memory_probe_step:  # after step 1, so optimiser state already exists
                memory = measure_step(model, x, y, train_step, run.device, cfg)
                loss = memory.pop("loss")
                precise_cpu_memory(False)
            else:
                loss = train_step(x, y)
            run.check_finite(step, loss=loss)
            run.log(step, {"train/loss": loss, "lr": sched.get_last_lr()[0], "epoch": step / spe})
            if step % (spe * t.eval_every) == 0 or step == total:
                last = accuracy(model, test_batches, run.device, autocast(run.device, cfg.device.amp))
                best = max(best, last)
                run.log(step, {"test/acc": last, "test/best_acc": best}, force=True)
            run.step_done(step, objects, extra={"best_acc": best, "last_acc": last, "memory": memory})

        run.finish(results(cfg, info.name, len(test_set), best, last, memory), steps=total, objects=objects)


def measure_step(model, x, y, train_step, device, cfg: DictConfig) -> dict:
    """Run one real training step instrumented: its peak memory and the bytes its forward saves for backward."""
    saved = SavedTensorBytes(model)
    out: dict = {}
    peak = peak_step_memory(lambda: out.setdefault("loss", train_step(x, y, saved)), device)
    return {"loss": out["loss"], "activation_mb": saved.bytes / 2**20, **peak, "batch": int(x.shape[0]),
            "device": str(device)}


def results(cfg: DictConfig, dataset: str, n_test: int, best: float, last: float, memory: dict) -> dict[str, Metric]:
    protocol = {"split": f"{dataset} test ({n_test} images)", "bn_mode": "eval (running statistics)",
                "epochs": cfg.train.epochs, "evaluated_every_epochs": cfg.train.eval_every, "variant": cfg.norm.name}
    metrics = {
        "test_acc_final": Metric(last, {**protocol, "weights": "final"}),
        # the official MimicNorm code reports the best test accuracy over epochs
        "test_acc_best": Metric(best, {**protocol, "weights": "best epoch, selected on test (as the paper)"}),
    }
    if memory:
        mem = {"step": cfg.train.memory_probe_step, "batch per process": memory["batch"], "device": memory["device"],
               "image size": cfg.data.image_size, "amp": str(cfg.device.amp)}
        metrics["peak_mem_mb"] = Metric(memory["peak_mb"], {**mem, "method": memory["method"]})
        metrics["activation_mb"] = Metric(memory["activation_mb"], {
            **mem, "method": "bytes autograd saves for backward in the forward pass (per storage, no parameters)"})
    return metrics
