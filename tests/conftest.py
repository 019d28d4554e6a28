"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

#: ``../shared`` relative to the project root: real data sets (present in CI, not in a user's
#: checkout, where tests that need it skip; in CI their absence is a failure).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"real data sets not found at {SHARED_DATA}; CI must provide ../shared")
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


#: one seed per session, printed in the report header: rerun a failure with RNNKIT_TEST_SEED=N
SEED = int(os.environ.get("RNNKIT_TEST_SEED", torch.initial_seed() % (2**31)))


def pytest_report_header(config) -> str:
    return f"rnnkit torch seed: {SEED} (replay with RNNKIT_TEST_SEED={SEED})"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if exitstatus:  # -q hides the header; a failure must still say how to replay it
        terminalreporter.write_line(f"rnnkit torch seed: {SEED} (replay with "
                                    f"RNNKIT_TEST_SEED={SEED})")


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts torch's generator from the session's seed: fresh draws each session,
    reproducible with ``RNNKIT_TEST_SEED``."""
    torch.manual_seed(SEED)
