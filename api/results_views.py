"""Study views: the summary in listings and the detail page (counts, elapsed, best so far)."""

from __future__ import annotations

import time
from typing import Any

from api import analysis, engine
from api.encode import dumps
from api.schemas import iso
from api.snapshot import StudySnapshot
from api.store import FINISHED_TRIAL_STATES, StudyInfo


def budget(study: StudyInfo) -> int | None:
    """The study's trial budget (``budget.max_trials``, or the grid's size for a grid search)."""
    spec = study.spec
    max_trials = (spec.get("budget") or {}).get("max_trials")
    if max_trials is not None:
        return int(max_trials)
    if (spec.get("searcher") or {}).get("type") == "grid":
        try:
            return engine.load_stored_spec(spec).grid_size()
        except Exception:  # noqa: BLE001 - a size is a nicety; the listing must not fail on it
            return None
    return None


def study_summary(study: StudyInfo, counts: dict[str, int], *, now: float | None = None) -> dict[str, Any]:
    """The ``StudySummary`` of a study with its trial counts."""
    total = sum(counts.values())
    finished = sum(n for state, n in counts.items() if state in FINISHED_TRIAL_STATES)
    limit = budget(study)
    elapsed = elapsed_s(study, now)
    progress = None
    if study.state == "COMPLETED":
        progress = 1.0
    elif limit:
        progress = min(1.0, finished / limit)
    return {
        "id": study.id,
        "name": study.name,
        "labels": study.labels,
        "state": study.display_state,
        "created_at": iso(study.created_at),
        "started_at": iso(study.started_at),
        "finished_at": iso(study.finished_at),
        "elapsed_s": elapsed,
        "trials": {"total": total, "by_state": counts, "budget": limit},
        "progress": progress,
        "error": study.error,
    }


def elapsed_s(study: StudyInfo, now: float | None = None) -> float | None:
    """Seconds since the study started, up to its end (None before it started)."""
    if study.started_at is None:
        return None
    return (study.finished_at or (time.time() if now is None else now)) - study.started_at


def study_detail_body(snap: StudySnapshot) -> bytes:
    """The ``StudyDetail`` JSON of the snapshot's study: encoded once per snapshot, but for
    ``elapsed_s``, which runs with the clock."""
    static = snap.body(
        "study-detail",
        lambda: dumps({k: v for k, v in study_detail(snap.study, snap).items() if k != "elapsed_s"}),
    )
    return static[:-1] + b',"elapsed_s":' + dumps(elapsed_s(snap.study)) + b"}"


def study_detail(study: StudyInfo, snap: StudySnapshot) -> dict[str, Any]:
    """The ``StudyDetail`` of a study (``snap`` provides the trials)."""
    out = study_summary(study, snap.counts())
    spec = snap.spec
    out.update(
        spec=study.spec,
        objectives=[o.to_dict() for o in spec.objectives],
        metrics=snap.metric_names,
        best=snap.memo("best-so-far", lambda: analysis.best_per_objective(snap, spec)),
        runs=study.runs,
        request_id=study.request_id,
    )
    return out
