"""Shared settings and fixtures for the GAN tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def stand_in_inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labelled stand-in for the Inception weights (random weights, BN recalibrated), under a name of its own."""
    from tasks.gan.inception import save_stand_in

    return save_stand_in(tmp_path_factory.mktemp("inception") / "stand_in_fid_inception.pth", seed=0, batch=4)
