"""Evaluate a saved adversarial-training model: clean accuracy and robust accuracy under PGD-k or AutoAttack,
through the chosen BN branches, on the test or validation split.

    python -m tasks.adv.evaluate runs/adv/pgd_saauxbn/full/seed0                 # a run: last weights, PGD-10/20
    python -m tasks.adv.evaluate runs/adv/pgd_saauxbn/full/seed0 --which best --split val --samples 1000
    python -m tasks.adv.evaluate model_epoch190.pt --attack pgd --steps 20 --branch 1 --data-root ~/data
    python -m tasks.adv.evaluate model_best.pt --attack autoattack --branch 1     # needs pip install -e '.[attacks]'

The checkpoint is a run directory (its newest checkpoint), one of its ``checkpoints/ckpt_*.pt`` files, or any
state-dict file of the PreAct ResNet-18 — this project's ``model_last.pt``/``model_best.pt`` or an official
``Adv/`` checkpoint (``{"state_dict": ...}`` wrappers and ``module.`` prefixes are fine). The norm layout (bn,
auxbn, saauxbn), width and class count are read from the weights. For a run, the data set, split and attack radius
default to the run's own settings; otherwise to CIFAR-10 with ε = 8/255, step 2/255. The model is in eval mode for
the attack and the prediction; the attack is white-box through the evaluated branch. A small table is printed and
the numbers, each with its protocol, are written as JSON (``--out``). Bad input stops with one line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from tasks.common.app import EXIT_USER_ERROR, OneLineParser
from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.data import build_dataset
from tasks.common.errors import UserError
from tasks.common.results import Metric
from tasks.common.runtime import DistEnv, select_device

from .data import build_splits, first
from .evaluation import (
    NO_BRANCHES_NOTE,
    PGDSettings,
    autoattack_protocol,
    evaluate_branches,
    require_torchattacks,
)
from .model import PreActResNet18, detect_layout, load_official_checkpoint, unwrap_state_dict


def fraction(text: str) -> float:
    """A number such as ``0.0314`` or ``8/255``."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError) as e:
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from e


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m tasks.adv.evaluate", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="run directory, checkpoints/ckpt_*.pt, or a state-dict file")
    p.add_argument("--which", choices=["last", "best"], default="last",
                   help="for a run or a ckpt_*.pt file: the last weights or the best-validation weights")
    p.add_argument("--attack", choices=["pgd", "autoattack", "none"], default="pgd")
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20], help="PGD steps (one evaluation each)")
    p.add_argument("--eps", type=fraction, default=None, help="L∞ radius on [0, 1], e.g. 8/255 (default: the run's)")
    p.add_argument("--step-size", type=fraction, default=None, help="PGD step, e.g. 2/255 (default: the run's)")
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--no-random-start", action="store_true", help="start PGD at the clean image")
    p.add_argument("--branch", type=int, nargs="+", default=[0, 1], help="BN branches (0 clean, 1 adversarial)")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--samples", type=int, default=None, help="evaluate the first N images (default: all)")
    p.add_argument("--data", default=None, help="dataset registry name (default: the run's, else cifar10)")
    p.add_argument("--data-root", default=None, help="folder holding the data (default: the run's, else $SABN_DATA or data)")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--val-size", type=int, default=None, help="validation images held out (default: the run's, else 5000)")
    p.add_argument("--split-seed", type=int, default=None, help="seed of the validation split (default: the run's, else 10)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--seed", type=int, default=0, help="seeds the attacks' random starts")
    p.add_argument("--out", default=None, help="JSON output (default: <run>/eval/... or next to the file)")
    return p


@dataclass
class Loaded:
    """A model state dict and where it came from."""

    state: dict[str, torch.Tensor]
    description: str
    run_config: Any  # the run's resolved config (OmegaConf) when the checkpoint belongs to a run, else None
    default_out: Path


def _newest_run_checkpoint(run_dir: Path) -> Path:
    paths = CheckpointManager(run_dir / "checkpoints", "").paths()
    if not paths:
        raise UserError(f"{run_dir} has no checkpoints/ckpt_*.pt files; pass a checkpoint file instead")
    return paths[-1]


def load(path_text: str, which: str, split: str, attack: str) -> Loaded:
    """Read the checkpoint named on the command line."""
    path = Path(path_text).expanduser()
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if path.is_dir():
        run_dir = path.parent if path.name == "checkpoints" else path
        path = _newest_run_checkpoint(run_dir)
    obj = load_file(path, "checkpoint")
    is_run_ckpt = isinstance(obj, dict) and "objects" in obj and "format" in obj
    run_dir = path.parent.parent if is_run_ckpt else path.parent
    config_file = run_dir / "config.yaml"
    run_config = OmegaConf.load(config_file) if config_file.is_file() and (run_dir / "checkpoints").is_dir() else None
    if is_run_ckpt:
        objects = obj["objects"]
        if which == "best":
            best = objects.get("best") or {}
            if best.get("weights") is None:
                raise UserError(f"{path} holds no best-validation weights yet (no epoch was validated); "
                                "use --which last")
            state, what = best["weights"], (f"best-validation weights (epoch {best.get('epoch')}, "
                                            f"{best.get('criterion')} = {best.get('value')})")
        else:
            state, what = objects.get("model"), f"last weights (step {obj.get('step')})"
        description = f"{path}: {what}"
        out = run_dir / "eval" / f"{which}-{split}-{attack}.json"
    else:
        if which == "best":
            raise UserError(f"--which best needs a run directory or a checkpoints/ckpt_*.pt file; {path} is a plain "
                            "state dict (evaluate model_best.pt directly)")
        state, description = obj, f"{path}: state dict"
        out = path.with_name(f"{path.stem}.eval-{split}-{attack}.json")
    return Loaded(unwrap_state_dict(state, source=f"checkpoint {path}"), description, run_config, out)


def _setting(value: Any, run_config: Any, key: str, default: Any) -> Any:
    if value is not None:
        return value
    if run_config is not None:
        found = OmegaConf.select(run_config, key, default=None)
        if found is not None:
            return found
    return default


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation described by the parsed command line; returns the JSON document (also written)."""
    if args.samples is not None and args.samples < 1:
        raise UserError(f"--samples must be >= 1, got {args.samples}")
    if args.restarts < 1 or args.batch_size < 1 or any(s < 1 for s in args.steps):
        raise UserError("--restarts, --batch-size and --steps must be >= 1")
    if args.attack == "autoattack":
        require_torchattacks()
    loaded = load(args.checkpoint, args.which, args.split, args.attack)
    layout = detect_layout(loaded.state)
    model: PreActResNet18 = load_official_checkpoint(loaded.state)
    bad = [b for b in args.branch if not 0 <= b < model.num_branches]
    if bad:
        raise UserError(f"branch {bad[0]} does not exist: the model has branches 0..{model.num_branches - 1}")
    rc = loaded.run_config
    data = _setting(args.data, rc, "data.name", "cifar10")
    root = _setting(args.data_root, rc, "data.root", os.environ.get("SABN_DATA", "data"))
    image_size = int(_setting(args.image_size, rc, "data.image_size", 32))
    if args.split == "val":
        splits = build_splits(data, str(root), image_size, int(_setting(args.val_size, rc, "train.val_size", 5000)),
                              int(_setting(args.split_seed, rc, "train.split_seed", 10)))
        info, described, dataset = splits.info, splits.description, splits.val
    else:  # the test split needs no validation split (and works with any training-set size)
        dataset = build_dataset(data, str(root), "test", False, image_size=image_size)
        info, described = dataset.info, f"{dataset.info.name}: {len(dataset)} test"
    if info.num_classes != model.num_classes or info.channels != layout["in_channels"]:
        raise UserError(f"the checkpoint is for {model.num_classes} classes and {layout['in_channels']} channels but "
                        f"{info.name} has {info.num_classes} and {info.channels}; pass --data")
    dataset = first(dataset, args.samples)
    settings = PGDSettings(float(_setting(args.eps, rc, "eval.eps", 8 / 255)),
                           float(_setting(args.step_size, rc, "eval.step_size", 2 / 255)),
                           random_start=not args.no_random_start, restarts=args.restarts)
    device = select_device(OmegaConf.create({"name": args.device, "amp": "none", "index": 0}), DistEnv())
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=False)
    values = evaluate_branches(
        model.to(device), loader, branches=args.branch, pgd_steps=args.steps if args.attack == "pgd" else [],
        settings=settings, device=device, seed=args.seed,
        autoattack_branches=args.branch if args.attack == "autoattack" else (), num_classes=model.num_classes)

    base = {"checkpoint": loaded.description, "split": f"{info.name} {args.split}", "samples": len(dataset),
            "data": described}
    metrics = {}
    for name, value in values.items():
        kind, branch = name.split("_acc_")
        proto = {**base, "branch": int(branch[1:]) if model.is_conditional else NO_BRANCHES_NOTE}
        if kind == "clean":
            proto.update(attack="none", bn_mode="eval (running statistics)")
        elif kind == "autoattack":
            proto.update(autoattack_protocol(settings.eps))
        else:
            proto.update(settings.describe(int(kind[3:])))
        metrics[name] = Metric(value, proto)
    doc = {"checkpoint": loaded.description, "layout": layout, "device": str(device),
           "metrics": {k: asdict(m) for k, m in metrics.items()}}
    out = Path(args.out) if args.out else loaded.default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(table(values, args.branch, model, loaded.description, base, settings, args.attack))
    print(f"(written to {out})")
    return doc


def table(values: dict[str, float], branches: list[int], model: PreActResNet18, description: str,
          base: dict[str, Any], settings: PGDSettings, attack: str) -> str:
    """A Markdown table: one row per branch, one column per evaluation."""
    kinds = list(dict.fromkeys(name.split("_acc_")[0] for name in values))
    heads = {"clean": "clean"} | {k: f"PGD-{k[3:]}" for k in kinds if k.startswith("pgd")} | {"autoattack": "AutoAttack"}
    lines = [f"{description} (norm={model.norm}, width {model.base_width}, {model.num_classes} classes)",
             f"{base['split']}, {base['samples']} images; accuracy %"
             + ("" if attack == "none" else f"; ε = {settings.eps:.5g} ({settings.eps * 255:.3g}/255)")
             + (f", PGD step {settings.step_size:.5g}, {'random start' if settings.random_start else 'no random start'},"
                f" {settings.restarts} restart(s)" if attack == "pgd" else ""),
             "", "| branch | " + " | ".join(heads[k] for k in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for b in branches:
        cells = [f"{values[f'{k}_acc_b{b}']:.2f}" for k in kinds]
        lines.append(f"| {b} ({'clean' if b == 0 else 'adversarial' if b == 1 else 'other'}) | " + " | ".join(cells) + " |")
    if not model.is_conditional:
        lines.append(NO_BRANCHES_NOTE)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        evaluate(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
