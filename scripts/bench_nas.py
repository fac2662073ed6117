"""Search-step time of the NB201 supernet per search-cell norm (bn, ccbn, sabn, saauxbn), for DARTS-V1 and GDAS.

A search step is what the search loop runs per iteration: a w-step (forward, backward, grad clip, SGD) on one batch
and a first-order α-step (forward, backward to α, Adam) on another. Every norm is timed in the same interleaved
rounds; ratios are against `bn`. Each step draws fresh norm conditions (DARTS) or Gumbel samples (GDAS), as in the
search, from a seed sequence shared by all norms (so all are timed on the same sampled architectures).

Target (issue): sabn and saauxbn ≤ 1.15× bn.

    python scripts/bench_nas.py [--device cpu|cuda|all] [--channels C] [--cells N] [--batch B] [--size S]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from tasks.common.bench import format_table, interleaved_medians
from tasks.nas.algorithms import arch_step
from tasks.nas.search import weight_step
from tasks.nas.supernet import NORM_VARIANTS, NB201SuperNet

#: (channels, cells per stage, batch, image size) per device when not given: the paper's supernet on CUDA; on CPU a
#: reduced one (the full one takes seconds per step on two cores).
DEFAULT_SIZES = {"cuda": (16, 5, 64, 32), "cpu": (8, 2, 32, 16)}


def search_step(norm: str, algorithm: str, device: torch.device, channels: int, cells: int, batch: int,
                size: int, num_classes: int = 10) -> Callable[[], None]:
    """A closure running one search step (w-step + α-step) of a fresh supernet with the given norm."""
    torch.manual_seed(0)
    model = NB201SuperNet(channels, cells, num_classes, norm=norm, algorithm=algorithm).to(device)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    a_opt = torch.optim.Adam(model.alpha_parameters(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(batch, 3, size, size, generator=gen).to(device) for _ in range(2)]
    ys = [torch.randint(0, num_classes, (batch,), generator=gen).to(device) for _ in range(2)]

    calls = [0]

    def step() -> None:
        # the same sequence of condition / Gumbel draws for every norm: GDAS's step time depends on which ops the
        # sample picks, and without this the norms would be timed on different architectures
        torch.manual_seed(calls[0] % 16)
        calls[0] += 1
        weight_step(model, w_opt, xs[0], ys[0], 5.0)
        arch_step(model, xs[1], ys[1], a_opt)

    return step


def run(device: torch.device, algorithm: str, channels: int, cells: int, batch: int, size: int,
        rounds: int) -> str:
    steps = {norm: search_step(norm, algorithm, device, channels, cells, batch, size) for norm in NORM_VARIANTS}
    medians = interleaved_medians(steps, device, rounds=rounds, reps=3, warmup=2)
    return format_table(
        medians, "bn", [("sabn", "bn", 1.15), ("saauxbn", "bn", 1.15)],
        title=f"{algorithm} search step (w-step + α-step), {device.type}, C={channels}, N={cells}, "
              f"batch {batch}×3×{size}×{size}, {torch.get_num_threads()} CPU threads",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    parser.add_argument("--algorithms", nargs="+", default=["darts", "gdas"], choices=["darts", "gdas"])
    parser.add_argument("--channels", type=int, help="C of the first stage (default: per device, see DEFAULT_SIZES)")
    parser.add_argument("--cells", type=int, help="search cells per stage")
    parser.add_argument("--batch", type=int, help="batch size of each of the two batches")
    parser.add_argument("--size", type=int, help="image size")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for but no CUDA device is visible")
    for dev in (["cpu", "cuda"] if args.device == "all" else [args.device]):
        if dev == "cuda" and not torch.cuda.is_available():
            print("(no CUDA device: CUDA timings skipped)")
            continue
        default = DEFAULT_SIZES[dev]
        c, n, b, s = (given if given is not None else d
                      for given, d in zip((args.channels, args.cells, args.batch, args.size), default))
        for algorithm in args.algorithms:
            print(run(torch.device(dev), algorithm, c, n, b, s, args.rounds))
            print()


if __name__ == "__main__":
    main()
