"""Interleaved micro-benchmarks: every candidate is timed in the same rounds as its baseline, so the printed ratios
compare like with like on a noisy machine. Used by the ``scripts/bench_*.py`` scripts (``make bench``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    rounds: int = 15,
    reps: int = 5,
    warmup: int = 3,
) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin (rotating start) so drifts hit all equally."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                fns[name]()
            _sync(device)
            samples[name].append((time.perf_counter() - t0) / reps)
    return {name: statistics.median(ts) for name, ts in samples.items()}


def format_table(
    medians: dict[str, float],
    baseline: str,
    targets: list[tuple[str, str, float]] | None = None,
    title: str = "",
) -> str:
    """A Markdown table of medians (ms) and ratios to ``baseline``, then one line per target ``(row, reference
    row, maximum ratio)`` saying whether it is met."""
    lines = [f"### {title}"] if title else []
    lines += [f"| variant | median ms | ratio to {baseline} |", "|---|---:|---:|"]
    for name, t in medians.items():
        lines.append(f"| {name} | {t * 1e3:.3f} | {t / medians[baseline]:.3f} |")
    for row, ref, limit in targets or []:
        ratio = medians[row] / medians[ref]
        lines.append(f"target {row} ≤ {limit:.2f}× {ref}: {ratio:.3f} ({'met' if ratio <= limit else 'MISSED'})")
    return "\n".join(lines)
