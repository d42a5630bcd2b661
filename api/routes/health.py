"""``GET /healthz`` (the process serves requests) and ``GET /readyz`` (it can do its job)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests (no dependencies checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the store answers and the scheduler runs",
    responses={503: {"description": "not ready; the body says which check failed"}},
)
def readyz(request: Request, store: StoreDep) -> JSONResponse:
    """200 when the store answers a query and (if this process executes studies) the scheduler
    thread is alive; 503 with the failing checks otherwise."""
    checks: dict[str, Any] = {}
    try:
        store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["store"] = f"error: {type(exc).__name__}"
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        checks["scheduler"] = "ok" if scheduler.alive() else "error: not running"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
