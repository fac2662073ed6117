"""Shared settings for the GAN tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_cpu_thread() -> Iterator[None]:
    """The models here are tiny: intra-op threads only add overhead, and on a shared 2-core machine they
    oversubscribe it. Restored afterwards so other test folders keep their setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
