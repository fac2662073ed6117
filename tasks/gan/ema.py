"""Exponential moving average of the generator, built on ``torch.optim.swa_utils.AveragedModel``.

Parameters: ``avg ← decay · avg + (1 − decay) · p`` after every generator step (``get_ema_multi_avg_fn``). The
average starts from the generator as it is when the EMA is created — the official SaBN code's
``gen_avg_param = copy_params(gen_net)`` — so the first update already averages (``AveragedModel`` alone would
hard-copy on its first update). Steps below ``start_step`` hard-copy instead (BigGAN-PyTorch's ``ema_start``:
decay 0 for the first 1000 iterations).

Buffers (BN running statistics, spectral-norm u/v) — an explicit choice, recorded with every evaluation:

* ``"live"`` (official SaBN/SNGAN/AutoGAN protocol): only parameters are averaged; the EMA copy uses the *live*
  generator's buffers. They are copied at every update and, because the live generator keeps updating its BN
  statistics between updates (its train-mode forwards during D steps), again by :meth:`GeneratorEMA.for_eval`
  right before an evaluation.
* ``"ema"`` (BigGAN-PyTorch's ``utils.ema``, which averages the whole state dict): buffers are averaged with the
  same decay as the parameters (integer buffers such as ``num_batches_tracked`` are averaged then truncated;
  they only matter for ``momentum=None`` BNs).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

BufferPolicy = Literal["live", "ema"]
BUFFER_POLICIES = ("live", "ema")


class GeneratorEMA(AveragedModel):
    """EMA copy of a generator; ``ema.module`` is the averaged generator (official state-dict layout), and
    ``ema(z, y)`` runs it.

    >>> ema = GeneratorEMA(G, decay=0.999, buffers="live")
    >>> ...  # after each G optimiser step:
    >>> ema.update(G, step)
    >>> G_eval = ema.for_eval(G)            # eval mode, live BN statistics copied in
    """

    def __init__(
        self, generator: nn.Module, decay: float = 0.999, buffers: BufferPolicy = "live", start_step: int = 0
    ) -> None:
        if buffers not in BUFFER_POLICIES:
            raise ValueError(f"buffers must be one of {', '.join(BUFFER_POLICIES)}, got {buffers!r}")
        super().__init__(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=buffers == "ema")
        self.decay = float(decay)
        self.buffer_policy: BufferPolicy = buffers
        self.start_step = int(start_step)
        # The deep copy made above is the starting average, so the first update averages with it.
        self.n_averaged.fill_(1)
        # The average is never trained; keeping it out of autograd also keeps it out of any optimiser by mistake.
        self.module.requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int | None = None) -> None:
        """Fold the live ``generator`` into the average (call after each generator optimiser step).

        ``step`` (the generator step just taken) below ``start_step`` makes this update a hard copy.
        """
        if step is not None and step < self.start_step:
            # AveragedModel copies instead of averaging when nothing has been averaged yet.
            self.n_averaged.zero_()
        self.update_parameters(generator)

    @torch.no_grad()
    def sync_buffers(self, generator: nn.Module) -> None:
        """Copy every buffer of the live ``generator`` (BN statistics, SN u/v) into the averaged copy."""
        own = dict(self.module.named_buffers())
        live = dict(generator.named_buffers())
        if own.keys() != live.keys():
            raise ValueError("sync_buffers: the live generator's buffers do not match the EMA copy's")
        for name, buf in own.items():
            buf.copy_(live[name])

    def for_eval(self, generator: nn.Module | None = None) -> nn.Module:
        """The averaged generator in eval mode, ready for sampling.

        With ``buffers="live"`` the live ``generator``'s buffers are copied in first (required); with ``"ema"``
        the averaged buffers are used and ``generator`` is ignored. BN then uses these running statistics; for
        BigGAN-PyTorch's batch-statistics protocol call ``.train()`` on the result.
        """
        if self.buffer_policy == "live":
            if generator is None:
                raise ValueError("buffers='live' evaluates with the live generator's statistics: pass the generator")
            self.sync_buffers(generator)
        return self.module.eval()
