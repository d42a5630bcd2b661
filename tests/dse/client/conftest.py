"""Fixtures of the client tests: a real ``dse serve`` on a loopback port (a subprocess, the same
harness as the service's end-to-end tests), running studies on the session's Ray with the
closed-form trial function, and the study specs they submit."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.server import READ_TOKEN, WRITE_TOKEN, ServiceProcess

__all__ = ["READ_TOKEN", "WRITE_TOKEN", "grid_spec"]

INSTANT = "dse.runner.synthetic:instant_trial"
PACED = "dse.runner.synthetic:paced_trial"


def grid_spec(name: str = "client-grid", **changes: Any) -> dict[str, Any]:
    """A 3 × 3 grid over lr and the hidden widths: accuracy (max) vs train time (min), under a
    parameter-count constraint that one configuration violates."""
    data: dict[str, Any] = {
        "name": name,
        "labels": {"suite": "client"},
        "base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn", "hidden": [8]},
                 "training": {"epochs": 2, "lr": 0.05}},
        "parameters": [
            {"name": "lr", "target": "training.lr", "type": "discrete", "values": [0.01, 0.05, 0.2]},
            {"name": "hidden", "target": "model.hidden", "type": "categorical",
             "values": [[8], [32], [64, 32]]},
        ],
        "objectives": [{"metric": "accuracy", "goal": "max"}, {"metric": "train_time_s", "goal": "min"}],
        "constraints": ["n_params <= 5000"],
        "searcher": {"type": "grid"},
        "budget": {"max_concurrent_trials": 2},
    }
    data.update(copy.deepcopy(changes))
    return data


def start_service(tmp: Path, ray_session: Any, trial_function: str = INSTANT, **settings: str) -> ServiceProcess:
    return ServiceProcess(
        f"sqlite:///{tmp / 'service.db'}",
        tmp / "service.log",
        ray_address=ray_session.get_runtime_context().gcs_address,
        trial_function=trial_function,
        heartbeat_s="0.5",
        lease_s="4",
        **settings,
    ).start()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, ray_session: Any) -> Iterator[ServiceProcess]:
    """One ``dse serve`` for the client tests (instant synthetic trials)."""
    proc = start_service(tmp_path_factory.mktemp("service"), ray_session)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def finished_study(service: ServiceProcess) -> tuple[Any, list[Any]]:
    """:func:`grid_spec` submitted to the service and waited for: (the final study, every
    event the wait saw)."""
    from dse.client import Client

    with Client(service.url, token=WRITE_TOKEN) as client:
        submitted = client.submit(grid_spec())
        assert submitted.state in ("QUEUED", "RUNNING"), submitted
        events: list[Any] = []
        study = client.wait(submitted.id, on_event=events.append, timeout_s=300)
    return study, events
