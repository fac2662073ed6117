"""PreAct ResNet-18 of the official adversarial-training code, with BN / AuxBN / SaAuxBN and an explicit branch.

Architecture (official ``Adv/`` code, kuangliu style): input normalisation inside the model (module ``normal``,
buffers ``mean``/``std``; ImageNet statistics by default) so that attacks work on images in [0, 1]; a 3×3 stem
convolution without BN; four stages of two pre-activation basic blocks (64/128/256/512 channels at
``base_width=64``, strides 1/2/2/2) whose 1×1 projection shortcut is applied to the *pre-activated* input; **no**
final BN-ReLU; global average pooling (adaptive, so any input size works; at 32×32 it is the official
``avg_pool2d(4)``); a linear classifier.

Norm variants (``norm=``): ``bn`` (plain ``nn.BatchNorm2d``, ignores the branch), ``auxbn`` (one BN per branch) and
``saauxbn`` (per-branch statistics, shared affine, per-branch affines). Branch 0 is the clean branch, 1 the
adversarial one. The active branch is model state: set ``model.branch = 1`` or use ``with model.use_branch(1):``;
``model(x)`` then runs through that branch, which is what an attack library sees.

State-dict keys and shapes are those of the official code for all three variants (``normal.mean``, ``conv1.weight``,
``layer2.0.shortcut.0.weight``, ``layer1.0.bn1.bn_list.1.running_mean``, a 3-row ``embed.weight`` for SaAuxBN …),
so official checkpoints load strictly and checkpoints written here load into the official code.
:func:`load_official_checkpoint` reads such a file with clear errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sabn
from tasks.common.checkpoint import is_state_dict, load_file, state_dict_mismatches
from tasks.common.errors import CheckpointError

#: The norm variants of the paper's adversarial experiment.
ADV_NORMS = ("bn", "auxbn", "saauxbn")
CLEAN_BRANCH = 0
ADV_BRANCH = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: (channels as a multiple of base_width, stride of the first block) per stage; two blocks per stage.
_STAGES = ((1, 1), (2, 2), (4, 2), (8, 2))
_BLOCKS_PER_STAGE = 2


class Normalize(nn.Module):
    """(x − mean) / std per channel, with ``mean``/``std`` as buffers (saved in the state dict, as officially)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or len(mean) == 0:
            raise ValueError(f"mean and std need one value per input channel, got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]))
        self.register_buffer("std", torch.tensor([float(s) for s in std]))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.numel():
            raise ValueError(f"expected images of shape (N, {self.mean.numel()}, H, W), got {tuple(x.shape)}")
        mean = self.mean.to(x.dtype).view(1, -1, 1, 1)
        std = self.std.to(x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std


def _official_saauxbn_state(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """State-dict post-hook of a SaAuxBN layer: write the official Adv layout.

    sabn keeps the shared affine as ``shared_weight``/``shared_bias`` and a K-row ``embed``; the official code keeps
    one (K+1)-row embedding whose last row is the shared affine (scales then shifts). sabn's loader reads both.
    """
    sw = state_dict.pop(prefix + "shared_weight")
    sb = state_dict.pop(prefix + "shared_bias")
    key = prefix + "embed.weight"
    shared_row = torch.cat([sw, sb]).unsqueeze(0)
    # Reassigning an existing key keeps its position, so the order is the official one (statistics, then embed).
    state_dict[key] = torch.cat([state_dict[key], shared_row.to(state_dict[key])], dim=0)


NormLayer = Callable[[int], nn.Module]


def _make_norm(norm: str, channels: int, num_branches: int, norm_layer: NormLayer | None = None) -> nn.Module:
    layer = sabn.build_norm(norm, channels, num_conditions=num_branches) if norm_layer is None else norm_layer(channels)
    if isinstance(layer, sabn.SandwichAuxBatchNorm2d):
        layer.register_state_dict_post_hook(_official_saauxbn_state)
    return layer


class PreActBlock(nn.Module):
    """Pre-activation basic block: relu(bn1(x)) feeds both conv1 and (when shapes change) the 1×1 shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int, norm: str, num_branches: int,
                 norm_layer: NormLayer | None = None) -> None:
        super().__init__()
        # Attribute order = official state-dict order (bn1, conv1, bn2, conv2, shortcut).
        self.bn1 = _make_norm(norm, in_planes, num_branches, norm_layer)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = _make_norm(norm, planes, num_branches, norm_layer)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 with normalisation inside and a clean (0) / adversarial (1) BN branch.

    Args:
        norm: ``"bn"``, ``"auxbn"`` or ``"saauxbn"`` (built with :func:`sabn.build_norm`).
        num_classes: size of the classifier output.
        base_width: channels of the stem and the first stage (official 64); stages use 1/2/4/8 × this.
        mean, std: per-channel input normalisation (ImageNet by default); their length sets the input channels.
        num_branches: BN branches of the conditional variants (official 2: clean, adversarial).
        norm_layer: ``f(channels) -> layer`` building every norm layer (e.g. ``tasks.common.norms.norm_factory`` of
            the ``norm`` config, to pass eps, momentum and init stds); it must build the ``norm`` variant with
            ``num_branches`` conditions. Default: ``sabn.build_norm`` with the official settings.

    The model starts on branch 0 (clean). ``forward(x)`` uses the active branch; ``forward(x, branch=b)`` runs
    this one call through branch ``b``.
    """

    def __init__(
        self,
        norm: str = "bn",
        num_classes: int = 10,
        base_width: int = 64,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        num_branches: int = 2,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        if norm not in ADV_NORMS:
            raise ValueError(f"unknown norm {norm!r} for the adversarial PreAct ResNet-18; valid: {', '.join(ADV_NORMS)}")
        if base_width < 1 or num_classes < 1 or num_branches < 1:
            raise ValueError(
                f"base_width, num_classes and num_branches must be >= 1, got {base_width}, {num_classes}, {num_branches}"
            )
        self.norm = norm
        self.num_classes = int(num_classes)
        self.base_width = int(base_width)
        self.num_branches = int(num_branches)
        self.normal = Normalize(mean, std)
        self.conv1 = nn.Conv2d(len(mean), base_width, kernel_size=3, stride=1, padding=1, bias=False)
        in_planes = base_width
        for i, (mult, stride) in enumerate(_STAGES, start=1):
            planes = base_width * mult
            blocks = []
            for b in range(_BLOCKS_PER_STAGE):
                blocks.append(PreActBlock(in_planes, planes, stride if b == 0 else 1, norm, num_branches, norm_layer))
                in_planes = planes
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.linear = nn.Linear(in_planes, num_classes)
        self._branch = CLEAN_BRANCH
        sabn.set_condition(self, CLEAN_BRANCH)

    @property
    def is_conditional(self) -> bool:
        """Whether the branch changes the computation (False for ``bn``, which accepts and ignores branches)."""
        return self.norm != "bn"

    # -- branch state ---------------------------------------------------------------------------------------------
    def _check_branch(self, branch: int) -> int:
        if isinstance(branch, bool) or not isinstance(branch, int):
            raise TypeError(f"branch must be an int, got {type(branch).__name__}")
        if not 0 <= branch < self.num_branches:
            raise ValueError(f"branch {branch} is out of range [0, {self.num_branches})")
        return branch

    @property
    def branch(self) -> int:
        """The BN branch ``model(x)`` runs through (0 clean, 1 adversarial)."""
        return self._branch

    @branch.setter
    def branch(self, branch: int) -> None:
        self._branch = self._check_branch(branch)
        sabn.set_condition(self, self._branch)

    @contextmanager
    def use_branch(self, branch: int) -> Iterator[PreActResNet18]:
        """Run the body through ``branch``; the previous branch is restored on exit, also after an exception."""
        branch = self._check_branch(branch)
        previous = self._branch
        self._branch = branch
        try:
            with sabn.conditioned(self, branch):
                yield self
        finally:
            self._branch = previous

    # -- forward ----------------------------------------------------------------------------------------------------
    def features(self, x: Tensor) -> Tensor:
        """Pooled penultimate features (N, 8·base_width) for images ``x`` in [0, 1]."""
        out = self.conv1(self.normal(x))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        # Official: avg_pool2d(4) on the 4×4 map of a 32×32 input, i.e. a global average; adaptive for other sizes.
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, x: Tensor, branch: int | None = None) -> Tensor:
        """Logits for images ``x`` in [0, 1] through ``branch`` (default: the active branch)."""
        if branch is None:
            return self.linear(self.features(x))
        with self.use_branch(branch):
            return self.linear(self.features(x))

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}, base_width={self.base_width}, num_classes={self.num_classes}, branch={self._branch}"


def build_model(norm: str, num_classes: int = 10, base_width: int = 64, **kwargs: Any) -> PreActResNet18:
    """The adversarial-training model for ``norm`` (see :class:`PreActResNet18` for the other arguments)."""
    return PreActResNet18(norm=norm, num_classes=num_classes, base_width=base_width, **kwargs)


# -- official checkpoints -------------------------------------------------------------------------------------------

#: Wrapper keys under which training scripts commonly nest the model's state dict (tried in this order).
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "objects")
_STRIP_PREFIXES = ("module.", "_orig_mod.")


def unwrap_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, Tensor]:
    """The model state dict inside a loaded checkpoint object.

    Descends through common wrapper keys (``state_dict``, ``model_state_dict``, ``model``, ``net``, ``objects``) and
    strips a ``module.`` (DataParallel/DDP) or ``_orig_mod.`` (torch.compile) prefix shared by every key.
    """
    seen = 0
    while not is_state_dict(obj):
        if not isinstance(obj, Mapping) or seen > 4:
            raise CheckpointError(f"{source} holds no state dict (got {type(obj).__name__})")
        key = next((k for k in _WRAPPER_KEYS if k in obj), None)
        if key is None:
            keys = ", ".join(sorted(str(k) for k in obj)[:8])
            raise CheckpointError(f"{source} holds no model state dict; top-level keys: {keys}")
        obj, seen = obj[key], seen + 1
    state = dict(obj)
    for prefix in _STRIP_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def read_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a model state dict from ``path`` (``torch.load(weights_only=True)`` onto the CPU), unwrapped."""
    return unwrap_state_dict(load_file(path, "checkpoint"), source=f"checkpoint {path}")


def detect_layout(state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
    """The model a PreAct ResNet-18 state dict belongs to: ``norm``, ``num_classes``, ``base_width``,
    ``in_channels`` and ``num_branches`` (2 for ``bn``, whose branches are accepted and ignored); ``None`` when it
    is not such a state dict."""
    if "conv1.weight" not in state_dict or "linear.weight" not in state_dict:
        return None
    bn = "layer1.0.bn1."
    if bn + "embed.weight" in state_dict or bn + "shared_weight" in state_dict:
        norm = "saauxbn"
    elif bn + "bn_list.0.running_mean" in state_dict:
        norm = "auxbn"
    elif bn + "running_mean" in state_dict:
        norm = "bn"
    else:
        return None
    branches = {k[len(bn + "bn_list."):].split(".")[0] for k in state_dict if k.startswith(bn + "bn_list.")}
    conv1, linear = state_dict["conv1.weight"], state_dict["linear.weight"]
    return {
        "norm": norm,
        "num_classes": int(linear.shape[0]),
        "base_width": int(conv1.shape[0]),
        "in_channels": int(conv1.shape[1]) if conv1.dim() == 4 else None,
        # A bn state dict records no branches; the official model still takes (and ignores) flags 0 and 1.
        "num_branches": len(branches) if branches else 2,
    }


def _describe(layout: Mapping[str, Any]) -> str:
    return (
        f"norm={layout['norm']!r}, base_width={layout['base_width']}, num_classes={layout['num_classes']}"
        + (f", num_branches={layout['num_branches']}" if layout["norm"] != "bn" else "")
    )


def check_fits(model: PreActResNet18, state_dict: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` (one line) unless ``state_dict`` has exactly the model's keys and shapes.

    The message names the model configuration the state dict would fit when it is a PreAct ResNet-18 of another
    variant, width or class count.
    """
    layout = detect_layout(state_dict)
    ours = {"norm": model.norm, "base_width": model.base_width, "num_classes": model.num_classes,
            "num_branches": model.num_branches}
    if layout is None:
        keys = ", ".join(list(state_dict)[:4])
        raise CheckpointError(f"{source} is not an adversarial PreAct ResNet-18 state dict (first keys: {keys})")
    if layout["norm"] != model.norm:
        raise CheckpointError(
            f"{source} has the norm={layout['norm']!r} layout but the model was built with norm={model.norm!r}; "
            f"build it with norm={layout['norm']!r} (checkpoint: {_describe(layout)})"
        )
    # Compare against the model's own state dict, i.e. the official layout (the state-dict hook included).
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if model.norm == "saauxbn" and any(k.endswith(".shared_weight") for k in state_dict):
        # sabn's native SaAuxBN layout (separate shared affine, K-row embed) loads too; check it in that form.
        expected = {}
        for k, v in model.state_dict(keep_vars=False).items():
            if k.endswith(".embed.weight"):
                c2 = v.shape[1]
                base = k[: -len("embed.weight")]
                expected[base + "shared_weight"] = (c2 // 2,)
                expected[base + "shared_bias"] = (c2 // 2,)
                expected[k] = (v.shape[0] - 1, c2)
            else:
                expected[k] = tuple(v.shape)
    missing, unexpected, wrong = state_dict_mismatches(state_dict, expected)
    if not (missing or unexpected or wrong):
        return
    hint = "" if all(layout[k] == ours[k] for k in ours) else f"; build the model with {_describe(layout)}"
    if wrong:
        k = wrong[0]
        detail = (f"{len(wrong)} shape mismatch(es), e.g. {k}: {tuple(state_dict[k].shape)} in the checkpoint, "
                  f"{expected[k]} in the model")
    elif missing:
        detail = f"{len(missing)} missing key(s), e.g. {missing[0]}"
    else:
        detail = f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}"
    raise CheckpointError(f"{source} does not fit the model ({_describe(ours)}): {detail}{hint}")


def load_official_checkpoint(
    source: str | os.PathLike | Mapping[str, Any],
    model: PreActResNet18 | None = None,
    **model_kwargs: Any,
) -> PreActResNet18:
    """Load an official (or this project's) Adv PreAct ResNet-18 checkpoint strictly and return the model.

    ``source`` is a file path or an already loaded object. Without ``model`` the model is built from the layout the
    checkpoint reveals (norm, width, classes, branches; ``model_kwargs`` such as ``mean``/``std`` are passed on —
    the saved ``normal.mean``/``normal.std`` overwrite them anyway). Raises :class:`CheckpointError` with a one-line
    message for a missing, unreadable or corrupt file or a layout that does not fit the model.
    """
    if isinstance(source, Mapping):
        name = "state dict"
        state = unwrap_state_dict(source, source=name)
    else:
        name = f"checkpoint {source}"
        state = read_checkpoint(source)
    if model is None:
        layout = detect_layout(state)
        if layout is None:
            keys = ", ".join(list(state)[:4])
            raise CheckpointError(f"{name} is not an adversarial PreAct ResNet-18 state dict (first keys: {keys})")
        in_channels = layout["in_channels"]
        if "mean" not in model_kwargs and in_channels != len(IMAGENET_MEAN):
            # Placeholders of the right length; the checkpoint's normal.mean/std replace them.
            model_kwargs = {**model_kwargs, "mean": (0.0,) * in_channels, "std": (1.0,) * in_channels}
        model = PreActResNet18(
            norm=layout["norm"], num_classes=layout["num_classes"], base_width=layout["base_width"],
            num_branches=layout["num_branches"], **model_kwargs,
        )
    check_fits(model, state, source=name)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # pragma: no cover - check_fits should have caught every mismatch
        raise CheckpointError(f"{name} does not fit the model: {str(e).splitlines()[0]}") from e
    return model
