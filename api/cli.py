"""``dse serve``: run the study service (FastAPI on uvicorn) with settings from the environment.

Registered with the ``dse`` command line through the ``dse.commands`` entry-point group, so that
the engine package never imports the service.

Every setting of :class:`api.settings.Settings` is read from ``DSE_<NAME>`` (e.g.
``DSE_DATABASE_URL``, ``DSE_WRITE_TOKENS``); the flags below override the environment.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the study service (REST API, dashboard, study runners)",
        description="Run the study service. Settings come from DSE_* environment variables "
        "(see docs/api.md); these flags override them.",
    )
    p.add_argument("--host", default=None, help="interface to listen on (DSE_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port (DSE_PORT, default 8000)")
    p.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of the store (DSE_DATABASE_URL, default sqlite:///dse-service.db)",
    )
    p.add_argument("--workers", type=int, default=None, help="web server processes (DSE_WORKERS, default 1)")
    p.add_argument(
        "--max-running-studies",
        type=int,
        default=None,
        help="studies executed at once (DSE_MAX_RUNNING_STUDIES, default 1)",
    )
    p.add_argument(
        "--no-run-studies",
        action="store_true",
        help="serve the store only; do not execute studies (DSE_RUN_STUDIES=false)",
    )
    p.add_argument(
        "--log-level",
        default=None,
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (DSE_LOG_LEVEL, default info)",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.settings import Settings

    overrides = {
        "host": args.host,
        "port": args.port,
        "database_url": args.database_url,
        "max_running_studies": args.max_running_studies,
        "log_level": args.log_level,
        "workers": args.workers,
    }
    if args.no_run_studies:
        overrides["run_studies"] = False
    generated = None
    if not any(os.environ.get(f"DSE_{n}") for n in ("WRITE_TOKENS", "READ_TOKENS", "ANONYMOUS_ACCESS")):
        # Plain `dse serve` on a fresh machine: a token for this run, as Jupyter does.
        generated = secrets.token_urlsafe(24)
        overrides["write_tokens"] = (generated,)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "settings"
            lines.append(f"{field}: {err.get('msg')} (got {err.get('input')!r})")
        raise ValueError(
            "invalid service settings (DSE_* environment or flags):\n  " + "\n  ".join(lines)
        ) from None
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _announce(settings, generated)
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "proxy_headers": True,
        "timeout_graceful_shutdown": 15,
        "access_log": settings.access_log,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    # Worker processes build the app from the environment: hand the flags down through it.
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"DSE_{name.upper()}"] = ",".join(value) if isinstance(value, tuple) else str(value)
    uvicorn.run("api.app:create_app", factory=True, workers=settings.workers, **common)
    return 0


def _announce(settings: Settings, generated: str | None) -> None:
    """Tell the user where the dashboard is (with the generated token), and warn about a
    service that other machines reach without a token."""
    from api.settings import is_loopback

    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{shown}:{settings.port}/"
    if generated is not None:
        print(f"dse serve: dashboard and API at {url}#token={generated}\n"
              f"  (a write token generated for this run: send it as 'Authorization: Bearer {generated}'; "
              "set DSE_WRITE_TOKENS to choose your own)", file=sys.stderr, flush=True)
    else:
        print(f"dse serve: dashboard and API at {url}", file=sys.stderr, flush=True)
    if settings.anonymous_access != "none" and not is_loopback(settings.host):
        print(f"dse serve: WARNING: anonymous {settings.anonymous_access} access on {settings.host}, which "
              "other machines can reach; set DSE_WRITE_TOKENS / DSE_READ_TOKENS instead", file=sys.stderr,
              flush=True)
