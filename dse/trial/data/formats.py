"""Readers for the datasets' canonical file formats (IDX, CIFAR python pickles, SVHN .mat).

Each returns numpy arrays: images as ``uint8`` of shape ``(N, C, H, W)``, labels as ``int64``.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from dse.errors import DSEError

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class FormatError(DSEError, ValueError):
    """A dataset file does not have the structure its format requires."""


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain): the MNIST / Fashion-MNIST container.

    Layout: two zero bytes, a type code (0x08 unsigned byte ... 0x0E double), the number of
    dimensions, one big-endian uint32 size per dimension, then the data in C order.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise FormatError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    dtype = _IDX_TYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise FormatError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape))
    if len(raw) != header + count * dtype.itemsize:
        raise FormatError(f"{path}: IDX header says shape {shape} ({count * dtype.itemsize} bytes of data) "
                          f"but the file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="), copy=True)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64 from an IDX image / label pair."""
    x = read_idx(images)
    y = read_idx(labels)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise FormatError(f"{images}: expected a 3-D uint8 image array, got {x.ndim}-D {x.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise FormatError(f"{labels}: expected {len(x)} labels, got shape {y.shape}")
    return x[:, None, :, :], y.astype(np.int64)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: a pickled dict with ``data`` (N × 3072 uint8, channel-major
    32×32 planes) and ``labels`` (N ints). Only files whose checksum was verified are read
    (unpickling runs code from the file)."""
    with open(path, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise FormatError(f"{path}: not a CIFAR-10 python batch (needs b'data' and b'labels')")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise FormatError(f"{path}: data shape {data.shape} / {len(labels)} labels; expected (N, 3072) / N")
    return data.reshape(-1, 3, 32, 32), labels


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN cropped-digits ``.mat`` file: ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) with
    labels 1..10, where 10 stands for the digit 0 (mapped to 0 here)."""
    from scipy.io import loadmat  # only needed for SVHN

    mat = loadmat(path)
    if "X" not in mat or "y" not in mat:
        raise FormatError(f"{path}: not an SVHN cropped-digits file (needs X and y)")
    x = np.asarray(mat["X"])
    y = np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise FormatError(f"{path}: X has shape {x.shape}, y {len(y)} labels; expected (32, 32, 3, N) / N")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise FormatError(f"{path}: labels span {y.min()}..{y.max()}; expected 1..10")
    y[y == 10] = 0
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8), y
