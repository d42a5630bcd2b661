"""The JSON forms the API sends: compact bytes, and a trial as ``TrialOut`` / ``TrialDetail``."""

from __future__ import annotations

import json
from typing import Any

from api.schemas import iso
from api.store import TrialInfo
from api.store.convert import json_number

__all__ = ["dumps", "trial_json"]


def dumps(data: Any) -> bytes:
    """Compact JSON of ``data`` (no NaN: non-finite numbers are strings by then)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def _metrics_json(metrics: dict[str, float]) -> dict[str, float | str]:
    return {k: json_number(v) for k, v in metrics.items()}


def trial_json(t: TrialInfo, *, detail: bool = False) -> dict[str, Any]:
    """A trial as the API shows it (``TrialOut``; with ``detail``, ``TrialDetail``)."""
    out: dict[str, Any] = {
        "number": t.number,
        "trial_id": t.trial_id,
        "state": t.state,
        "params": t.params,
        "metrics": _metrics_json(t.metrics),
        "metrics_std": _metrics_json(t.metrics_std),
        "seeds": list(t.seeds),
        "created_at": iso(t.created_at),
        "started_at": iso(t.started_at),
        "finished_at": iso(t.finished_at),
        "duration_s": None if t.started_at is None or t.finished_at is None else t.finished_at - t.started_at,
        "node": t.node,
        "error": t.error,
        "attempts": t.attempts,
    }
    if detail:
        out["repeat_metrics"] = [_metrics_json(m) for m in t.repeat_metrics]
        out["measurements"] = [
            {
                "repeat": m["repeat"],
                "epoch": m["epoch"],
                "reported_at": iso(m["reported_at"]),
                "metrics": _metrics_json(m["metrics"]),
            }
            for m in t.measurements or ()
        ]
        out["details"] = list(t.details or ())
        out["training"] = [d.get("training") if isinstance(d, dict) else None for d in out["details"]]
    return out
