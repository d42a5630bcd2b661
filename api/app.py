"""The application factory: ``create_app(settings)`` builds the study service.

The lifespan opens the store from ``settings.database_url``, creates the results cache, and (with
``settings.run_studies``) starts the scheduler that executes queued studies in runner processes
and resumes studies whose runner died. Nothing is created at import time.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.exports import StudyExports
from api.middleware import BodyLimitMiddleware, UrlTextMiddleware
from api.openapi import install_openapi
from api.routes import dashboard, health, models, results, studies, trials
from api.settings import Settings, get_settings
from api.snapshot import ResultsCache
from api.store import SqlStore

log = logging.getLogger("api")

API_VERSION = "1"


def create_app(settings: Settings | None = None, *, store: SqlStore | None = None) -> FastAPI:
    """Build the service. ``settings`` default to the environment's (``DSE_*``); a given
    ``store`` is used instead of opening ``settings.database_url`` (and is not closed)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        app.state.store = store or SqlStore(settings.database_url)
        app.state.results = ResultsCache(app.state.store)
        app.state.exports = StudyExports(app.state.store)
        app.state.scheduler = None
        if settings.run_studies:
            from api.runner.scheduler import Scheduler

            app.state.scheduler = Scheduler(app.state.store, settings)
            app.state.scheduler.start()
        try:
            yield
        finally:
            if app.state.scheduler is not None:
                app.state.scheduler.stop()
            if own_store:
                app.state.store.close()

    app = FastAPI(
        title="analog-dse study service",
        version=API_VERSION,
        summary="Submit design-space exploration studies, follow them, and query their Pareto fronts.",
        lifespan=lifespan,
        docs_url=None,  # served below from the packaged Swagger UI: no CDN
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(UrlTextMiddleware)
    app.include_router(health.router)
    app.include_router(studies.router, prefix="/v1")
    app.include_router(trials.router, prefix="/v1")
    app.include_router(models.router, prefix="/v1")
    app.include_router(results.router, prefix="/v1")
    app.include_router(dashboard.router)
    _install_docs(app)
    static_dir = resources.files("api") / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")
    return app


def _install_docs(app: FastAPI) -> None:
    """The OpenAPI docs at ``/docs`` with Swagger UI's assets served by the service itself."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
