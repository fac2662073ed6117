"""Style-transfer training (paper §2.4): a decoder (+ the style norm's parameters) trained on a frozen VGG encoder
with content ×1 + style ×10 losses, Adam with inverse-time decay, validation losses and sample grids."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import torch
from omegaconf import DictConfig
from torchvision.utils import make_grid, save_image

from tasks.common.data import BatchStream, eval_loader
from tasks.common.norms import check_norm
from tasks.common.results import Metric
from tasks.common.run import Run
from tasks.common.runtime import all_reduce_sum, autocast, eval_mode, grad_scaler, prepare_model

from .data import NSTData, build_data
from .networks import STYLE_NORMS, NSTLosses, StyleTransferNet, build_style_net
from .plot import save_curves
from .stylize import stylize

#: The style stream's seed is the run seed plus this, so its order is independent of the content stream's.
STYLE_STREAM_SEED_OFFSET = 7_919
#: Logged (and reported) loss names; all weighted as the paper plots them.
LOSS_NAMES = ("loss_content", "loss_style", "loss_content_adain_target")


def lr_factor(step: int, decay: float) -> float:
    """The official inverse-time decay: iteration t (0-based) uses lr / (1 + decay · t)."""
    return 1.0 / (1.0 + decay * step)


class LossTracker:
    """Per-iteration weighted training losses (content, style, content against the AdaIN target): their mean since
    the last log line, and over the last ``window`` iterations (the reported final training losses).

    Values stay on the device until read, so CUDA training does not synchronise every iteration. Checkpointed with
    the run, so a resumed run reports exactly what an uninterrupted one would.
    """

    def __init__(self, window: int) -> None:
        self.window: deque[list[float]] = deque(maxlen=max(1, int(window)))
        self.interval: list[list[float]] = []
        self._pending: list[torch.Tensor] = []

    def add(self, losses: NSTLosses, world_size: int = 1) -> None:
        """Record one iteration's losses, averaged over the DDP processes (each holds a share of the batch)."""
        adain = losses.content_weight * losses.content_adain_target
        values = torch.stack([losses.weighted_content, losses.weighted_style, adain]).detach().float()
        self._pending.append(all_reduce_sum(values) / world_size)

    def _sync(self) -> None:
        if self._pending:
            rows = torch.stack(self._pending).cpu().tolist()
            self.window.extend(rows)
            self.interval.extend(rows)
            self._pending = []

    @staticmethod
    def _mean(rows: list[list[float]] | deque[list[float]]) -> list[float]:
        return [math.fsum(col) / len(rows) for col in zip(*rows)] if rows else [math.nan] * len(LOSS_NAMES)

    def pop_interval(self) -> dict[str, float]:
        """Mean of each loss since the previous call."""
        self._sync()
        means, self.interval = self._mean(self.interval), []
        return dict(zip(LOSS_NAMES, means))

    def window_mean(self) -> dict[str, float]:
        self._sync()
        return dict(zip(LOSS_NAMES, self._mean(self.window)))

    def state_dict(self) -> dict[str, Any]:
        self._sync()
        return {"window": list(self.window), "interval": list(self.interval), "size": self.window.maxlen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window = deque(state["window"], maxlen=int(state["size"]))
        self.interval = list(state["interval"])
        self._pending = []


def build_net(cfg: DictConfig, norm: str, num_styles: int) -> StyleTransferNet:
    """The network of ``cfg``: encoder (VGG file or the seeded stand-in), ``norm`` at relu4_1, decoder."""
    n, m = cfg.norm, cfg.model
    norm_kwargs: dict[str, object] = {"eps": float(n.eps)}
    if norm in ("saadain", "sain"):
        norm_kwargs["shared_init_std"] = float(n.shared_init_std)
    if norm == "sain":
        norm_kwargs["init_std"] = float(n.init_std)
    return build_style_net(
        norm, vgg_path=m.vgg_path, seed=int(m.stand_in_seed), num_styles=num_styles if norm == "sain" else None,
        decoder_path=m.decoder_path, content_weight=float(cfg.train.content_weight),
        style_weight=float(cfg.train.style_weight), detach_target=bool(m.detach_target), norm_kwargs=norm_kwargs,
    )


@torch.no_grad()
def init_sain_from_styles(net: StyleTransferNet, data: NSTData, device: torch.device, batch_size: int) -> None:
    """Start each style's affine at its relu4_1 statistics (centre crops of the training styles), chunk by chunk."""
    styles = data.train_style_centre
    for first in range(0, len(styles.files), batch_size):
        ids = range(first, min(first + batch_size, len(styles.files)))
        net.init_style_affines(torch.stack([styles.load(i) for i in ids]).to(device), first=first)


@torch.no_grad()
def validate(net: StyleTransferNet, data: NSTData, cfg: DictConfig, run: Run) -> dict[str, float]:
    """Weighted validation losses averaged over the fixed pairs (exactly: batch means weighted by batch size)."""
    sums = torch.zeros(len(LOSS_NAMES) + 1, dtype=torch.float64, device=run.device)
    loader = eval_loader(data.val, int(cfg.val.batch_size), run.env, int(cfg.data.num_workers))
    with eval_mode(net), autocast(run.device, cfg.device.amp):
        for content, style, ids in loader:
            content, style = content.to(run.device), style.to(run.device)
            losses = net(content, style, style_id=ids.to(run.device) if net.conditional else None)
            adain = losses.content_weight * losses.content_adain_target
            values = torch.stack([losses.weighted_content, losses.weighted_style, adain]).double()
            sums[:-1] += values * content.shape[0]
            sums[-1] += content.shape[0]
    all_reduce_sum(sums)
    means = (sums[:-1] / sums[-1]).tolist()
    return dict(zip(LOSS_NAMES, means))


@torch.no_grad()
def sample_grid(net: StyleTransferNet, data: NSTData, device: torch.device) -> torch.Tensor:
    """Content rows × style columns: a header row of the styles, a header column of the contents, white corner."""
    styles = data.grid_style.to(device)
    k = styles.shape[0]
    cells = [torch.ones_like(styles[:1]), styles]
    with eval_mode(net):
        for content in data.grid_content.to(device):
            condition = data.grid_style_ids.to(device) if net.conditional else styles
            cells += [content[None], stylize(net, content[None].expand(k, -1, -1, -1), condition)]
    return make_grid(torch.cat(cells).float().cpu(), nrow=k + 1, padding=2, pad_value=1.0)


def log_validation(run: Run, net: StyleTransferNet, data: NSTData, cfg: DictConfig, step: int) -> dict[str, float]:
    """Validate, log the losses, save the sample grid (PNG + W&B); returns the losses."""
    val = validate(net, data, cfg, run)
    run.log(step, {f"val/{k}": v for k, v in val.items()}, force=True)
    grid = sample_grid(net, data, run.device)
    if run.env.is_main:
        stand_in = net.encoder_info.stand_in
        path = run.run_dir / "samples" / f"step{step:07d}{'-stand-in-encoder' if stand_in else ''}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        caption = (f"{cfg.exp} step {step}: rows = validation content, columns = "
                   f"{'training styles (ids)' if net.conditional else 'validation styles'}; encoder: "
                   f"{net.encoder_info.label}")
        run.logger.log_image(step, "samples", path, caption=caption)
    return val


def log_curves(run: Run, step: int, label: str) -> None:
    """``curves.png`` of this run (training and validation losses) in the run directory and W&B."""
    if run.env.is_main:
        path = save_curves([run.run_dir], run.run_dir / "curves.png")
        run.logger.log_image(step, "curves", path, caption=f"loss curves; encoder: {label}")


def final_metrics(cfg: DictConfig, data: NSTData, tracker: LossTracker, val: dict[str, float],
                  stand_in: str | None) -> dict[str, Metric]:
    t, d = cfg.train, cfg.data
    weighting = f"content ×{float(t.content_weight):g}, style ×{float(t.style_weight):g} (as the paper's curves)"
    window = min(int(t.final_window), int(t.iterations))
    train_protocol = {
        "split": f"training batches ({data.name})", "weights": f"final (iteration {int(t.iterations)})",
        "averaged_over_last_iterations": window, "batch": int(t.batch_size),
        "crops": f"random {int(d.image_size)}-px crops of {int(d.load_size)}×{int(d.load_size)} resizes",
        "weighting": weighting,
    }
    val_protocol = {"split": data.val_description, "weights": f"final (iteration {int(t.iterations)})",
                    "weighting": weighting}
    own = "the network's own style-norm output (moves with SaAdaIN's learned affine)"
    adain = "plain AdaIN(content, style) at relu4_1 (like for like across norms)"
    final = tracker.window_mean()
    return {
        "train_content": Metric(final["loss_content"], {**train_protocol, "content_target": own}, stand_in),
        "train_content_adain_target": Metric(final["loss_content_adain_target"],
                                             {**train_protocol, "content_target": adain}, stand_in),
        "train_style": Metric(final["loss_style"], train_protocol, stand_in),
        "val_content": Metric(val["loss_content"], {**val_protocol, "content_target": own}, stand_in),
        "val_content_adain_target": Metric(val["loss_content_adain_target"],
                                           {**val_protocol, "content_target": adain}, stand_in),
        "val_style": Metric(val["loss_style"], val_protocol, stand_in),
    }


def train(cfg: DictConfig) -> None:
    norm = check_norm(cfg.norm, STYLE_NORMS, "nst")
    data = build_data(cfg, conditional=norm == "sain")
    t, total = cfg.train, int(cfg.train.iterations)
    with Run(cfg, model_name="vgg19-relu4_1+adain-decoder", dataset_name=data.name) as run:
        net = build_net(cfg, norm, data.num_styles).to(run.device)
        for note in (net.encoder_info.label if net.encoder_info.stand_in else None, data.stand_in):
            if note:
                run.add_stand_in(note)
        if norm == "sain" and bool(cfg.model.sain_init_from_styles):
            init_sain_from_styles(net, data, run.device, int(cfg.val.batch_size))
        model = prepare_model(net, run.device, run.env, cfg.device)
        workers = int(cfg.data.num_workers)
        content = BatchStream(data.train_content, int(t.batch_size), run.env, int(cfg.seed), num_workers=workers)
        style = BatchStream(data.train_style, int(t.batch_size), run.env, int(cfg.seed) + STYLE_STREAM_SEED_OFFSET,
                            num_workers=workers)
        opt = torch.optim.Adam(net.trainable_parameters(), lr=float(t.lr))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, float(t.lr_decay)))
        scaler = grad_scaler(run.device, cfg.device.amp)
        tracker = LossTracker(int(t.final_window))
        objects = {"decoder": net.decoder, "style_norm": net.style_norm, "opt": opt, "sched": sched,
                   "scaler": scaler, "content": content, "style": style, "losses": tracker}
        start = run.resume(objects)
        val = run.extra.get("val") or (log_validation(run, net, data, cfg, 0) if start == 0 else {})

        for step in run.steps(start, total):
            (c, _), (s, ids) = next(content), next(style)
            c, s = c.to(run.device, non_blocking=True), s.to(run.device, non_blocking=True)
            with autocast(run.device, cfg.device.amp):
                losses = model(c, s, style_id=ids.to(run.device) if net.conditional else None)
            run.check_finite(step, loss=losses.total)
            opt.zero_grad(set_to_none=True)
            scaler.scale(losses.total).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            tracker.add(losses, run.env.world_size)
            if step % max(1, int(cfg.logger.log_every)) == 0 or step == total:
                run.log(step, {**{f"train/{k}": v for k, v in tracker.pop_interval().items()},
                               "lr": sched.get_last_lr()[0]}, force=True)
            if step % int(cfg.val.every) == 0 or step == total:
                val = log_validation(run, net, data, cfg, step)
            run.step_done(step, objects, extra={"val": val})

        log_curves(run, total, net.encoder_info.label)
        # Each metric names the stand-in that matters most (the encoder, else the data); results.json lists all.
        stand_in = run.stand_ins[0] if run.stand_ins else None
        run.finish(final_metrics(cfg, data, tracker, val, stand_in), steps=total, objects=objects,
                   extra={"encoder": net.encoder_info.label, "val_pairs": len(data.val)})

