"""Session-wide fixtures and settings shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("DSE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The checksummed MNIST / Fashion-MNIST copies beside the checkout (skip when absent)."""
    if not (SHARED_DATASETS / "mnist").is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS} (set DSE_SHARED_DATASETS)")
    return SHARED_DATASETS
