"""The three pieces that plug a :class:`~dse.runner.loop.StudyLoop` into Ray Tune.

- :class:`LoopSearcher` is the ``search_alg``: Tune asks it for trials, it asks the loop (which
  asks our searcher) and hands Tune the trial's payload;
- :class:`LoopCallback` turns Tune's trial events (start, each result, complete, error) into
  record updates in the loop;
- :class:`LoopStopper` ends the experiment when the loop says so (cancel, interrupt, failure
  budget).

Tune's trial ids are internal; the loop's ids (``t00012``) are what records, searchers and
results use. The mapping travels inside the trial's config (``config["trial_id"]``).

Tune pickles its search algorithm, callbacks and stopper into its experiment state (and may copy
them); the pieces therefore hold a key into :data:`_LOOPS`, not the loop itself (which holds
locks, sinks and listeners). :func:`attach` registers a loop for the duration of a run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from ray.tune import Callback
from ray.tune.search import Searcher as TuneSearcher
from ray.tune.stopper import Stopper

from dse.results.records import TrialState
from dse.runner.loop import StudyLoop, TrialOutcome, TrialPlan, timestamp
from dse.searchers.base import FINISHED

_LOOPS: dict[str, StudyLoop] = {}
"""Loops of the studies running in this process, by key."""

PAYLOAD_KEY = "payload"
"""Key of the JSON-encoded :meth:`TrialPlan.payload` in a Tune trial's config."""


@contextlib.contextmanager
def attach(loop: StudyLoop) -> Iterator[str]:
    """Register ``loop`` while a Tune experiment runs it; yields its key."""
    key = f"loop-{id(loop):x}"
    _LOOPS[key] = loop
    try:
        yield key
    finally:
        _LOOPS.pop(key, None)


class _LoopUser:
    """Holds a loop by key so that pickling and copying by Tune are harmless."""

    def __init__(self, key: str) -> None:
        self.key = key

    @property
    def loop(self) -> StudyLoop:
        try:
            return _LOOPS[self.key]
        except KeyError:
            raise RuntimeError(f"study loop {self.key} is not running in this process") from None


def encode_plan(plan: TrialPlan) -> dict[str, Any]:
    """The Tune config of a trial: our id (readable in Tune's own logs) and the JSON payload."""
    return {"trial_id": plan.trial_id, PAYLOAD_KEY: json.dumps(plan.payload())}


def decode_payload(config: dict[str, Any]) -> dict[str, Any]:
    """The payload a trainable receives, from its Tune config."""
    return json.loads(config[PAYLOAD_KEY])


class LoopSearcher(_LoopUser, TuneSearcher):
    """Ray Tune search algorithm that draws trials from a :class:`StudyLoop`."""

    def __init__(self, key: str) -> None:
        TuneSearcher.__init__(self, metric=None, mode=None)
        _LoopUser.__init__(self, key)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Accept Tune's properties: the loop already knows the study's objectives."""
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next trial's config, None (not now) or FINISHED."""
        plan = self.loop.next_trial()
        if plan is None:
            return None
        if plan == FINISHED:
            return TuneSearcher.FINISHED
        return encode_plan(plan)  # type: ignore[arg-type]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Nothing here: :class:`LoopCallback` records every ending with its details."""


class LoopCallback(_LoopUser, Callback):
    """Feeds Tune's trial events into the loop; ticks progress listeners while trials run."""

    def __init__(self, key: str, *, tick_s: float = 1.0) -> None:
        _LoopUser.__init__(self, key)
        self.tick_s = tick_s
        self._finals: dict[str, dict[str, Any]] = {}
        self._last_epoch: dict[str, Any] = {}
        self._nodes: dict[str, str] = {}
        self._last_tick = time.monotonic()

    @staticmethod
    def _id(trial: Any) -> str:
        return str(trial.config["trial_id"])

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.loop.trial_started(self._id(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        kind = result.get("_kind")
        trial_id = self._id(trial)
        if kind == "epoch":
            node = result.get("_node_id")
            if node is not None and self._nodes.get(trial_id) != node:
                # The first epoch of an attempt tells where it runs (a retry may move it).
                self._nodes[trial_id] = node
                self.loop.trial_started(trial_id, node=node)
            values = result.get("_values") or {}
            self._last_epoch[trial_id] = values.get("epoch", result.get("_epoch"))
            self.loop.trial_epoch(trial_id, int(result.get("_repeat", 0)), values)
        elif kind == "final":
            self._finals[trial_id] = result

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        trial_id = self._id(trial)
        self._nodes.pop(trial_id, None)
        final = self._finals.pop(trial_id, None)
        epoch = self._last_epoch.pop(trial_id, None)
        if final is not None:
            for replayed in final.get("_replayed") or ():  # a stored training's epochs, sent at once
                self.loop.trial_epoch(trial_id, int(replayed.get("_repeat", 0)), replayed.get("_values") or {})
            self.loop.trial_finished(trial_id, outcome_from_final(final))
        elif self.loop.stop_reason is not None:
            self.loop.trial_ended(trial_id, TrialState.CANCELLED, f"study stopped ({self.loop.stop_reason})")
        else:
            where = f" after epoch {epoch}" if epoch is not None else ""
            self.loop.trial_ended(trial_id, TrialState.PRUNED, f"stopped early by the scheduler{where}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        trial_id = self._id(trial)
        self._nodes.pop(trial_id, None)
        self._finals.pop(trial_id, None)
        self._last_epoch.pop(trial_id, None)
        self.loop.trial_ended(trial_id, TrialState.FAILED, tune_error_text(trial))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        trial_id = self._id(trial)
        self._nodes.pop(trial_id, None)
        self._finals.pop(trial_id, None)
        self._last_epoch.pop(trial_id, None)
        self.loop.trial_restarted(trial_id, tune_error_text(trial))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self._last_tick >= self.tick_s:
            self._last_tick = now
            self.loop.emit("tick")


class LoopStopper(_LoopUser, Stopper):
    """Stops the whole experiment once the loop has a stop reason."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.loop.stop_reason is not None


def outcome_from_final(final: dict[str, Any]) -> TrialOutcome:
    """A :class:`TrialOutcome` from the trainable's final report."""
    state = TrialState.COMPLETED if final.get("_state") == "COMPLETED" else TrialState.FAILED
    return TrialOutcome(
        state=state,
        repeat_metrics=tuple(final.get("_repeats") or ()),
        details=tuple(final.get("_details") or ()),
        error=final.get("_error"),
        node=final.get("_node_id"),
        started_at=timestamp(final.get("_started")),
        finished_at=timestamp(final.get("_finished")),
    )


def tune_error_text(trial: Any) -> str:
    """What Tune knows about a trial's failure (a worker crash, an actor that died, ...)."""
    try:
        error = trial.get_pickled_error()
    except Exception:  # noqa: BLE001 - the error file may be gone; fall back to the status
        error = None
    if error is not None:
        text = f"{type(error).__name__}: {error}"
    else:
        text = f"the trial's worker failed (Ray Tune status {trial.status})"
    return text.strip()[:4000]
