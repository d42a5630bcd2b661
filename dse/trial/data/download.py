"""``dse data download``: fetch a dataset's canonical files and verify their checksums."""

from __future__ import annotations

import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dse.errors import DSEError
from dse.trial.data.locate import ChecksumError, default_data_dir, md5_file, verify
from dse.trial.data.sources import SOURCES, Source


class DownloadError(DSEError):
    """No mirror delivered a file with the canonical checksum."""


def download(name: str, data_dir: str | os.PathLike[str] | None = None, *, source: Source | None = None,
             log: Callable[[str], None] | None = None, timeout_s: float = 60.0) -> Path:
    """Fetch dataset ``name`` into ``<data_dir>/<name>/`` and verify every file; returns the folder.

    ``data_dir`` defaults to ``$DSE_DATA_DIR``, else the per-user cache. Files already present
    with the right checksum are kept. ``source`` replaces the canonical mirrors / checksums.
    """
    if name not in SOURCES:
        raise ValueError(f"dataset: got {name!r}; accepted: {', '.join(SOURCES)} "
                         "(digits is embedded and needs no download)")
    src = source or SOURCES[name]
    folder = default_data_dir(data_dir) / src.name
    folder.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    todo = [f for f in src.files if not _ok(folder / f.path, f.md5)]
    if not todo:
        say(f"{src.name}: all {len(src.files)} files present and verified in {folder}")
        return folder
    if src.archive is not None:
        archive = folder / src.archive.name
        if not _ok(archive, src.archive.md5):
            _fetch(src, src.archive.name, src.archive.md5, archive, say, timeout_s)
        say(f"unpacking {archive.name}")
        wanted = {f.path for f in src.files}
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.name in wanted and m.isfile()]
            tar.extractall(folder, members=members, filter="data")
        archive.unlink()
    else:
        for f in todo:
            _fetch(src, f.path, f.md5, folder / f.path, say, timeout_s)
    verify(folder, src.files)
    say(f"{src.name}: {len(src.files)} files verified in {folder}")
    return folder


def _ok(path: Path, md5: str) -> bool:
    return path.is_file() and md5_file(path) == md5


def _fetch(src: Source, name: str, md5: str, dest: Path, say: Callable[[str], None], timeout_s: float) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for mirror in src.mirrors:
        url = mirror + name
        say(f"fetching {url}")
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, open(part, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
            part.unlink(missing_ok=True)
            continue
        got = md5_file(part)
        if got != md5:
            errors.append(f"{url}: md5 {got} != canonical {md5}")
            part.unlink(missing_ok=True)
            continue
        os.replace(part, dest)
        return
    raise DownloadError(f"could not fetch {name} for dataset {src.name!r}: " + "; ".join(errors))


__all__ = ["ChecksumError", "DownloadError", "download"]
