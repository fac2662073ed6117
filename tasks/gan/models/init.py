"""Weight initialisation schemes of the official code bases.

``xavier_uniform`` / ``normal`` / ``orth`` — the SaBN (SNGAN/AutoGAN) ``weights_init`` with ``--init_type``; the
training scripts use ``xavier_uniform``:

* every ``Conv2d`` weight (the spectrally normalised ones through ``weight_orig``, which is what the official
  in-place init of ``m.weight.data`` reaches before the first forward): xavier_uniform gain 1 / N(0, 0.02) /
  orthogonal; conv biases keep PyTorch's default;
* every plain ``BatchNorm2d`` with an affine: weight N(1, 0.02), bias 0;
* ``Linear`` and ``Embedding`` (G's ``l1``, D's ``l5``/``l_y``): PyTorch's default, untouched.

``N02`` — BigGAN-PyTorch's ``--G_init N02 --D_init N02``: every ``Conv2d``, ``Linear`` and ``Embedding`` weight
(incl. spectrally normalised ones and BigGAN's ccbn ``gain``/``bias`` embeddings) ~ N(0, 0.02); biases and
plain BN untouched (BigGAN's BN starts at gain 1, bias 0).

Under every scheme a ``sabn`` conditional layer (:class:`sabn.ConditionalNorm`, incl. BigGAN's ccbn) is
re-initialised by its own ``reset_parameters()`` — which draws its affines from its ``init_std`` /
``shared_init_std`` (default N(1, 0.02) scales / 0 shifts for CCBN/SaBN = the official SaBN init, incl. the shared
affine; N(0, 0.02) gains for BigGAN's ccbn = N02) — and the scheme does not descend into it. This way norm
keyword arguments such as ``init_std`` are honoured instead of being overwritten.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sabn import ConditionalNorm

INIT_SCHEMES = ("xavier_uniform", "normal", "orth", "N02")


def _weight(m: nn.Module) -> Tensor:
    # torch.nn.utils.spectral_norm keeps the trainable weight as `weight_orig`; `weight` is recomputed per forward.
    orig = getattr(m, "weight_orig", None)
    return orig if isinstance(orig, Tensor) else m.weight


def _init_conv(w: Tensor, scheme: str) -> None:
    if scheme == "xavier_uniform":
        nn.init.xavier_uniform_(w, gain=1.0)
    elif scheme == "orth":
        nn.init.orthogonal_(w)
    else:  # "normal" and "N02"
        nn.init.normal_(w, 0.0, 0.02)


def _visit(m: nn.Module, scheme: str) -> None:
    if isinstance(m, ConditionalNorm):
        m.reset_parameters()
        return  # its inner BN / embeddings are part of its own init
    if isinstance(m, nn.Conv2d):
        _init_conv(_weight(m), scheme)
    elif isinstance(m, nn.BatchNorm2d):
        if scheme != "N02" and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.Linear, nn.Embedding)) and scheme == "N02":
        nn.init.normal_(_weight(m), 0.0, 0.02)
    for child in m.children():
        _visit(child, scheme)


def init_weights(model: nn.Module, scheme: str = "xavier_uniform") -> nn.Module:
    """Initialise ``model`` in place with one of :data:`INIT_SCHEMES` (see the module docstring); returns it."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
    with torch.no_grad():
        _visit(model, scheme)
    return model
