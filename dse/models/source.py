"""What a trial function is handed to fetch and keep trained models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from dse.models.store import ModelStore


@runtime_checkable
class ModelSource(Protocol):
    """Where a trial finds the model of its training key and leaves the one it trained.

    ``origin`` names who asks (``{"study": ..., "trial_id": ..., "repeat": ...}``); a trial that
    trains writes it into the model's metadata as the model's ``trained_by``.
    """

    origin: Mapping[str, Any]

    def fetch(self, key: str) -> bytes | None:
        """The intact model file of ``key``, or None (absent or corrupt: then the trial trains)."""

    def keep(self, key: str, data: bytes) -> None:
        """Store the model file the trial trained for ``key``."""


class StoreSource:
    """A :class:`ModelSource` over a :class:`ModelStore` this process can reach."""

    def __init__(self, store: ModelStore, origin: Mapping[str, Any] | None = None) -> None:
        self.store = store
        self.origin = dict(origin or {})

    def fetch(self, key: str) -> bytes | None:
        return self.store.read(key)

    def keep(self, key: str, data: bytes) -> None:
        self.store.write(key, data)
