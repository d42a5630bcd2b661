"""Where the service keeps trained models: one directory shared by all its studies."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from api.settings import Settings


def model_store_dir(settings: Settings, store: Any) -> Path:
    """``settings.model_store``; unset: ``models/`` next to a SQLite database file, else
    ``dse-models`` in the system temp folder."""
    if settings.model_store:
        return Path(settings.model_store)
    database = store.engine.url.database
    if store.dialect == "sqlite" and database not in (None, "", ":memory:"):
        return Path(database).resolve().parent / "models"
    return Path(tempfile.gettempdir()) / "dse-models"
