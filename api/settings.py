"""Service settings, read from the environment (``DSE_`` prefix) behind a cached ``get_settings()``.

Every field below can be set as ``DSE_<FIELD>`` (case-insensitive), e.g.
``DSE_DATABASE_URL=postgresql+psycopg://dse:secret@db/dse`` or
``DSE_WRITE_TOKENS=alice-token,ci-token``. Token lists are comma-separated. The app factory takes a
:class:`Settings` instance, so tests build their own and never touch the environment.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Access = Literal["none", "read", "write"]


class Settings(BaseSettings):
    """Configuration of one study service process."""

    model_config = SettingsConfigDict(env_prefix="DSE_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    """Interface ``dse serve`` listens on (``0.0.0.0`` for every interface)."""

    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port ``dse serve`` listens on."""

    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Log level of the service (and of uvicorn's access log)."""

    workers: int = Field(default=1, ge=1)
    """Web server processes ``dse serve`` starts (they share the port and the store; one of
    them at a time schedules studies, by a lock in the store)."""

    access_log: bool = True
    """Log one line per request (uvicorn's access log)."""

    database_url: str = "sqlite:///dse-service.db"
    """SQLAlchemy URL of the store: ``sqlite:///path.db`` (WAL mode, the embedded default) or
    ``postgresql+psycopg://user:password@host:port/db``."""

    read_tokens: Annotated[tuple[str, ...], NoDecode] = ()
    """Bearer tokens that may read (GET) everything; comma-separated in the environment."""

    write_tokens: Annotated[tuple[str, ...], NoDecode] = ()
    """Bearer tokens that may read and write (submit, cancel, delete); comma-separated."""

    anonymous_access: Access = "none"
    """What a request without a token may do: ``none`` (401), ``read`` or ``write`` (for a
    single-user machine). With no tokens configured at all, this must not be ``none``."""

    allow_public_anonymous_write: bool = False
    """Serve anonymous write access on a host other than loopback (anyone who reaches the port
    may submit studies, which run code paths of this machine): refused unless this is set."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted, in bytes; larger bodies get 413."""

    max_running_studies: int = Field(default=1, ge=1)
    """Studies executed at once by this service; the others wait in the queue (state QUEUED)."""

    ray_address: str | None = None
    """Ray cluster the study runners join (``ray://...`` or ``host:port``); unset: the runner
    inherits ``RAY_ADDRESS`` from the environment, or starts a local Ray."""

    heartbeat_s: float = Field(default=1.0, gt=0)
    """Seconds between a study runner's lease renewals (and checks for a cancel request)."""

    lease_s: float = Field(default=6.0, gt=0)
    """Seconds a runner's lease on a study lasts without renewal; after that the study is taken
    to have lost its runner and is resumed. Must exceed ``heartbeat_s`` by a safe margin."""

    max_study_runs: int = Field(default=5, ge=1)
    """Times a study's runner may be started (first run plus resumes after crashes) before the
    study is marked FAILED instead of being resumed again."""

    scheduler_interval_s: float = Field(default=0.5, gt=0)
    """Seconds between scheduler passes (start queued studies, resume orphaned ones)."""

    run_studies: bool = True
    """Start the scheduler that executes studies in this process; ``false`` serves the store
    read/write only (a second API replica, or tests of the routes alone)."""

    runner_log_dir: str | None = None
    """Folder for the study runners' logs (``<study-id>.log``); unset: next to a SQLite
    database, or the system temp folder."""

    model_store: str | None = None
    """Directory of the trained models, shared by every study of the service (a training done by
    one study is reused by the others; ``GET /v1/studies/{id}/trials/{n}/model`` reads it);
    unset: ``models/`` next to a SQLite database, or ``dse-models`` in the system temp folder."""

    trial_function: str | None = None
    """Import path ``module:function`` of the trial function the engine runs; unset: the
    engine's default (``dse.trial.run:run_trial``)."""

    node_cpus: float | None = Field(default=None, gt=0)
    """CPUs of the largest worker node of the cluster the runners use, when known: a study
    whose trials ask for more (``resources.cpus``) could never start one and is rejected at
    submit. Unset: not checked here (the runner refuses it before any trial)."""

    node_gpus: float | None = Field(default=None, ge=0)
    """GPUs of the worker node with the most GPUs, when known (``resources.gpus``, as above)."""

    @field_validator("read_tokens", "write_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not (self.read_tokens or self.write_tokens) and self.anonymous_access == "none":
            raise ValueError(
                "anonymous_access: got 'none' with no read_tokens or write_tokens configured, which "
                "would refuse every request; accepted: set DSE_WRITE_TOKENS / DSE_READ_TOKENS, or "
                "DSE_ANONYMOUS_ACCESS=read|write"
            )
        if self.lease_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"lease_s: got {self.lease_s!r} with heartbeat_s = {self.heartbeat_s!r}; "
                "accepted: lease_s >= 2 * heartbeat_s"
            )
        if (self.anonymous_access == "write" and not is_loopback(self.host)
                and not self.allow_public_anonymous_write):
            raise ValueError(
                f"anonymous_access: got 'write' with host {self.host!r}, which other machines can "
                "reach; accepted: write tokens (DSE_WRITE_TOKENS), host 127.0.0.1, or "
                "DSE_ALLOW_PUBLIC_ANONYMOUS_WRITE=true to accept the risk"
            )
        overlap = set(self.read_tokens) & set(self.write_tokens)
        if overlap:
            raise ValueError(
                "read_tokens: a token is listed as both read-only and read-write; "
                "accepted: each token in one list"
            )
        return self


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine reaches (``127.0.0.1``,
    ``localhost``, ``::1``)."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.cache
def get_settings() -> Settings:
    """The process's settings from the environment, read once (a FastAPI dependency)."""
    return Settings()
