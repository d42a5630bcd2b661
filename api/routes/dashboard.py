"""The dashboard pages: static HTML served by the service (no data in them: the page's script
reads the API with the user's token)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


def _page(name: str) -> HTMLResponse:
    html = (resources.files("api") / "static" / name).read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/")
def index() -> HTMLResponse:
    """The study list."""
    return _page("index.html")


@router.get("/studies/{study_id}")
def study_page(study_id: str) -> HTMLResponse:
    """One study: progress, Pareto scatter, hypervolume curve, trials table."""
    return _page("study.html")


@router.get("/studies/{study_id}/trials/{number}")
def trial_page(study_id: str, number: int) -> HTMLResponse:
    """One trial: parameters, metrics, the design's cost breakdown, accuracy by epoch."""
    return _page("trial.html")
