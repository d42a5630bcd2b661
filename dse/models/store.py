"""A directory of model files, one per training key."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from dse.errors import NotFoundError, SpecError
from simulator.errors import CheckpointError
from simulator.modelfile import verify

log = logging.getLogger(__name__)

MODELS_DIRNAME = "models"
"""Sub-directory of a study's results directory that holds its models by default."""

_KEY = re.compile(r"^[0-9a-f]{8,64}$")
_SUFFIX = ".model"


def check_key(key: str) -> str:
    """``key`` if it is a training key (hex digits); :class:`SpecError` otherwise (it becomes a
    file name, so nothing else is accepted)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise SpecError("training_key", f"got {key!r}; accepted: 8 to 64 lowercase hex digits")
    return key


class ModelStore:
    """Model files under ``root``: ``<root>/<key[:2]>/<key>.model``.

    Safe for several processes (and studies) at once: a file appears by an atomic rename of a
    complete temporary file, so a reader sees a whole file or none; two writers of one key write
    the same model and the last rename wins. Every :meth:`read` checks the file's SHA-256: a
    corrupt or truncated file is renamed ``<key>.model.corrupt`` and reported absent.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """Where the model of ``key`` lives (whether or not it exists)."""
        check_key(key)
        return self.root / key[:2] / f"{key}{_SUFFIX}"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def keys(self) -> Iterator[str]:
        """The keys with a model file (not checked)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob(f"*/*{_SUFFIX}")):
            yield path.name[: -len(_SUFFIX)]

    def read(self, key: str) -> bytes | None:
        """The model file of ``key``, checked; None when absent or corrupt (a corrupt file is set
        aside, so that the key is trained again)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            verify(data)
        except CheckpointError as exc:
            self._set_aside(path, exc)
            return None
        return data

    def get(self, key: str) -> bytes:
        """Like :meth:`read`, but :class:`NotFoundError` when there is no intact model."""
        data = self.read(key)
        if data is None:
            raise NotFoundError(f"no stored model for training key {key} in {self.root}")
        return data

    def write(self, key: str, data: bytes) -> Path:
        """Store ``data`` (an intact model file, checked) as the model of ``key``, atomically."""
        path = self.path(key)
        verify(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    def _set_aside(self, path: Path, exc: Exception) -> None:
        with self._lock:
            log.warning("model %s is corrupt (%s); set aside, the training runs again", path, exc)
            try:
                os.replace(path, path.with_name(path.name + ".corrupt"))
            except FileNotFoundError:
                pass


def model_store_for(results_dir: str | os.PathLike[str] | None = None,
                    model_store: str | os.PathLike[str] | None = None) -> ModelStore | None:
    """The store a study keeps its models in: ``model_store`` when given (shared between
    studies), else ``<results_dir>/models``; None without either."""
    if model_store is not None:
        return ModelStore(model_store)
    if results_dir is not None:
        return ModelStore(Path(results_dir) / MODELS_DIRNAME)
    return None
