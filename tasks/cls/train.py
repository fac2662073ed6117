"""Image-classification training loop (SGD, warm-up + step schedule, test accuracy every epoch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torchvision.transforms import v2

from tasks.common.data import BatchStream, build_dataset, eval_loader
from tasks.common.metrics import accuracy
from tasks.common.norms import check_norm, norm_factory
from tasks.common.results import Metric
from tasks.common.run import Run
from tasks.common.runtime import autocast, grad_scaler, prepare_model

from .models import build_model

NORMS = ("bn", "none")


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


def train(cfg: DictConfig) -> None:
    check_norm(cfg.norm, NORMS, "cls")
    d, t = cfg.data, cfg.train
    probe = build_dataset(d.name, d.root, "train", d.download, image_size=d.image_size)
    train_tf, test_tf = transforms(cfg, probe.info.mean, probe.info.std)
    train_set = build_dataset(d.name, d.root, "train", False, train_tf, image_size=d.image_size)
    test_set = build_dataset(d.name, d.root, "test", False, test_tf, image_size=d.image_size)
    info = train_set.info

    with Run(cfg, model_name=cfg.model.name, dataset_name=info.name) as run:
        stream = BatchStream(train_set, t.batch_size, run.env, cfg.seed, num_workers=d.num_workers)
        test_batches = eval_loader(test_set, t.eval_batch_size, run.env, d.num_workers)
        net = build_model(cfg.model.name, info.num_classes, norm_factory(cfg.norm), cfg.model.width)
        model = prepare_model(net, run.device, run.env, cfg.device)
        opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov,
                              weight_decay=t.weight_decay)
        spe, total = stream.batches_per_epoch, t.epochs * stream.batches_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, spe, t))
        scaler = grad_scaler(run.device, cfg.device.amp)
        objects = {"model": model, "opt": opt, "sched": sched, "scaler": scaler, "data": stream}
        start = run.resume(objects)
        best, last = run.extra.get("best_acc", 0.0), run.extra.get("last_acc", 0.0)

        for step in run.steps(start, total):
            x, y = (v.to(run.device, non_blocking=True) for v in next(stream))
            with autocast(run.device, cfg.device.amp):
                loss = F.cross_entropy(model(x), y)
            run.check_finite(step, loss=loss)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            run.log(step, {"train/loss": loss, "lr": sched.get_last_lr()[0], "epoch": step / spe})
            if step % (spe * t.eval_every) == 0 or step == total:
                last = accuracy(model, test_batches, run.device, autocast(run.device, cfg.device.amp))
                best = max(best, last)
                run.log(step, {"test/acc": last, "test/best_acc": best}, force=True)
            run.step_done(step, objects, extra={"best_acc": best, "last_acc": last})

        protocol = {"split": f"{info.name} test ({len(test_set)} images)", "bn_mode": "eval (running statistics)",
                    "weights": "final" , "epochs": t.epochs, "evaluated_every_epochs": t.eval_every}
        metrics = {
            "test_acc_final": Metric(last, protocol),
            "test_acc_best": Metric(best, {**protocol, "weights": "best test epoch (optimistic: selected on test)"}),
        }
        run.finish(metrics, steps=total, objects=objects)
