"""Forward+backward time of BN, CCBN, SaBN, SaAuxBN and a naive two-step SaBN at SNGAN shapes, plus inference
after ``sabn.fold``. Every variant is timed in the same interleaved rounds; ratios are against CCBN.

Targets (issue 2): SaBN ≤ 1.05× CCBN and no slower than the naive reference; folded inference ≤ 1.02× CCBN.

    python scripts/bench_norms.py [--device cpu|cuda|all] [--rounds 15] [--shape 64 256 16 16] [--conditions 10]
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn

import sabn
from tasks.common.bench import format_table, interleaved_medians


class NaiveSaBN(nn.Module):
    """The obvious two-step implementation: BN with its affine, then a separate per-sample affine."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.gamma = nn.Embedding(k, c)
        self.beta = nn.Embedding(k, c)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.bn(x)
        return h * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


def run(device: torch.device, shape: tuple[int, int, int, int], k: int, rounds: int) -> str:
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen).to(device).requires_grad_(True)
    y = torch.randint(0, k, (n,), generator=gen).to(device)
    grad = torch.randn(n, c, h, w, generator=gen).to(device)
    sabn.set_range_checks(False)  # timing the layers, not the input validation

    layers: dict[str, nn.Module] = {
        "bn": nn.BatchNorm2d(c),
        "ccbn": sabn.CategoricalConditionalBatchNorm2d(c, k),
        "sabn": sabn.SandwichBatchNorm2d(c, k),
        "naive_sabn": NaiveSaBN(c, k),
        "auxbn (branch)": sabn.AuxBatchNorm2d(c, 2),
        "saauxbn (branch)": sabn.SandwichAuxBatchNorm2d(c, 2),
        "saauxbn (per-sample)": sabn.SandwichAuxBatchNorm2d(c, k),
    }
    calls = {
        "bn": lambda m: m(x),
        "ccbn": lambda m: m(x, y),
        "sabn": lambda m: m(x, y),
        "naive_sabn": lambda m: m(x, y),
        "auxbn (branch)": lambda m: m(x, 1),
        "saauxbn (branch)": lambda m: m(x, 1),
        "saauxbn (per-sample)": lambda m: m(x, y),
    }
    for m in layers.values():
        m.to(device).train()

    def step(name: str):
        def f() -> None:
            x.grad = None
            layers[name].zero_grad(set_to_none=True)
            calls[name](layers[name]).backward(grad)
        return f

    train = interleaved_medians({name: step(name) for name in layers}, device, rounds=rounds)
    out = [format_table(
        train, "ccbn", [("sabn", "ccbn", 1.05), ("sabn", "naive_sabn", 1.0)],
        title=f"train forward+backward, {device.type}, x {tuple(shape)}, K={k}",
    )]

    # inference: CCBN, SaBN as is, and SaBN folded into a CCBN
    ccbn = layers["ccbn"].eval()
    sa = layers["sabn"].eval()
    folded = sabn.fold(nn.Sequential(copy.deepcopy(sa)))[0].eval()
    xi = x.detach()
    with torch.inference_mode():
        infer = interleaved_medians(
            {"ccbn": lambda: ccbn(xi, y), "sabn": lambda: sa(xi, y), "sabn folded": lambda: folded(xi, y)},
            device, rounds=2 * rounds, reps=20,
        )
    out.append(format_table(infer, "ccbn", [("sabn folded", "ccbn", 1.02)],
                            title=f"inference (eval mode), {device.type}"))
    sabn.set_range_checks(True)
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    parser.add_argument("--shape", type=int, nargs=4, default=[64, 256, 16, 16])
    parser.add_argument("--conditions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for but no CUDA device is visible")
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print("(no CUDA device: CUDA timings skipped)")
            continue
        print(run(torch.device(dev), tuple(args.shape), args.conditions, args.rounds))
        print()


if __name__ == "__main__":
    main()
