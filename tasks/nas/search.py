"""The weight-sharing search on NAS-Bench-201: DARTS-V1, DARTS-V2 and GDAS with a plain or conditional supernet.

One loop for all three: every step is a w-step on a batch of the weights' split and an α-step on a batch of the α
split (reference_repos.md §3.3–§4); every epoch ends with the supernet's accuracy on the α split, the derived
genotype (argmax α per edge), its α entropy and parameter-free op count and, when a benchmark is configured, its
NAS-Bench-201 accuracies. The genotype reported at the end is the one after the last search epoch (paper.md §3
quirk 11).
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from tasks.common.analysis import GradientAnalysis
from tasks.common.data import BatchStream, eval_loader
from tasks.common.errors import UserError
from tasks.common.metrics import accuracy
from tasks.common.norms import check_norm
from tasks.common.run import Run
from tasks.common.runtime import dist_env_from_environ, prepare_model

from .algorithms import arch_step, darts_v2_arch_step, gdas_tau, sgd_hyperparameters
from .benchmark import NB201Benchmark, describe_fields, open_benchmark
from .data import build_search_data
from .report import SearchLog, epoch_record, epoch_summary, final_metrics, plot_search_curve
from .supernet import NORM_VARIANTS, NB201SuperNet

log = logging.getLogger(__name__)

ALGORITHMS = ("darts", "darts_v2", "gdas")
ORDERS = ("w_first", "alpha_first")


# --- set-up -----------------------------------------------------------------------------------------------------


def search_epochs(t: DictConfig) -> int:
    """How many epochs the search runs: ``stop_epoch`` of the ``epochs``-long schedule (all of it when null)."""
    if t.algorithm not in ALGORITHMS:
        raise UserError(f"unknown train.algorithm={t.algorithm}; valid: {', '.join(ALGORITHMS)}")
    if t.order not in ORDERS:
        raise UserError(f"unknown train.order={t.order}; valid: {', '.join(ORDERS)}")
    if t.epochs < 1:
        raise UserError(f"train.epochs must be >= 1, got {t.epochs}")
    if t.stop_epoch is None:
        return int(t.epochs)
    if not 1 <= t.stop_epoch <= t.epochs:
        raise UserError(f"train.stop_epoch={t.stop_epoch} must lie in 1..train.epochs={t.epochs}; "
                        "set train.stop_epoch=null to run the whole schedule")
    return int(t.stop_epoch)


def build_supernet(cfg: DictConfig, num_classes: int, in_channels: int) -> NB201SuperNet:
    """The NB201 supernet of ``cfg.model`` with the ``cfg.norm`` variant in its search cells."""
    name, m = str(cfg.norm.name), cfg.model
    norm_kwargs: dict[str, float] = {"eps": float(cfg.norm.eps), "momentum": float(cfg.norm.momentum)}
    if name != "bn":
        norm_kwargs["init_std"] = float(cfg.norm.init_std)
    if name in ("sabn", "saauxbn"):
        norm_kwargs["shared_init_std"] = float(cfg.norm.shared_init_std)
    algorithm = "gdas" if cfg.train.algorithm == "gdas" else "darts"
    try:
        return NB201SuperNet(int(m.channels), int(m.num_cells), num_classes, name, algorithm,
                             bool(m.track_running_stats), bool(m.bn_affine), str(m.condition_mode),
                             float(cfg.train.tau_max), in_channels, norm_kwargs=norm_kwargs)
    except ValueError as e:
        raise UserError(f"model: {e}") from e


def optimizers(model: NB201SuperNet, t: DictConfig) -> tuple[torch.optim.SGD, torch.optim.Adam]:
    """SGD (Nesterov) on the weights, Adam on α, as in the NB201 search scripts."""
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=t.lr, momentum=t.momentum, nesterov=t.nesterov,
                            weight_decay=t.weight_decay)
    a_opt = torch.optim.Adam(model.alpha_parameters(), lr=t.arch_lr, betas=tuple(float(b) for b in t.arch_betas),
                             eps=t.arch_eps, weight_decay=t.arch_weight_decay)
    return w_opt, a_opt


def cosine_lr(epoch: int, t: DictConfig) -> float:
    """NB201's per-epoch cosine: lr_min + (lr − lr_min)(1 + cos(π·epoch/epochs))/2 (no warm-up)."""
    return t.lr_min + (t.lr - t.lr_min) * (1 + math.cos(math.pi * epoch / t.epochs)) / 2


def start_epoch(model: NB201SuperNet, w_opt: torch.optim.Optimizer, epoch: int, t: DictConfig) -> None:
    """Set the epoch's learning rate and (GDAS) Gumbel temperature, once per epoch as the official scripts do."""
    for group in w_opt.param_groups:
        group["lr"] = cosine_lr(epoch, t)
    model.tau = gdas_tau(epoch, int(t.epochs), t.tau_max, t.tau_min)


def next_batch(stream: BatchStream, device: torch.device) -> tuple[Tensor, Tensor]:
    """The stream's next (x, y) on ``device`` (the stream never touches the global RNG, so the supernet's condition
    and Gumbel samples continue exactly after a resume)."""
    x, y = next(stream)
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


# --- the two steps ------------------------------------------------------------------------------------------------


def weight_step(model: NB201SuperNet, w_opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
                grad_clip: float | None) -> tuple[Tensor, Tensor]:
    """One SGD step on the weights (α fixed); returns the detached loss and the number of correct predictions.

    Only the weights' gradient is computed, and only it is clipped (the official clip also counts α's stale
    gradient in the norm; α is a 6×5 tensor whose gradient is negligible next to the weights')."""
    weights = w_opt.param_groups[0]["params"]
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    w_opt.zero_grad(set_to_none=True)
    loss.backward(inputs=weights)
    if grad_clip:
        nn.utils.clip_grad_norm_(weights, grad_clip)
    w_opt.step()
    return loss.detach(), (logits.detach().argmax(1) == y).sum()


def alpha_step(model: NB201SuperNet, a_opt: torch.optim.Optimizer, w_opt: torch.optim.Optimizer,
               base: tuple[Tensor, Tensor], arch: tuple[Tensor, Tensor], t: DictConfig) -> Tensor:
    """One Adam step on α: first order on the α batch (DARTS-V1, GDAS) or DARTS-V2's unrolled gradient, which also
    uses the weights' batch and the weight optimizer's state. Returns the detached α-batch loss."""
    if t.algorithm != "darts_v2":
        return arch_step(model, *arch, a_opt)
    lr, momentum, weight_decay, buffers = sgd_hyperparameters(w_opt, w_opt.param_groups[0]["params"])
    return darts_v2_arch_step(model, *base, *arch, lr, momentum, weight_decay, buffers, arch_optimizer=a_opt,
                              r=float(t.unrolled_r))


# --- the loop -----------------------------------------------------------------------------------------------------


def search(cfg: DictConfig) -> None:
    """Run the search of ``cfg`` (``python -m tasks.nas``): results.json, metrics.jsonl, search_curve.png."""
    check_norm(cfg.norm, NORM_VARIANTS, "nas")
    check_supported(cfg)
    t, d = cfg.train, cfg.data
    epochs = search_epochs(t)
    data = build_search_data(d.name, d.root, int(d.image_size), cfg.nas.split_dir, bool(d.download), t.flip,
                             t.crop_padding, float(cfg.nas.holdout_fraction), int(cfg.nas.split_seed))
    benchmark = open_benchmark(cfg.nas.benchmark_path)

    with Run(cfg, model_name=f"nb201-supernet-{t.algorithm}", dataset_name=data.info.name) as run:
        announce_lookup(benchmark)
        base = BatchStream(data.weights, t.batch_size, run.env, cfg.seed, num_workers=d.num_workers)
        arch = BatchStream(data.arch, t.batch_size, run.env, cfg.seed + 1, num_workers=d.num_workers)
        valid = eval_loader(data.valid, t.eval_batch_size, run.env, d.num_workers)
        model = prepare_model(build_supernet(cfg, data.info.num_classes, data.info.channels), run.device, run.env,
                              cfg.device)
        w_opt, a_opt = optimizers(model, t)
        analysis = GradientAnalysis(cfg.analysis, model, run, prefix="supernet")  # op-condition affines
        history = SearchLog(run.device)
        objects = {"model": model, "w_opt": w_opt, "a_opt": a_opt, "base": base, "arch": arch, "log": history}
        start = run.resume(objects)
        spe = int(t.epoch_steps or base.batches_per_epoch)
        total = epochs * spe

        for step in run.steps(start, total):
            epoch = (step - 1) // spe
            start_epoch(model, w_opt, epoch, t)
            b, a = next_batch(base, run.device), next_batch(arch, run.device)
            if t.order == "alpha_first":
                a_loss = alpha_step(model, a_opt, w_opt, b, a, t)
            with analysis.measure(step):
                w_loss, correct = weight_step(model, w_opt, *b, t.grad_clip)
            if t.order == "w_first":
                a_loss = alpha_step(model, a_opt, w_opt, b, a, t)
            run.check_finite(step, loss=w_loss, arch_loss=a_loss)
            history.add_step(w_loss, correct, b[1].numel(), a_loss)
            run.log(step, {"train/loss": w_loss, "train/arch_loss": a_loss, "lr": w_opt.param_groups[0]["lr"],
                           "epoch": step / spe})
            if step % spe == 0:
                valid_acc = accuracy(model, valid, run.device)
                record = epoch_record(epoch + 1, model, history.close_epoch(), valid_acc, benchmark, t)
                history.epochs.append(record)
                run.log(step, record, force=True)
                log.info(epoch_summary(record, epochs))
            run.step_done(step, objects)

        curve = plot_search_curve(history.epochs, run.run_dir / "search_curve.png", data.info.name,
                                  f"{cfg.exp} ({t.algorithm}, norm={cfg.norm.name}, seed {cfg.seed})")
        run.logger.log_image(total, "search_curve", curve)
        metrics, extra = final_metrics(history.epochs, data, cfg, benchmark, epochs)
        run.finish(metrics, steps=total, objects=objects, extra=extra)


def check_supported(cfg: DictConfig) -> None:
    """The search runs in one process, in fp32, without torch.compile (as the official code): stop at once with the
    fix otherwise."""
    amp = str(getattr(cfg.device.amp, "value", cfg.device.amp))
    if amp != "none":
        raise UserError(f"device.amp={amp} is not supported by the NAS search (it runs in fp32 as the official "
                        "code); use device.amp=none")
    if dist_env_from_environ().distributed:
        raise UserError("the NAS search runs in one process (the official search uses one GPU); "
                        "start it with python, not torchrun")
    if bool(cfg.device.compile):
        raise UserError("device.compile=true is not supported by the NAS search: the op choices that route the "
                        "supernet change every forward pass; use device.compile=false")


def announce_lookup(benchmark: NB201Benchmark | None) -> None:
    """Say once in the log whether and which NB201 numbers are looked up."""
    if benchmark is None:
        log.info("NB201 look-up off (nas.benchmark_path is null): genotypes are logged without benchmark "
                 "accuracies; set nas.benchmark_path=<NATS-tss-v1_0-3ffb9-simple folder> to turn it on")
    else:
        log.info("NB201 look-up from %s:\n%s", benchmark.archive_dir, describe_fields())
