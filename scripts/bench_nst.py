"""Training-iteration time of style transfer, AdaIN vs SaAdaIN (and SaIN): one full iteration each — encode content
and style, style norm, decode, re-encode, losses, backward, Adam step — on the same batch, timed in the same
interleaved rounds. Target: SaAdaIN ≤ 1.02× AdaIN.

    python scripts/bench_nst.py [--device cpu|cuda|all] [--batch 8] [--size 256] [--rounds 15]

Defaults: CUDA at the paper's batch 8 × 256²; CPU at batch 4 × 64² (a 256² iteration takes seconds there). The
encoder is the seeded random stand-in (timing does not depend on the weights).
"""

from __future__ import annotations

import argparse

import torch

from tasks.common.bench import format_table, interleaved_medians
from tasks.nst.networks import StyleTransferNet, build_style_net


def iteration(net: StyleTransferNet, opt: torch.optim.Optimizer, content: torch.Tensor, style: torch.Tensor,
              ids: torch.Tensor | None):
    def step() -> None:
        losses = net(content, style, style_id=ids)
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        opt.step()

    return step


def run(device: torch.device, batch: int, size: int, rounds: int) -> str:
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(batch, 3, size, size, generator=gen).to(device)
    style = torch.rand(batch, 3, size, size, generator=gen).to(device)
    ids = torch.arange(batch, device=device)
    fns = {}
    for norm in ("adain", "saadain", "sain"):
        torch.manual_seed(0)  # the same decoder initialisation for every variant
        net = build_style_net(norm, num_styles=batch if norm == "sain" else None).to(device)
        opt = torch.optim.Adam(net.trainable_parameters(), lr=1e-4)
        fns[norm] = iteration(net, opt, content, style, ids if norm == "sain" else None)
    reps = 3 if device.type == "cuda" else 1
    medians = interleaved_medians(fns, device, rounds=rounds, reps=reps, warmup=2)
    return format_table(medians, "adain", [("saadain", "adain", 1.02)],
                        title=f"NST training iteration, {device.type}, batch {batch} × {size}²")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--batch", type=int, default=None, help="default: 8 on CUDA, 4 on CPU")
    parser.add_argument("--size", type=int, default=None, help="crop side; default: 256 on CUDA, 64 on CPU")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    elif args.device == "cuda":
        raise SystemExit("error: --device cuda but no CUDA device is visible")
    for device in devices:
        cuda = device.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True
        batch = args.batch or (8 if cuda else 4)
        size = args.size or (256 if cuda else 64)
        print(run(device, batch, size, args.rounds))
        print()


if __name__ == "__main__":
    main()
