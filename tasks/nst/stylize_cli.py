"""The stylize command: ``python -m tasks.nst.stylize content=... style=... [key=value ...]``.

Keys (``key=value``, any order; booleans true/false):

* ``content`` — an image file or a folder of images (searched recursively).
* ``style`` — an image file, a folder (every content × every style), or ``a.jpg,b.jpg`` (one output mixing the
  styles with ``style_weights``, equal weights if none). For a ``sain`` checkpoint: style ids, e.g. ``style=0,3``.
* ``style_weights`` — e.g. ``1,2`` (floats allowed; normalised to sum 1).
* ``alpha`` — content–style trade-off in [0, 1] (1 = full style). ``preserve_color`` — keep the content's colours.
* ``size`` / ``style_size`` — shorter side of the content / style images before stylising (0 = keep; default 512,
  as pytorch-AdaIN's ``test.py``); ``crop=true`` then takes the central square. The output has the content's size.
* ``out`` — a folder (default ``output``; files ``<content>_stylized_<style><ext>`` or
  ``<content>_interpolation<ext>``), or an image file name when there is exactly one output. ``ext`` = ``.png``.
* Weights, one of: ``ckpt=<run dir or ckpt_*.pt>`` of this project's training (its encoder settings come from the
  run's ``config.yaml``); ``ckpt=<ckpt_iter_*.pth.tar>`` of the official SaBN NST training; or
  ``decoder=<decoder.pth>`` (+ ``saadain=<file>`` for SaAdaIN) in the official layouts. ``vgg=<vgg_normalised.pth>``
  gives the encoder (official files; or where a project run's VGG file lives now). Without any VGG file the encoder
  is the seeded random stand-in and the outputs are not meaningful stylisations.
* ``device`` = auto | cpu | cuda.

Every image written gets a line in ``captions.txt`` beside it (inputs, settings, weights and the encoder, so an
output of the stand-in encoder says so). Errors are one line on stderr with exit status 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from tasks.common.checkpoint import CheckpointManager, load_file
from tasks.common.errors import CheckpointError, UserError

from .data import find_images
from .networks import (
    EncoderInfo,
    StyleTransferNet,
    build_style_net,
    load_official_checkpoint,
    load_saadain,
    read_state_dict,
)
from .stylize import load_image, save_image, stylize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class StylizeArgs:
    content: str | None = None
    style: str | None = None
    style_weights: str | None = None
    alpha: float = 1.0
    preserve_color: bool = False
    size: int = 512
    style_size: int = 512
    crop: bool = False
    out: str = "output"
    ext: str = ".png"
    ckpt: str | None = None
    decoder: str | None = None
    saadain: str | None = None
    vgg: str | None = None
    device: str = "auto"


def _convert(key: str, raw: str, kind: Any) -> Any:
    optional = isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)
    if optional:
        if raw.lower() in ("null", "none", ""):
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is bool:
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise UserError(f"{key}={raw}: expected true or false")
    try:
        return kind(raw)
    except ValueError:
        raise UserError(f"{key}={raw}: expected {kind.__name__}") from None


def parse_args(argv: list[str]) -> StylizeArgs:
    """``key=value`` arguments into :class:`StylizeArgs` (one-line errors naming the key)."""
    hints = typing.get_type_hints(StylizeArgs)
    names = [f.name for f in dataclasses.fields(StylizeArgs)]
    values: dict[str, Any] = {}
    for arg in argv:
        key, sep, raw = arg.partition("=")
        if not sep:
            raise UserError(f"arguments are key=value, got {arg!r}; keys: {', '.join(names)}")
        if key not in names:
            hint = difflib.get_close_matches(key, names, n=1)
            fix = f" — did you mean {hint[0]!r}?" if hint else f"; keys: {', '.join(names)}"
            raise UserError(f"unknown key {key!r}{fix}")
        values[key] = _convert(key, raw, hints[key])
    args = StylizeArgs(**values)
    for key in ("content", "style"):
        if not getattr(args, key):
            raise UserError(f"{key}=<file or folder> is required")
    if not 0.0 <= args.alpha <= 1.0:
        raise UserError(f"alpha={args.alpha}: must lie in [0, 1]")
    if args.size < 0 or args.style_size < 0:
        raise UserError("size and style_size must be >= 0 (0 keeps the original size)")
    if args.crop and not args.size:
        raise UserError("crop=true needs size > 0 (the side of the central square)")
    if not args.ext.startswith("."):
        args.ext = "." + args.ext
    return args


# -- the network -----------------------------------------------------------------------------------------------


def _device(name: str) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"device={name}: choose auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda was asked for but no CUDA device is visible; use device=cpu")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def _project_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """(checkpoint file, its run config) for a run directory or a ``ckpt_*.pt`` inside one."""
    if path.is_dir():
        ckpts = CheckpointManager(path / "checkpoints", "").paths()
        if not ckpts:
            raise CheckpointError(f"no checkpoints under {path / 'checkpoints'} (is {path} a run directory of "
                                  "python -m tasks.nst?)")
        path, run_dir = ckpts[-1], path
    else:
        run_dir = path.parent.parent
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise CheckpointError(f"{config} not found: a project checkpoint needs its run's config.yaml "
                              "(keep the checkpoints/ folder inside its run directory)")
    return path, yaml.safe_load(config.read_text())


def _from_project(ckpt: Path, cfg: dict[str, Any], state: dict[str, Any], vgg: str | None) -> StyleTransferNet:
    norm, model, norm_cfg = cfg["norm"]["name"], cfg["model"], cfg["norm"]
    trained_vgg = model.get("vgg_path")
    if trained_vgg is None and vgg is not None:
        raise UserError(f"{ckpt} was trained with the random stand-in encoder (seed {model['stand_in_seed']}); "
                        "its decoder only fits that encoder: leave out vgg=")
    objects = state["objects"]
    num_styles = objects["style_norm"]["embed.weight"].shape[0] if norm == "sain" else None
    kwargs: dict[str, Any] = {"eps": float(norm_cfg["eps"])}
    if norm in ("saadain", "sain"):
        kwargs["shared_init_std"] = float(norm_cfg["shared_init_std"])
    net = build_style_net(norm, vgg_path=vgg or trained_vgg, seed=int(model["stand_in_seed"]),
                          num_styles=num_styles, norm_kwargs=kwargs)
    for name in ("decoder", "style_norm"):
        try:
            getattr(net, name).load_state_dict(objects[name])
        except (KeyError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt}: cannot load {name!r} ({str(e).strip().splitlines()[0][:160]})") from e
    return net


def load_network(args: StylizeArgs) -> StyleTransferNet:
    """The network from ``ckpt=`` (project run or official training checkpoint) or ``decoder=`` (+ ``saadain=``)."""
    if args.ckpt and args.decoder:
        raise UserError("give either ckpt=... or decoder=..., not both")
    if args.ckpt:
        path = Path(args.ckpt).expanduser()
        if path.is_dir() or path.suffix == ".pt":
            if not path.exists():
                raise CheckpointError(f"checkpoint not found: {path} (check the path)")
            ckpt, cfg = _project_checkpoint(path)
            state = load_file(ckpt, "checkpoint")
            if not isinstance(state, dict) or "objects" not in state:
                raise CheckpointError(f"{ckpt} is not a checkpoint of python -m tasks.nst")
            if args.saadain:
                raise UserError("saadain= only goes with official decoder files; a project checkpoint holds it")
            return _from_project(ckpt, cfg, state, args.vgg)
        fix = "pass a ckpt_iter_*.pth.tar of the official NST training, or a run directory of this project"
        state = read_state_dict(path, "NST checkpoint", fix)
        net = build_style_net("saadain" if "saadain_state_dict" in state else "adain", vgg_path=args.vgg)
        load_official_checkpoint(net, state)
        return net
    if not args.decoder:
        raise UserError("say which weights to use: ckpt=<run dir or checkpoint> or decoder=<decoder.pth>")
    net = build_style_net("saadain" if args.saadain else "adain", vgg_path=args.vgg, decoder_path=args.decoder)
    if args.saadain:
        load_saadain(net, args.saadain)
    return net


# -- inputs and outputs ----------------------------------------------------------------------------------------


def _files(spec: str, what: str) -> list[Path]:
    path = Path(spec).expanduser()
    if path.is_dir():
        return find_images(path, what)
    if not path.is_file():
        raise UserError(f"{what}={spec}: no such file or folder")
    return [path]


def _style_ids(spec: str, num_styles: int) -> list[int]:
    try:
        ids = [int(s) for s in spec.split(",")]
    except ValueError:
        raise UserError(f"a sain network stylises with the ids of its training styles: style=<id>[,<id>...] "
                        f"with ids 0..{num_styles - 1}, got style={spec}") from None
    bad = [i for i in ids if not 0 <= i < num_styles]
    if bad:
        raise UserError(f"style ids {bad} out of range 0..{num_styles - 1}")
    return ids


def _load(path: Path, size: int, crop: bool) -> torch.Tensor:
    try:
        return load_image(path, size or None, crop)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from e


def _jobs(args: StylizeArgs, net: StyleTransferNet) -> list[tuple[list[str], list[Any], str]]:
    """(style names, styles (file paths or ids), output stem suffix) per output for one content image."""
    if net.conditional:
        ids = _style_ids(args.style, net.num_styles or 0)
        if len(ids) > 1:
            return [([f"style{i}" for i in ids], ids, "interpolation")]
        return [([f"style{ids[0]}"], ids, f"stylized_style{ids[0]}")]
    if "," in args.style:
        files = [p for s in args.style.split(",") for p in _files(s, "style")]
        return [([p.name for p in files], files, "interpolation")]
    return [([p.name], [p], f"stylized_{p.stem}") for p in _files(args.style, "style")]


def run(args: StylizeArgs) -> tuple[list[Path], EncoderInfo]:
    """Stylise every content image with the styles of ``args``; returns the files written and where the
    encoder's weights came from."""
    device = _device(args.device)
    net = load_network(args).to(device).eval()
    if net.conditional and args.preserve_color:
        raise UserError("preserve_color recolours style images; a sain network stylises with style ids")
    contents = _files(args.content, "content")
    jobs = _jobs(args, net)
    weights = [float(w) for w in args.style_weights.split(",")] if args.style_weights else None
    if weights is not None and any(len(styles) != len(weights) for _, styles, _ in jobs):
        raise UserError(f"style_weights has {len(weights)} values for {len(jobs[0][1])} styles")
    out = Path(args.out).expanduser()
    to_file = out.suffix.lower() in IMAGE_SUFFIXES
    if to_file and len(contents) * len(jobs) != 1:
        raise UserError(f"out={args.out} names one file but there are {len(contents) * len(jobs)} outputs; "
                        "give a folder")
    style_cache: dict[Path, torch.Tensor] = {}
    written = []
    for content_path in contents:
        content = _load(content_path, args.size, args.crop).to(device)
        for names, styles, suffix in jobs:
            if not net.conditional:
                for p in styles:
                    if p not in style_cache:
                        style_cache[p] = _load(p, args.style_size, args.crop)
                styles = [style_cache[p].to(device) for p in styles]
            try:
                image = stylize(net, content, styles, weights, args.alpha, args.preserve_color)
            except ValueError as e:
                raise UserError(str(e)) from e
            path = out if to_file else out / f"{content_path.stem}_{suffix}{args.ext}"
            save_image(image, path)
            _caption(path, content_path, names, weights, args, net)
            written.append(path)
    return written, net.encoder_info


def _caption(path: Path, content: Path, styles: list[str], weights: list[float] | None, args: StylizeArgs,
             net: StyleTransferNet) -> None:
    mix = f" weights {','.join(f'{w:g}' for w in weights)}" if weights else ""
    weights_from = args.ckpt or f"decoder {args.decoder}" + (f" + saadain {args.saadain}" if args.saadain else "")
    line = (f"{path.name}: content {content.name}; style {' + '.join(styles)}{mix}; alpha {args.alpha:g}; "
            f"preserve_color {str(args.preserve_color).lower()}; norm {net.norm}; weights {weights_from}; "
            f"encoder {net.encoder_info.label}\n")
    with open(path.parent / "captions.txt", "a") as f:
        f.write(line)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return 0
    try:
        args = parse_args(argv)
        written, encoder = run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    captions = sorted({str(p.parent / "captions.txt") for p in written})
    print(f"wrote {len(written)} image(s) to {written[0].parent}; captions in {', '.join(captions)}")
    if encoder.stand_in:
        print(f"warning: encoder = {encoder.label}: these images are not meaningful stylisations "
              "(pass vgg=<vgg_normalised.pth> and weights trained with it)", file=sys.stderr)
    return 0
