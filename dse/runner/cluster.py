"""Connecting to Ray: an existing cluster (``--address`` / ``RAY_ADDRESS``) or a local instance.

Resolution order, the same for the CLI and the study service:

1. a Ray instance already initialized in this process (a test session, the API server) is reused
   as it is;
2. an explicit address (``dse run --address``), then the ``RAY_ADDRESS`` environment variable:
   connect to that cluster and never start one (``"auto"`` finds a cluster started on this
   machine with ``ray start``);
3. otherwise (or with the address ``"local"``) start a local Ray on this machine for the
   duration of the study (the embedded default) and shut it down afterwards.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Self

from dse.errors import ConflictError, DSEError

ADDRESS_ENV = "RAY_ADDRESS"
"""Environment variable naming the cluster to connect to (Ray's own convention)."""

LOCAL = "local"
"""Address that always starts a new local Ray (ignoring ``RAY_ADDRESS``)."""


@dataclasses.dataclass
class RayConnection:
    """A connection to Ray made (or found) by :func:`connect_ray`; :meth:`close` undoes it."""

    address: str
    """The cluster's GCS address (``host:port``), as Ray reports it."""
    started_here: bool
    """True when :func:`connect_ray` started a local instance (closed by :meth:`close`)."""
    connected_here: bool
    """True when :func:`connect_ray` called ``ray.init`` (started or connected); False when an
    instance initialized by someone else was reused."""
    num_nodes: int
    """Alive nodes when the connection was made."""
    cpus: float
    """Total CPUs of the cluster when the connection was made."""

    def close(self) -> None:
        """Disconnect (and stop the local instance) if this connection made it; else nothing."""
        import ray

        if self.connected_here and ray.is_initialized():
            ray.shutdown()
            self.connected_here = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_TOKEN_ENV = "RAY_AUTH_TOKEN"


def protect_local_ray(address: str | None = None, environ: dict[str, str] | None = None) -> bool:
    """Turn on Ray's token authentication, with a fresh token, in a process about to start a
    local Ray; returns whether it did.

    A local Ray (2.x) binds its GCS, raylet and worker ports to every interface of the machine,
    whatever node address it is given, and its dashboard (off here, see :func:`connect_ray`)
    would too. With ``RAY_AUTH_MODE=token`` every one of those ports refuses a client without
    the token, which only this process and the Ray processes it starts (they inherit the
    environment) hold. Ray reads the setting when it is imported, so this must run first. Does
    nothing when the process joins a cluster (``address`` or ``RAY_ADDRESS``: the cluster's own
    settings apply), when ``RAY_AUTH_MODE`` is already set (the user's choice), or when Ray is
    already imported.
    """
    import secrets
    import sys

    env = os.environ if environ is None else environ
    target = address or env.get(ADDRESS_ENV)
    if (target and target != LOCAL) or env.get(AUTH_MODE_ENV) or "ray" in sys.modules:
        return False
    env[AUTH_MODE_ENV] = "token"
    env[AUTH_TOKEN_ENV] = secrets.token_hex(32)
    return True


def connect_ray(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    quiet: bool = True,
) -> RayConnection:
    """Reuse, connect to or start Ray (see the module docstring for the order).

    ``num_cpus`` / ``num_gpus`` size a locally started instance only (default: all of this
    machine's); a cluster brings its own resources. ``quiet`` keeps worker output and Ray's
    INFO logging off the terminal of a locally started instance.
    """
    import ray

    if ray.is_initialized():
        current = _gcs_address()
        if address and address not in ("auto", LOCAL) and not _same_address(address, current):
            raise ConflictError(
                f"Ray is already connected to {current} in this process; cannot connect to "
                f"--address {address!r} as well"
            )
        return _describe(current, started_here=False, connected_here=False)

    target = address or os.environ.get(ADDRESS_ENV) or None
    common: dict[str, Any] = {"include_dashboard": False}
    if quiet:
        common.update(log_to_driver=False, logging_level="ERROR")
    if target and target != LOCAL:
        try:
            ray.init(address=target, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            source = "--address" if address else f"${ADDRESS_ENV}"
            raise DSEError(
                f"cannot connect to the Ray cluster at {source}={target!r}: {exc}. Start one with "
                "`ray start --head`, or leave both unset to run on a local Ray started on demand"
            ) from exc
        return _describe(_gcs_address(), started_here=False, connected_here=True)

    ray.init(address=LOCAL if target == LOCAL else None, num_cpus=num_cpus, num_gpus=num_gpus, **common)
    return _describe(_gcs_address(), started_here=True, connected_here=True)


def _gcs_address() -> str:
    import ray

    return str(ray.get_runtime_context().gcs_address)


def _same_address(a: str, b: str) -> bool:
    def strip(s: str) -> str:
        return s.split("://", 1)[-1].replace("localhost", "127.0.0.1")

    return strip(a) == strip(b)


def _describe(address: str, *, started_here: bool, connected_here: bool) -> RayConnection:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    return RayConnection(
        address=address,
        started_here=started_here,
        connected_here=connected_here,
        num_nodes=len(nodes),
        cpus=cpus,
    )


def node_identity() -> dict[str, str]:
    """Where the calling Ray worker runs: ``{"node_id": <hex>, "node_ip": <ip>, "hostname": ...}``."""
    import socket

    import ray

    context = ray.get_runtime_context()
    return {
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "hostname": socket.gethostname(),
    }
