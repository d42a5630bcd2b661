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


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance (2 CPUs, no dashboard) shared by every test marked ``ray``.

    Started on first use and shut down at the end of the session; the DSE runner finds it
    already initialized and reuses it (see ``dse.runner.cluster.connect_ray``). Workers get the
    checkout on ``PYTHONPATH`` so that trial functions defined in test modules import there.
    ``RAY_ADDRESS`` is ignored: tests never run on a developer's cluster.
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        yield ray
        return
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
