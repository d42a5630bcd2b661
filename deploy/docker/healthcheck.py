#!/usr/bin/env python3
"""Health check of an analog-dse container: ``dse-healthcheck [api|head|worker] [--ready]``.

Exit status 0 when healthy, 1 when not (one line on stdout says why), 2 on bad arguments. The role
defaults to ``$DSE_ROLE``, else the role the entry point recorded at start-up, else ``api``.

- ``api``: ``GET /healthz`` of the service (liveness); with ``--ready``, ``GET /readyz`` (the store
  answers and the scheduler runs).
- ``head``: the Ray dashboard's ``/api/gcs_healthz`` and the node's ``/api/local_raylet_healthz``
  (the endpoints KubeRay's own probes use; both are public under Ray's token authentication).
- ``worker``: the node's ``/api/local_raylet_healthz``.

Ports come from ``DSE_PORT`` (8000), ``RAY_DASHBOARD_PORT`` (8265) and ``RAY_DASHBOARD_AGENT_PORT``
(52365). Only the standard library is used, so the check costs no imports of the project.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROLES = ("api", "head", "worker")
TIMEOUT_S = 4.0


def _urls(role: str, ready: bool) -> list[tuple[str, str | None]]:
    """(url, text the body must contain or None) for each check of ``role``."""
    api_port = os.environ.get("DSE_PORT", "8000")
    dashboard = os.environ.get("RAY_DASHBOARD_PORT", "8265")
    agent = os.environ.get("RAY_DASHBOARD_AGENT_PORT", "52365")
    raylet = (f"http://127.0.0.1:{agent}/api/local_raylet_healthz", "success")
    if role == "api":
        return [(f"http://127.0.0.1:{api_port}/{'readyz' if ready else 'healthz'}", None)]
    if role == "head":
        return [(f"http://127.0.0.1:{dashboard}/api/gcs_healthz", "success"), raylet]
    return [raylet]


def _role(args: list[str]) -> str:
    if args:
        return args[0]
    if os.environ.get("DSE_ROLE"):
        return os.environ["DSE_ROLE"]
    recorded = Path(os.environ.get("TMPDIR", "/tmp")) / "dse-role"
    try:
        return recorded.read_text().strip() or "api"
    except OSError:
        return "api"


def check(url: str, expect: str | None) -> str | None:
    """None when ``url`` answers 200 (with ``expect`` in its body); else the reason."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - loopback
            body = response.read(4096).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    if expect is not None and expect not in body:
        return f"{url}: body {body[:80]!r} lacks {expect!r}"
    return None


def main(argv: list[str]) -> int:
    ready = "--ready" in argv
    args = [a for a in argv if a != "--ready"]
    role = _role(args)
    if role not in ROLES or len(args) > 1:
        print(f"role: got {' '.join(args) or role!r}; accepted: one of {', '.join(ROLES)} [--ready]")
        return 2
    failures = [reason for url, expect in _urls(role, ready) if (reason := check(url, expect))]
    if failures:
        print(f"{role} unhealthy: " + "; ".join(failures))
        return 1
    print(f"{role} healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
