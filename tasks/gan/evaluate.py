"""``python -m tasks.gan.evaluate CHECKPOINT [key=value ...] [--out FILE]``: IS/FID and the classifier metrics of a
checkpoint's generator, each with its protocol, without training data when the reference statistics (and the
classifier) are cached under ``eval.cache_dir``.

CHECKPOINT is a run folder, one of its ``checkpoints/ckpt_*.pt`` files, or a generator weights file with the
experiment::

    python -m tasks.gan.evaluate runs/gan/sngan_sabn/full/seed0
    python -m tasks.gan.evaluate zoo/sngan_sabn_cifar10_gen_state_dict.pth +exp=sngan_sabn \\
        eval.inception.weights=pt_inception-2015-12-05-6726825d.pth
    python -m tasks.gan.evaluate runs/gan/sngan_sabn/demo/seed0 eval.num_samples=5000 eval.bn_mode=batch

The protocol (samples, BN mode, weights, reference split) is the run's ``eval`` section unless overridden; metrics
are switched off with ``eval.inception.enabled=false`` / ``eval.classifier.enabled=false``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from tasks.common.app import OneLineParser, main_guarded
from tasks.common.runtime import DistEnv

from .evaluation import DataSource, Evaluator
from .loading import load_generator


def format_table(metrics: dict, skipped: dict[str, str]) -> str:
    """A Markdown table of the metrics, then each one's protocol and stand-in label."""
    lines = ["| metric | value |", "|---|---:|"]
    lines += [f"| {k} | {'—' if m.value is None else f'{m.value:.4f}'}{'†' if m.stand_in else ''} |"
              for k, m in metrics.items()]
    lines += [f"| {k} | — (skipped) |" for k in skipped if k not in metrics]
    lines.append("")
    for k, m in metrics.items():
        lines.append(f"- {k}: " + ", ".join(f"{a}: {b}" for a, b in m.protocol.items()))
        if m.stand_in:
            lines.append(f"  † stand-in: {m.stand_in}")
    for k, why in skipped.items():
        lines.append(f"- {k} skipped: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m tasks.gan.evaluate", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="run folder, checkpoint file, or generator weights file")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (and +exp=... for weights files)")
    parser.add_argument("--weights", choices=["ema", "live"], help="suite checkpoints: EMA or live weights")
    parser.add_argument("--out", help="JSON file (default: <run>/eval_<checkpoint>.json or ./gan_eval.json)")
    args = parser.parse_intermixed_args(argv)
    loaded = load_generator(args.checkpoint, args.overrides, args.weights)
    device = next(loaded.G.parameters()).device
    evaluator = Evaluator(loaded.cfg, DataSource(loaded.cfg.data), loaded.num_classes, device, DistEnv()).prepare()
    metrics = evaluator.evaluate(loaded.G, loaded.step or 0, loaded.weights)
    for m in metrics.values():
        m.protocol["checkpoint"] = str(loaded.source)
    print(format_table(metrics, evaluator.skipped))
    out = Path(args.out) if args.out else (
        loaded.run_dir / f"eval_{loaded.source.stem}.json" if loaded.run_dir else Path("gan_eval.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"checkpoint": str(loaded.source), "step": loaded.step,
                               "metrics": {k: asdict(m) for k, m in metrics.items()},
                               "skipped": evaluator.skipped}, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    main_guarded(main)
