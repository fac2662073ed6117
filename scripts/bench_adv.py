"""PGD-10 evaluation throughput of ``tasks.adv.attacks.pgd`` against torchattacks' PGD on the same model and batch,
and the time of one adversarial training step (PGD-7 in train mode + the ½ clean + ½ adversarial update) per norm.
Every variant is timed in the same interleaved rounds.

Target (issue): our PGD-10 ≤ 1.0× the time of torchattacks.PGD (same ε 8/255, step 2/255, 10 steps, random start,
eval mode, through branch 1 of a SaAuxBN PreAct ResNet-18).

    python scripts/bench_adv.py                      # CUDA if present (width 64, batch 128), else CPU (small)
    python scripts/bench_adv.py --device cpu --width 16 --batch 32 --size 32 --rounds 9 --reps 2

On a CPU shared with other work the ratio moves by several per cent between runs (identical code variants differ by
±4 %); compare several runs before reading a sub-5 % difference.
"""

from __future__ import annotations

import argparse
import sys

import torch

from tasks.adv.attacks import pgd
from tasks.adv.evaluation import BranchView, require_torchattacks
from tasks.adv.model import PreActResNet18
from tasks.adv.train import AdvObjective
from tasks.common.bench import format_table, interleaved_medians
from tasks.common.errors import UserError

EPS, STEP = 8 / 255, 2 / 255


def bench_attacks(device: torch.device, width: int, batch: int, size: int, rounds: int, reps: int) -> str:
    torchattacks = require_torchattacks()
    torch.manual_seed(0)
    model = PreActResNet18("saauxbn", base_width=width).to(device).eval()
    x = torch.rand(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    theirs = torchattacks.PGD(BranchView(model, 1), eps=EPS, alpha=STEP, steps=10, random_start=True)
    fns = {
        "torchattacks.PGD": lambda: theirs(x, y),
        "ours (tasks.adv.attacks.pgd)": lambda: pgd(model, x, y, EPS, STEP, 10, branch=1, mode="eval"),
    }
    medians = interleaved_medians(fns, device, rounds=rounds, reps=reps, warmup=2)
    title = (f"PGD-10 evaluation, {device.type}, SaAuxBN PreAct ResNet-18 width {width}, batch {batch}×3×{size}×{size},"
             " eval mode, branch 1")
    table = format_table(medians, "torchattacks.PGD", [("ours (tasks.adv.attacks.pgd)", "torchattacks.PGD", 1.0)],
                         title=title)
    per_image = {k: batch / v for k, v in medians.items()}
    return table + "\n" + "\n".join(f"throughput {k}: {v:.1f} images/s" for k, v in per_image.items())


def bench_train_steps(device: torch.device, width: int, batch: int, size: int, rounds: int, reps: int) -> str:
    x = torch.rand(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    fns = {}
    for norm in ("bn", "auxbn", "saauxbn"):
        torch.manual_seed(0)
        net = PreActResNet18(norm, base_width=width).to(device).train()
        objective = AdvObjective(net, 0.5, 0.5)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step(net=net, objective=objective, opt=opt) -> None:
            x_adv = pgd(net, x, y, EPS, STEP, 7, branch=1, mode="train")
            loss = objective(x, x_adv, y)[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        fns[norm] = step
    medians = interleaved_medians(fns, device, rounds=rounds, reps=reps, warmup=2)
    return format_table(medians, "bn", title=f"training step (PGD-7 in train mode + ½ clean + ½ adversarial update), "
                                             f"{device.type}, width {width}, batch {batch}×3×{size}×{size}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--width", type=int, default=None, help="base width (default: 64 on CUDA, 16 on CPU)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: 128 on CUDA, 32 on CPU)")
    p.add_argument("--size", type=int, default=32, help="image side")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: 15 on CUDA, 9 on CPU)")
    p.add_argument("--reps", type=int, default=None, help="calls per timing sample (default: 5 on CUDA, 2 on CPU)")
    args = p.parse_args()
    name = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    name = "cpu" if name == "auto" else name
    if name == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    device = torch.device(name)
    gpu = device.type == "cuda"
    width = args.width or (64 if gpu else 16)
    batch = args.batch or (128 if gpu else 32)
    rounds = args.rounds or (15 if gpu else 9)
    reps = args.reps or (5 if gpu else 2)
    if gpu:
        torch.backends.cudnn.benchmark = True
    try:
        print(bench_attacks(device, width, batch, args.size, rounds, reps))
    except UserError as e:
        print(f"(PGD comparison skipped: {e})")
    print()
    print(bench_train_steps(device, width, batch, args.size, rounds, reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
