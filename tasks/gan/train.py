"""Conditional GAN training: hinge loss, ``n_critic`` D steps per G step, generator EMA, evaluation every
``eval.every`` G steps (metrics, per-class sample grid) and at the end.

D step: ``d_batch_size`` real images with their labels and as many fakes from z ~ N(0, I) with uniform random
labels (G in train mode, no gradient). G step: ``g_batch_size`` fresh fakes and labels through D (whose weights get
no gradient). Both use Adam; the EMA is updated after every G step. Latents come from (seed, rank, step) alone
(:class:`Latents`), so a run is repeatable and resumes bit-identically on the same device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from tasks.common.analysis import GradientAnalysis
from tasks.common.data import BatchStream
from tasks.common.errors import UserError
from tasks.common.norms import check_norm
from tasks.common.results import Metric
from tasks.common.run import Run
from tasks.common.runtime import autocast, grad_scaler, prepare_model, unwrap
from tasks.common.tracking import read_metrics

from .config import choice
from .ema import GeneratorEMA
from .evaluation import DataSource, Evaluator, describe_ema, rng_preserved
from .images import plot_curves
from .losses import d_hinge_loss, g_hinge_loss
from .models import build_gan

NORMS = ("ccbn", "sabn")


def norm_kwargs(norm: DictConfig) -> dict[str, float]:
    """The ``norm`` group's settings that the generator's conditional layers take."""
    kwargs = {"eps": float(norm.eps), "momentum": float(norm.momentum), "init_std": float(norm.init_std)}
    if str(norm.name) == "sabn":
        kwargs["shared_init_std"] = float(norm.shared_init_std)
    return kwargs


def build_models(cfg: DictConfig, num_classes: int) -> tuple[nn.Module, nn.Module]:
    """The initialised (G, D) pair of ``cfg.model`` with ``cfg.norm`` in G, widths × ``model.width_factor``."""
    m = cfg.model
    check_norm(cfg.norm, NORMS, "gan")
    try:
        G, D = build_gan(
            str(m.name), init=str(m.init), norm=str(cfg.norm.name), n_classes=int(num_classes),
            gf_dim=max(1, round(m.gf_dim * m.width_factor)), df_dim=max(1, round(m.df_dim * m.width_factor)),
            latent_dim=int(m.latent_dim), bottom_width=int(m.bottom_width), norm_kwargs=norm_kwargs(cfg.norm),
        )
    except ValueError as e:
        raise UserError(str(e)) from e
    if G.resolution != int(m.resolution):
        raise UserError(f"model {m.name} with bottom_width {m.bottom_width} generates {G.resolution}×{G.resolution} "
                        f"images, but model.resolution is {m.resolution}")
    return G, D


def adam(model: nn.Module, lr: float, t: DictConfig) -> torch.optim.Adam:
    # float() on the betas: torch rejects an int 0 (official quirk #16)
    return torch.optim.Adam(model.parameters(), lr=float(lr), betas=(float(t.beta1), float(t.beta2)))


class Latents:
    """z ~ N(0, I) and uniform random labels (the official pseudo-labels), drawn from (seed, rank, G step, slot)
    alone: repeatable, identical after a resume, and untouched by anything else drawing from the global RNG
    (data-loader seeds, evaluation)."""

    def __init__(self, seed: int, rank: int, latent_dim: int, num_classes: int, device: torch.device) -> None:
        self.seed, self.rank = int(seed), int(rank)
        self.latent_dim, self.num_classes, self.device = int(latent_dim), int(num_classes), device
        self.generator = torch.Generator(device=device)

    def __call__(self, n: int, step: int, slot: int) -> tuple[Tensor, Tensor]:
        """``slot``: which draw of the step (the D steps 0..n_critic−1, then the G step)."""
        self.generator.manual_seed(hash((self.seed, self.rank, int(step), int(slot))) & (2**63 - 1))
        z = torch.randn(n, self.latent_dim, generator=self.generator, device=self.device)
        return z, torch.randint(0, self.num_classes, (n,), generator=self.generator, device=self.device)


@contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """No weight gradients for ``model`` inside (gradients still flow through it to its input)."""
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def d_step(G: nn.Module, D: nn.Module, real: Tensor, y_real: Tensor, z: Tensor, y_fake: Tensor,
           opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, joint: bool, amp: object) -> dict[str, Tensor]:
    """One discriminator update on real images and fakes G(z, y_fake); returns the loss and the mean logits."""
    n, device = real.shape[0], real.device
    with torch.no_grad(), autocast(device, amp):
        fake = G(z, y_fake)
    with autocast(device, amp):
        if joint:  # BigGAN's G_D: one D call (one spectral-norm power iteration) on [real; fake]
            real_logits, fake_logits = D(torch.cat([real, fake.to(real.dtype)]), torch.cat([y_real, y_fake])).split(n)
        else:  # the official SNGAN/AutoGAN code: two D calls
            real_logits, fake_logits = D(real, y_real), D(fake, y_fake)
        loss = d_hinge_loss(real_logits.float(), fake_logits.float())
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return {"d_loss": loss.detach(), "d_real": real_logits.detach().float().mean(),
            "d_fake": fake_logits.detach().float().mean()}


def g_step(G: nn.Module, D: nn.Module, z: Tensor, y: Tensor, opt: torch.optim.Optimizer,
           scaler: torch.amp.GradScaler, amp: object, measure: AbstractContextManager | None = None) -> Tensor:
    """One generator update on fakes G(z, y); ``D`` is the plain module (not DDP: it is not trained here).
    ``measure`` wraps the forward and backward pass (the gradient analysis hook)."""
    opt.zero_grad(set_to_none=True)
    with measure or nullcontext():
        with frozen(D), autocast(z.device, amp):
            loss = g_hinge_loss(D(G(z, y), y).float())
        scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return loss.detach()


def local_batch(size: int, world: int, what: str) -> int:
    if size % world:
        raise UserError(f"train.{what}={size} is not divisible by the {world} processes")
    return size // world


def evaluate(run: Run, evaluator: Evaluator, G: nn.Module, ema: GeneratorEMA, step: int) -> dict[str, Metric]:
    """Metrics of the configured weights (EMA or live) and a per-class sample grid, logged to metrics.jsonl/W&B."""
    cfg = run.cfg
    live = unwrap(G)
    weights = choice(cfg.eval.weights)
    model = ema.for_eval(live) if weights == "ema" else live
    with rng_preserved():
        metrics = evaluator.evaluate(model, step, describe_ema(cfg.train, weights))
        grid = evaluator.save_grid(model, run.run_dir / "samples" / f"step_{step:07d}.png")
    run.log(step, {f"eval/{k}": m.value for k, m in metrics.items()}, force=True)
    run.logger.log_image(step, "samples/per_class", grid, caption=f"step {step}: one row per class")
    return metrics


def check_data_choice(cfg: DictConfig) -> None:
    """The demo/smoke presets set ``data.name`` themselves, after any ``data=<option>`` group choice: say so rather
    than silently train on other data than the command line asked for."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except (ImportError, ValueError):  # composed outside a Hydra run (tests, the demo)
        return
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if key == "data" and value != str(cfg.data.name):
            raise UserError(f"scale={cfg.scale_name} sets data.name={cfg.data.name} after data={value}; "
                            f"to use {value} at this scale pass data.name={value} data.root=<folder>")


def train(cfg: DictConfig) -> None:
    check_data_choice(cfg)
    t, e, amp = cfg.train, cfg.eval, cfg.device.amp
    data = DataSource(cfg.data)
    train_set = data.split("train")
    info = train_set.info

    with Run(cfg, model_name=str(cfg.model.name), dataset_name=info.name) as run:
        world = run.env.world_size
        stream = BatchStream(train_set, t.d_batch_size, run.env, cfg.seed, num_workers=cfg.data.num_workers)
        G_net, D_net = build_models(cfg, info.num_classes)
        G = prepare_model(G_net, run.device, run.env, cfg.device)
        D = prepare_model(D_net, run.device, run.env, cfg.device)
        ema = GeneratorEMA(unwrap(G), float(t.ema_decay), choice(t.ema_buffers), int(t.ema_start))
        opt_g, opt_d = adam(G, t.lr_g, t), adam(D, t.lr_d, t)
        scaler_g, scaler_d = grad_scaler(run.device, amp), grad_scaler(run.device, amp)
        objects = {"G": G, "D": D, "ema": ema, "opt_g": opt_g, "opt_d": opt_d, "scaler_g": scaler_g,
                   "scaler_d": scaler_d, "data": stream}
        start = run.resume(objects)
        evaluator = Evaluator(cfg, data, info.num_classes, run.device, run.env).prepare()
        g_local = local_batch(int(t.g_batch_size), world, "g_batch_size")
        latents = Latents(cfg.seed, run.env.rank, int(cfg.model.latent_dim), info.num_classes, run.device)
        analysis = GradientAnalysis(cfg.analysis, G, run, prefix="G")  # balance/diversity of G's class affines
        last: dict[str, Metric] = {k: Metric(**v) for k, v in run.extra.get("last_eval", {}).items()}

        for step in run.steps(start, int(t.g_steps)):
            for i in range(int(t.n_critic)):
                real, y_real = (v.to(run.device, non_blocking=True) for v in next(stream))
                d_out = d_step(unwrap(G), D, real, y_real, *latents(len(real), step, i), opt_d, scaler_d,
                               bool(t.joint_d_forward), amp)
            g_loss = g_step(G, unwrap(D), *latents(g_local, step, int(t.n_critic)), opt_g, scaler_g, amp,
                            analysis.measure(step))
            ema.update(unwrap(G), step)
            run.check_finite(step, d_loss=d_out["d_loss"], g_loss=g_loss)
            run.log(step, {"train/d_loss": d_out["d_loss"], "train/g_loss": g_loss, "train/d_real": d_out["d_real"],
                           "train/d_fake": d_out["d_fake"]})
            if (int(e.every) > 0 and step % int(e.every) == 0) or step == int(t.g_steps):
                last = evaluate(run, evaluator, G, ema, step)
            run.step_done(step, objects, extra={"last_eval": {k: asdict(m) for k, m in last.items()}})

        if not last or any(m.protocol.get("step") != int(t.g_steps) for m in last.values()):
            last = evaluate(run, evaluator, G, ema, int(t.g_steps))  # resumed after the last step's checkpoint
        if run.env.is_main and run.logger.path.is_file():
            curves = plot_curves(read_metrics(run.logger.path), run.run_dir / "curves.png")
            if curves is not None:
                run.logger.log_image(int(t.g_steps), "curves", curves)
        run.finish(last, steps=int(t.g_steps), objects=objects,
                   extra={"skipped_metrics": evaluator.skipped} if evaluator.skipped else None)
