"""``python -m tasks.gan.sample CHECKPOINT [key=value ...] [options]``: per-class sample grids (and sample arrays)
from a checkpoint, without training data.

CHECKPOINT is a run folder, one of its ``checkpoints/ckpt_*.pt`` files, or a generator weights file (official
model zoo, official training checkpoint) together with the experiment, e.g.::

    python -m tasks.gan.sample runs/gan/sngan_sabn/demo/seed0
    python -m tasks.gan.sample zoo/sngan_sabn_cifar10_gen_state_dict.pth +exp=sngan_sabn --out sngan_sabn.png
    python -m tasks.gan.sample runs/gan/sngan_ccbn/full/seed0 --num 50000 --npz samples.npz   # for external IS/FID

The BN mode and which weights (EMA or live) follow the run's evaluation protocol unless overridden
(``eval.bn_mode=batch``, ``--weights live``); the grid rows are ``eval.grid_max_classes`` classes (or ``--classes``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from tasks.common.app import OneLineParser, main_guarded
from tasks.common.errors import UserError
from tasks.common.runtime import DistEnv

from .config import choice
from .evaluation import DataSource, Evaluator, evaluation_batches, sampling_mode
from .images import to_uint8
from .loading import load_generator


def parse_args(argv: list[str] | None = None) -> tuple:
    parser = OneLineParser(prog="python -m tasks.gan.sample", description=__doc__,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="run folder, checkpoint file, or generator weights file")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (and +exp=... for weights files)")
    parser.add_argument("--out", help="grid PNG (default: <run>/samples/sample_<checkpoint>.png or ./samples.png)")
    parser.add_argument("--per-class", type=int, help="samples per class in the grid (default eval.grid_per_class)")
    parser.add_argument("--classes", help="comma-separated class ids for the grid rows")
    parser.add_argument("--weights", choices=["ema", "live"], help="suite checkpoints: EMA or live weights")
    parser.add_argument("--seed", type=int, help="sample seed (default eval.seed)")
    parser.add_argument("--num", type=int, default=0, help="also draw this many samples with uniform labels ...")
    parser.add_argument("--npz", help="... into this .npz (uint8 images N×H×W×3 and labels)")
    return parser.parse_intermixed_args(argv), parser


def main(argv: list[str] | None = None) -> int:
    args, parser = parse_args(argv)
    if bool(args.num) != bool(args.npz):
        parser.error("--num and --npz go together")
    if args.per_class is not None and args.per_class < 1:
        parser.error("--per-class must be >= 1")
    loaded = load_generator(args.checkpoint, args.overrides, args.weights)
    cfg, G, device = loaded.cfg, loaded.G, next(loaded.G.parameters()).device
    if args.per_class is not None:
        cfg.eval.grid_per_class = args.per_class
    if args.seed is not None:
        cfg.eval.seed = args.seed
    evaluator = Evaluator(cfg, DataSource(cfg.data), loaded.num_classes, device)
    classes = None
    if args.classes:
        try:
            classes = [int(c) for c in args.classes.split(",")]
        except ValueError:
            parser.error(f"--classes takes comma-separated integers, got {args.classes!r}")
        if not all(0 <= c < loaded.num_classes for c in classes):
            raise UserError(f"--classes must lie in 0..{loaded.num_classes - 1}")
    default = (loaded.run_dir / "samples" / f"sample_{loaded.source.stem}.png") if loaded.run_dir else Path("samples.png")
    grid = evaluator.save_grid(G, args.out or default, classes)
    protocol = {"checkpoint": str(loaded.source), "step": loaded.step, "weights": loaded.weights,
                "bn_mode": choice(cfg.eval.bn_mode), "seed": int(cfg.eval.seed)}
    print(f"grid: {grid}  ({json.dumps(protocol)})")
    if args.num:
        images, labels = [], []
        with torch.no_grad(), sampling_mode(G, choice(cfg.eval.bn_mode)):
            for _, z, y in evaluation_batches(args.num, int(cfg.eval.batch_size), loaded.num_classes, G.latent_dim,
                                              int(cfg.eval.seed), DistEnv()):
                images.append(to_uint8(G(z.to(device), y.to(device))).permute(0, 2, 3, 1).cpu().numpy())
                labels.append(y.numpy())
        np.savez(args.npz, images=np.concatenate(images), labels=np.concatenate(labels),
                 protocol=json.dumps(protocol))
        print(f"{args.num} samples: {args.npz}")
    return 0


if __name__ == "__main__":
    main_guarded(main)
