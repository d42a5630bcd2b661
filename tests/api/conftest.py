"""Fixtures of the study service tests: stores on SQLite and PostgreSQL, app clients, specs.

PostgreSQL tests read ``DSE_TEST_POSTGRES_URL`` (``scripts/ci-services.sh`` prints it) and get a
schema of their own; Chromium tests read ``DSE_TEST_CHROMIUM`` or find ``chromium`` on the PATH.
Without them those tests skip, saying why, unless ``DSE_REQUIRE_SERVICES=1`` (set by CI), which
turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from api.store import SqlStore
from dse.results import TrialRecord
from tests.api.factories import spec_dict, synthetic_records  # noqa: F401 - re-exported for tests

WRITE = {"Authorization": "Bearer test-write-token"}
READ = {"Authorization": "Bearer test-read-token"}


def require_service(what: str, reason: str) -> None:
    """Skip for a missing external service, or fail when CI demands every service."""
    if os.environ.get("DSE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (DSE_REQUIRE_SERVICES=1) but {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


def postgres_url() -> str:
    url = os.environ.get("DSE_TEST_POSTGRES_URL")
    if not url:
        require_service("PostgreSQL", "DSE_TEST_POSTGRES_URL is not set (run scripts/ci-services.sh)")
    return url  # type: ignore[return-value]


def chromium_path() -> str:
    path = os.environ.get("DSE_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        require_service(
            "Chromium", "no chromium binary (set DSE_TEST_CHROMIUM or run scripts/ci-services.sh)"
        )
    return path  # type: ignore[return-value]


class PostgresSchema:
    """A PostgreSQL schema made for one test; the store's URL points its search_path there."""

    def __init__(self, base_url: str) -> None:
        from sqlalchemy import create_engine, text

        self.name = "t_" + secrets.token_hex(6)
        self._admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
        self._text = text
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        sep = "&" if "?" in base_url else "?"
        self.url = f"{base_url}{sep}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(self._text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self._admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    schema = PostgresSchema(postgres_url())
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """A store on each backend."""
    s = SqlStore(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    """A store on SQLite only (for tests of the routes, which do not depend on the backend)."""
    s = SqlStore(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        yield s
    finally:
        s.close()


def make_settings(database_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "write_tokens": ("test-write-token",),
        "read_tokens": ("test-read-token",),
        "run_studies": False,
    }
    values.update(changes)
    return Settings(**values)


@pytest.fixture
def client(sqlite_store: SqlStore) -> Iterator[TestClient]:
    """A TestClient of the service over a SQLite store, without the scheduler."""
    app = create_app(make_settings(sqlite_store.url), store=sqlite_store)
    with TestClient(app) as c:
        yield c


def fill_study(store: SqlStore, study_id: str, records: list[TrialRecord], owner: str = "test-owner") -> None:
    """Write records to a study (taking its lease first when it is free)."""
    store.acquire_lease(study_id, owner, 3600)
    for rec in records:
        store.write_trial(study_id, rec)
