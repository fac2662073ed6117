"""GAN training-step time with CCBN vs SaBN per model (target: SaBN ≤ 1.05× CCBN), fp32 vs channels_last and
bf16 autocast where the device supports them, and the Fréchet distance at 2048 dimensions vs pytorch-fid's.

One "step" is one D step (a real batch and as many fakes) plus one G step, with the training loop's own
``d_step``/``g_step``. On CUDA the models run at full width with the protocol's batch sizes; on CPU (so that the
script finishes in a couple of minutes) widths are × 1/4 and batches small — the CCBN/SaBN ratio is what matters.
Every variant of a model is timed in the same interleaved rounds.

    python scripts/bench_gan.py [--device cpu|cuda] [--models sngan32 autogan32 biggan32 sngan128] [--rounds 21]
                                [--width-factor 0.25] [--fd-dim 2048] [--skip-fd]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import sabn
from tasks.common.bench import format_table, interleaved_medians
from tasks.gan.metrics import FrechetReference, frechet_distance
from tasks.gan.models import build_gan
from tasks.gan.train import Latents, d_step, g_step

# (d_batch, g_batch, n_classes, resolution, joint D forward) of each model's protocol
PROTOCOL = {"sngan32": (64, 128, 10, 32, False), "autogan32": (64, 128, 10, 32, False),
            "biggan32": (50, 50, 10, 32, True), "sngan128": (16, 32, 143, 128, False)}
WIDTHS = {"sngan32": (256, 128), "autogan32": (256, 128), "biggan32": (64, 64), "sngan128": (64, 64)}


def variants(device: torch.device) -> list[tuple[str, bool, str]]:
    """(name, channels_last, amp) combinations the device supports."""
    out = [("fp32", False, "none")]
    if device.type == "cuda":
        out.append(("channels_last", True, "none"))
        if torch.cuda.is_bf16_supported():
            out += [("bf16", False, "bf16"), ("channels_last+bf16", True, "bf16")]
    return out


def make_step(name: str, norm: str, device: torch.device, width_factor: float, batch_divisor: int,
              channels_last: bool, amp: str):
    d_batch, g_batch, k, res, joint = PROTOCOL[name]
    d_batch, g_batch = max(2, d_batch // batch_divisor), max(2, g_batch // batch_divisor)
    gf, df = (max(1, round(w * width_factor)) for w in WIDTHS[name])
    torch.manual_seed(0)
    G, D = build_gan(name, norm=norm, n_classes=k, gf_dim=gf, df_dim=df)
    G, D = G.to(device), D.to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(memory_format=fmt), D.to(memory_format=fmt)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.0, 0.9))
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    gen = torch.Generator().manual_seed(0)
    real = (torch.rand(d_batch, 3, res, res, generator=gen) * 2 - 1).to(device).contiguous(memory_format=fmt)
    y_real = torch.randint(0, k, (d_batch,), generator=gen).to(device)
    latents = Latents(0, 0, 128, k, device)

    def step() -> None:
        d_step(G, D, real, y_real, *latents(d_batch, 0, 0), opt_d, scaler, joint, amp)
        g_step(G, D, *latents(g_batch, 0, 1), opt_g, scaler, amp)

    return step, (d_batch, g_batch, gf, df)


def bench_models(device: torch.device, models: list[str], rounds: int, width_factor: float,
                 batch_divisor: int) -> None:
    sabn.set_range_checks(False)  # timing the models, not the input validation
    for name in models:
        fns, targets, shape = {}, [], None
        for label, channels_last, amp in variants(device):
            for norm in ("ccbn", "sabn"):
                fns[f"{norm} {label}"], shape = make_step(name, norm, device, width_factor, batch_divisor,
                                                          channels_last, amp)
            targets.append((f"sabn {label}", f"ccbn {label}", 1.05))
        warmup = 3 if device.type == "cuda" else 1
        medians = interleaved_medians(fns, device, rounds=rounds, reps=1 if device.type == "cpu" else 5,
                                      warmup=warmup)
        d_batch, g_batch, gf, df = shape
        print(format_table(medians, "ccbn fp32", targets,
                           title=f"{name}: D step ({d_batch} real + {d_batch} fake) + G step ({g_batch}), "
                                 f"gf_dim {gf}, df_dim {df}, {device.type}"))
        print(flush=True)


def ours(dev: torch.device, mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> dict:
    """Our Fréchet distance from scratch, and against a reference whose √Σ is kept (one eigvalsh per call)."""
    t1, t2, m1, m2 = (torch.from_numpy(a).to(dev) for a in (s1, s2, mu1, mu2))
    ref = FrechetReference(m2, t2)
    ref.distance(m1, t1)  # computes and keeps √Σ of the reference
    return {f"ours ({dev.type})": lambda: frechet_distance(m1, t1, m2, t2),
            f"ours, cached reference ({dev.type})": lambda: ref.distance(m1, t1)}


def bench_frechet(device: torch.device, dim: int) -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(dim, 2 * dim)), rng.normal(size=(dim, 2 * dim)) * 0.9 + 0.1
    s1, s2 = a @ a.T / a.shape[1], b @ b.T / b.shape[1]
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    t0 = time.perf_counter()
    theirs = calculate_frechet_distance(mu1, s1, mu2, s2)
    t_theirs = time.perf_counter() - t0
    rows = {"pytorch-fid (scipy sqrtm)": t_theirs}
    values = {"pytorch-fid (scipy sqrtm)": theirs}
    for dev in [torch.device("cpu")] + ([device] if device.type == "cuda" else []):
        fns = ours(dev, mu1, s1, mu2, s2)
        rows |= interleaved_medians(fns, dev, rounds=3, reps=1, warmup=1)
        values |= {k: f() for k, f in fns.items()}
    print(format_table(rows, "pytorch-fid (scipy sqrtm)", title=f"Fréchet distance, {dim} dimensions "
                                                                  "(pytorch-fid timed once)"))
    for k, v in values.items():
        print(f"  {k}: FD = {v:.6f} (|Δ| vs pytorch-fid {abs(v - theirs):.2e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=list(PROTOCOL), choices=list(PROTOCOL))
    parser.add_argument("--rounds", type=int, default=None, help="default: 15 on CUDA, 21 on CPU (small CPU steps are noisy)")
    parser.add_argument("--width-factor", type=float, default=None, help="default: 1 on CUDA, 0.25 on CPU")
    parser.add_argument("--batch-divisor", type=int, default=None, help="default: 1 on CUDA, 8 on CPU")
    parser.add_argument("--fd-dim", type=int, default=2048)
    parser.add_argument("--skip-fd", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for but no CUDA device is visible")
    cpu = device.type == "cpu"
    if not cpu:
        torch.backends.cudnn.benchmark = True
    print(f"device: {torch.cuda.get_device_name(device) if not cpu else 'cpu'} ({torch.get_num_threads()} threads), "
          f"torch {torch.__version__}\n")
    bench_models(device, args.models, args.rounds or (21 if cpu else 15),
                 args.width_factor if args.width_factor is not None else (0.25 if cpu else 1.0),
                 args.batch_divisor or (8 if cpu else 1))
    if not args.skip_fd:
        bench_frechet(device, args.fd_dim)


if __name__ == "__main__":
    main()
