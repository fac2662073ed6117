"""Shared settings of the adversarial-task tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def single_cpu_thread() -> Iterator[None]:
    # The models here are tiny: a second intra-op thread brings nothing, and on a shared 2-core machine OpenMP
    # threads waiting for a busy core made these tests 3x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
