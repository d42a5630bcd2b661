"""Finding a dataset's files on disk and checking them against their checksums."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from dse.errors import DSEError, NotFoundError
from dse.trial.data.sources import DataFile, Source

DATA_DIR_ENV = "DSE_DATA_DIR"
"""Environment variable naming the data directory used when a trial gives none."""


class ChecksumError(DSEError, ValueError):
    """A dataset file exists but does not match its canonical checksum."""


def cache_dir() -> Path:
    """The per-user dataset cache: ``$XDG_CACHE_HOME/analog-dse/datasets`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "analog-dse" / "datasets"


def default_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``dse data download`` writes: the explicit directory, else ``$DSE_DATA_DIR``,
    else the per-user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else cache_dir()


def search_dirs(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for dataset ``name``, in order.

    An explicit ``data_dir`` is searched alone (its ``<name>/`` subfolder, then itself);
    otherwise ``$DSE_DATA_DIR`` (the same two) and then the per-user cache's ``<name>/``.
    """
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        return [base / name, base]
    dirs: list[Path] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        base = Path(env).expanduser()
        dirs += [base / name, base]
    dirs.append(cache_dir() / name)
    return dirs


def locate(source: Source, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds every file of ``source``; :class:`NotFoundError` when none does.

    The error names the first missing file, every folder searched and the download command.
    """
    dirs = search_dirs(source.name, data_dir)
    for folder in dirs:
        if all((folder / f.path).is_file() for f in source.files):
            return folder
    missing = next(f.path for f in source.files if not (dirs[0] / f.path).is_file())
    searched = ", ".join(str(d) for d in dirs)
    hint = f" --dir {data_dir}" if data_dir is not None else ""
    raise NotFoundError(
        f"dataset {source.name!r}: file {missing!r} not found; searched {searched}. "
        f"Fetch it with `dse data download {source.name}{hint}` (needs internet; "
        f"checksums are verified), or point dataset.data_dir / ${DATA_DIR_ENV} at a folder that has it."
    )


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 digest of a file (read in chunks)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path, files: tuple[DataFile, ...] | list[DataFile]) -> None:
    """Raise :class:`ChecksumError` naming the first file whose MD5 differs from the listed one."""
    for f in files:
        got = md5_file(folder / f.path)
        if got != f.md5:
            raise ChecksumError(f"{folder / f.path}: md5 {got} does not match the canonical {f.md5}; "
                                "the file is corrupt or not the published one (delete it and run "
                                "`dse data download` again)")
