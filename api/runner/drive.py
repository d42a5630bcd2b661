"""The runner process's one door to the engine's study runner (``dse.runner``; Ray lives there)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dse.results import TrialRecord, TrialSink
from dse.spec import StudySpec


@dataclass(frozen=True)
class Outcome:
    """How a run ended, in the store's terms."""

    state: str
    """COMPLETED, CANCELLED or FAILED."""
    error: str | None
    """Why, for FAILED (and the engine's message for the others, if any)."""


def run_study(
    spec: StudySpec,
    sink: TrialSink,
    *,
    resume: Sequence[TrialRecord],
    cancel: threading.Event,
    address: str | None = None,
    trial_function: str | None = None,
    model_store: str | None = None,
) -> Outcome:
    """Run ``spec`` with the engine's Ray Tune runner, resuming from ``resume`` (finished trials
    are not run again) and writing every record to ``sink``; setting ``cancel`` stops it (running
    trials recorded CANCELLED, finished ones kept)."""
    from dse.runner.ray_runner import RayTuneRunner

    kwargs: dict[str, Any] = {"history": list(resume), "address": address, "model_store": model_store}
    if trial_function:
        kwargs["trial_fn"] = trial_function
    runner = RayTuneRunner(spec, sink, **kwargs)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.2):
                runner.cancel("cancelled by request")
                return

    watcher = threading.Thread(target=watch, name="dse-cancel-watch", daemon=True)
    watcher.start()
    try:
        outcome = runner.run()
    finally:
        done.set()
    if outcome.stop_reason == "cancelled" or cancel.is_set():
        return Outcome("CANCELLED", outcome.message)
    if outcome.ok:
        return Outcome("COMPLETED", None)
    if outcome.stop_reason == "failure_budget":
        return Outcome("FAILED", outcome.message or "the failure budget (budget.max_failed_trials) was spent")
    return Outcome("FAILED", outcome.message or f"the study stopped: {outcome.stop_reason}")
