"""Measuring the memory of a training step.

- :func:`peak_step_memory`: on CUDA the peak *allocated* bytes during the step above what was allocated before it
  (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``); on CPU (Linux) the peak *resident* set
  size during the step above the resident size before it (the kernel's high-water mark ``VmHWM``, reset through
  ``/proc/self/clear_refs``).
- :class:`SavedTensorBytes`: the bytes autograd keeps for backward (activations), counted once per storage and
  without parameters — device-independent and exact, the quantity a normalisation scheme changes.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not in /proc/self/status")
    return int(match.group(1))


def cpu_peak_supported() -> bool:
    return sys.platform.startswith("linux") and _STATUS.exists() and _CLEAR_REFS.exists()


_M_MMAP_THRESHOLD = -3
_PRECISE = False


def precise_cpu_memory(enabled: bool = True) -> bool:
    """glibc only: serve allocations of 64 KiB and more with mmap (``enabled``), so that every live tensor shows up
    in the resident size and is returned to the OS when freed; or go back to heap-served allocations (threshold
    32 MiB, where glibc's own adaptive threshold ends up). Returns whether precise mode is on.

    Without it, memory freed by earlier steps stays in malloc's heap and is reused silently, so the resident size
    barely moves during a measured step. Turn it on before the first training step (freed heap memory is reused even
    after the switch) and off after the measurement: mmap-served tensors cost page faults on every allocation.
    """
    global _PRECISE
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024 if enabled else 32 * 1024 * 1024))
    except (OSError, AttributeError):
        ok = False
    _PRECISE = ok and enabled
    return _PRECISE


def peak_step_memory(step: Callable[[], Any], device: torch.device) -> dict[str, Any]:
    """Run ``step()`` once and return ``{"peak_mb": ..., "method": ...}`` (extra memory used at the peak)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        return {"peak_mb": peak / 2**20, "method": "CUDA peak allocated bytes during the step minus those before it"}
    if not cpu_peak_supported():
        step()
        return {"peak_mb": None, "method": "unavailable (CPU peak RSS needs Linux /proc)"}
    _CLEAR_REFS.write_text("5")  # resets VmHWM to the current resident size
    before = _status_kb("VmRSS")
    step()
    peak = _status_kb("VmHWM") - before
    how = "CPU peak resident set size during the step minus RSS before it (VmHWM"
    how += ", allocations >= 64 KiB via mmap)" if _PRECISE else "; approximate: freed heap memory is reused unseen)"
    return {"peak_mb": peak / 1024, "method": how}


class SavedTensorBytes:
    """Context manager counting the bytes autograd saves for backward inside it (each storage once, parameters and
    buffers excluded); read ``.bytes`` afterwards. Wrap the forward pass of a real training step with it."""

    def __init__(self, model: nn.Module) -> None:
        self._own = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self._own |= {b.untyped_storage().data_ptr() for b in model.buffers()}
        self._seen: dict[int, int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self._own and ptr not in self._seen:
            self._seen[ptr] = storage.nbytes()
        return t

    @property
    def bytes(self) -> int:
        return sum(self._seen.values())

    def __enter__(self) -> SavedTensorBytes:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
