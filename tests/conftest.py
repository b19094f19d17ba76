"""Shared fixtures.  Real-data tests use ../shared/data and skip with a message when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

import quantedge

# The test command is a gate: property tests draw the same examples on every run (derandomize), so a
# failure is reproducible and never depends on luck.  QUANTEDGE_HYPOTHESIS=explore draws fresh random
# examples to hunt for new failures (worth running now and then; what it finds becomes a test).
settings.register_profile("gate", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("explore" if os.environ.get("QUANTEDGE_HYPOTHESIS") == "explore" else "gate")

SHARED_DATA = quantedge.SHARED_DATA
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the real-data folder; skips (with the reason) when it is not present."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found (set QUANTEDGE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES
