"""Loading generator weights: official SaBN model-zoo files, official training checkpoints and our own.

Accepted inputs (a path or an already loaded object):

* a plain generator state dict (the zoo's ``*_gen_state_dict.pth``);
* a dict wrapping one under a known key — official training checkpoints hold ``avg_gen_state_dict`` (EMA weights
  with the live G's BN statistics: what the official code evaluates) and ``gen_state_dict``; the EMA entry is
  preferred, ``key=`` picks another. Other common names (``G_ema``, ``ema``, ``generator``, ``G``,
  ``state_dict`` ...) and the suite's ``{"objects": {...}}`` checkpoint format are searched too;
* a ``GeneratorEMA`` / ``AveragedModel`` state dict (``module.*`` + ``n_averaged``) or a ``DataParallel`` one
  (``module.*``): the prefix is stripped.

Files are read with ``torch.load(weights_only=True, map_location="cpu")``. Every problem — missing or unreadable
file, no state dict inside, keys or shapes that do not fit the model — raises :class:`CheckpointError` with a
one-line message.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from tasks.common.checkpoint import is_state_dict, load_file, state_dict_mismatches
from tasks.common.errors import CheckpointError

#: Where wrapped generator weights are looked for, in order of preference (EMA first).
GENERATOR_KEYS = (
    "avg_gen_state_dict", "gen_ema", "G_ema", "ema", "generator_ema",
    "gen_state_dict", "generator", "G", "netG", "state_dict", "model",
)


def find_generator_state_dict(obj: Any, key: str | None = None,
                              where: str = "the given checkpoint") -> tuple[str | None, Mapping[str, Tensor]]:
    """(the entry it was found under or None for a plain state dict, the generator state dict) of a loaded
    checkpoint object; ``key`` names the entry to use."""
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            raise CheckpointError(f"{where} has no entry {key!r}")
        if not is_state_dict(obj[key]):
            raise CheckpointError(f"{where}[{key!r}] is not a state dict of tensors")
        return key, obj[key]
    if is_state_dict(obj):
        return None, obj
    if isinstance(obj, Mapping):
        containers = [obj]
        if isinstance(obj.get("objects"), Mapping):  # the suite's checkpoint format
            containers.append(obj["objects"])
        for container in containers:
            for name in GENERATOR_KEYS:
                if is_state_dict(container.get(name)):
                    return name, container[name]
        keys = ", ".join(map(str, list(obj)[:12]))
        raise CheckpointError(f"{where} holds no generator state dict (top-level keys: {keys}); pass key=...")
    raise CheckpointError(f"{where} holds a {type(obj).__name__}, not a state dict")


def _strip_prefix(sd: Mapping[str, Tensor], model: nn.Module) -> Mapping[str, Tensor]:
    """Drop ``AveragedModel``'s ``n_averaged`` and a ``module.`` prefix shared by every key, unless the model's own
    keys carry it."""
    keys = [k for k in sd if k != "n_averaged"]
    model_has_prefix = any(k.startswith("module.") for k in model.state_dict())
    if model_has_prefix or not keys or not all(k.startswith("module.") for k in keys):
        return sd
    out: OrderedDict[str, Tensor] = OrderedDict((k[len("module."):], sd[k]) for k in keys)
    meta = getattr(sd, "_metadata", None)
    if meta is not None:
        # Keep the per-module version info (spectral norm, BN) under the stripped module names.
        new_meta: OrderedDict[str, Any] = OrderedDict()
        for name, info in meta.items():
            if name == "module":
                new_meta[""] = info
            elif name.startswith("module."):
                new_meta[name[len("module."):]] = info
        out._metadata = new_meta  # type: ignore[attr-defined]
    return out


def _examples(items: list[str], n: int = 3) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _check_fit(sd: Mapping[str, Tensor], model: nn.Module, where: str) -> None:
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected, wrong = state_dict_mismatches(sd, own)
    shapes = [f"{k} {tuple(sd[k].shape)} vs model {own[k]}" for k in wrong]
    problems = []
    if missing:
        problems.append(f"missing keys: {_examples(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_examples(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_examples(shapes, 2)}")
    if problems:
        raise CheckpointError(
            f"{where} does not fit {type(model).__name__} ({'; '.join(problems)}); "
            "check the model name, norm, n_classes and widths"
        )


def load_generator_checkpoint(
    source: str | os.PathLike | Mapping[str, Any], model: nn.Module, key: str | None = None
) -> nn.Module:
    """Load generator weights from ``source`` (a path or a loaded dict, see the module docstring) into ``model``
    with ``strict=True``; returns ``model``. ``key`` names the entry of a wrapping dict to use."""
    if isinstance(source, (str, os.PathLike)):
        where = str(source)
        obj = load_file(source, "generator checkpoint")
    else:
        where = "the given checkpoint"
        obj = source
    sd = _strip_prefix(find_generator_state_dict(obj, key, where)[1], model)
    _check_fit(sd, model, where)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:  # e.g. a dtype that cannot be copied; keys and shapes were checked above
        raise CheckpointError(f"cannot load {where} into {type(model).__name__}: {str(e).splitlines()[0]}") from e
    return model
