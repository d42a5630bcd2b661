"""The envelope of a model file, torch-free: a magic line, a JSON header with the SHA-256 and size
of the payload, then the payload (see :mod:`simulator.checkpoint` for what the payload holds).
Stores and services check and move model files with these functions without loading torch."""

from __future__ import annotations

import hashlib
import json

from simulator.errors import CheckpointError

__all__ = ["MAGIC", "unwrap", "verify", "wrap"]

MAGIC = b"ANALOG-MODEL 1\n"
"""First line of every model file (format and its version)."""

_MAX_HEADER = 4096


def wrap(payload: bytes) -> bytes:
    """A model file's bytes around ``payload``."""
    header = json.dumps({"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}).encode()
    return MAGIC + header + b"\n" + payload


def unwrap(data: bytes) -> bytes:
    """The payload of a model file after checking its size and SHA-256; raises
    :class:`CheckpointError` for anything else than an intact model file."""
    if not data.startswith(MAGIC):
        raise CheckpointError("not a model file (its first line is not 'ANALOG-MODEL 1')")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if end < 0:
        raise CheckpointError("model file header is missing or truncated")
    try:
        header = json.loads(data[len(MAGIC):end])
        digest, size = str(header["sha256"]), int(header["size"])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError("model file header is not valid JSON with sha256 and size") from None
    body = data[end + 1:]
    if len(body) != size:
        raise CheckpointError(f"model file is truncated or padded: {len(body)} payload bytes, the header says {size}")
    if hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError("model file is corrupt: its SHA-256 does not match the header")
    return body


def verify(data: bytes) -> None:
    """Raise :class:`CheckpointError` unless ``data`` is an intact model file."""
    unwrap(data)
