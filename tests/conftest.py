"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

#: ``../shared`` relative to the project root: real data sets (present in CI, not in a user's
#: checkout, where tests that need it skip).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (../shared/data is only in CI)")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Unit tests run small ops, where a second thread only adds synchronisation; one thread
    also keeps the suite's time steady on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """A fresh but reproducible random stream per test."""
    torch.manual_seed(torch.initial_seed() % (2**31))
