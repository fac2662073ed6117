"""Training-step memory and time of ResNet-18 (CIFAR form), BN vs MimicNorm (and its ablations), same batch, one
run. Memory: peak allocated bytes (CUDA) or peak resident bytes (CPU) of one training step, and the bytes autograd
saves for backward; time: median of interleaved rounds. Ratios are against the BN network measured in the same run.
The MimicNorm paper reports memory ratios of 0.70–0.96 (whole-process nvidia-smi figures; ResNet-18 CIFAR: 0.935).

    python scripts/bench_cls.py [--model resnet18] [--batch 64] [--device cpu|cuda] [--rounds 5]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from sabn import mimicnorm as mn
from tasks.cls.models import build_model
from tasks.common.bench import format_table, interleaved_medians
from tasks.common.memory import SavedTensorBytes, peak_step_memory, precise_cpu_memory


def make_step(model: torch.nn.Module, variant: str, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    if variant in ("mimicnorm", "weightmean"):
        mn.weight_mean_(model)
        mn.project_after_steps(opt, model)

    def step(counter: SavedTensorBytes | None = None) -> None:
        opt.zero_grad(set_to_none=True)
        if counter is None:
            loss = F.cross_entropy(model(x), y)
        else:
            with counter:
                loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18", choices=["resnet18", "resnet50", "vgg16", "shufflenetv2"])
    parser.add_argument("--variants", nargs="+", default=["bn", "mimicnorm", "lastbn", "none"])
    parser.add_argument("--batch", type=int, default=None, help="default: 256 on CUDA, 32 on CPU")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for but no CUDA device is visible")
    batch = args.batch or (256 if device.type == "cuda" else 32)
    if device.type == "cpu":
        precise_cpu_memory(True)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 100, (batch,), device=device)

    steps, memory = {}, {}
    for variant in args.variants:
        model = build_model(args.model, 100, variant).to(device).train()
        step = make_step(model, variant, x, y)
        step()  # optimiser state exists from here on, as in training
        counter = SavedTensorBytes(model)
        peak = peak_step_memory(lambda counter=counter, step=step: step(counter), device)
        memory[variant] = (peak, counter.bytes / 2**20)
        steps[variant] = step
    precise_cpu_memory(False)  # timings with the allocator's normal behaviour
    times = interleaved_medians(steps, device, rounds=args.rounds, reps=1, warmup=1)

    print(format_table(times, "bn", title=f"{args.model} training step, batch {batch}, {device}"))
    print()
    print("| variant | peak step memory MB | ratio to bn | saved activations MB | ratio to bn |")
    print("|---|---:|---:|---:|---:|")
    base_peak, base_act = memory["bn"][0]["peak_mb"], memory["bn"][1]
    for variant, (peak, act) in memory.items():
        p = peak["peak_mb"]
        ratio = f"{p / base_peak:.3f}" if p is not None and base_peak else "—"
        print(f"| {variant} | {'—' if p is None else f'{p:.1f}'} | {ratio} | {act:.1f} | {act / base_act:.3f} |")
    print(f"\nmemory method: {memory['bn'][0]['method']}")


if __name__ == "__main__":
    main()
