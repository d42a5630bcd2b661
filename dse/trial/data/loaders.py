"""Loading a dataset by name into numpy arrays (with an in-process cache)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dse.trial.data.formats import read_cifar_batch, read_idx_pair, read_svhn_mat
from dse.trial.data.locate import locate, verify
from dse.trial.data.sources import SOURCES, Source

DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10", "svhn")
"""Every dataset :func:`load_dataset` knows."""

DIGITS_TEST_FRACTION = 0.2
"""Share of each class of scikit-learn's digits held out as the fixed test set."""

DIGITS_SPLIT_SEED = 20_240_601
"""Seed of the fixed digits train/test split (independent of the trial seed, so every trial is
tested on the same 360 images)."""


@dataclass(frozen=True)
class DatasetArrays:
    """A dataset's official train and test sets as compact numpy arrays.

    Images are ``uint8`` of shape ``(N, C, H, W)``; ``x.astype(float32) * scale`` lies in
    [0, 1]. Labels are ``int64`` in ``0 .. classes - 1``. Cheap to pickle (what the DSE runner
    puts in the Ray object store once per worker).
    """

    name: str
    """Dataset name."""
    train_x: np.ndarray
    """Training images."""
    train_y: np.ndarray
    """Training labels."""
    test_x: np.ndarray
    """Test images."""
    test_y: np.ndarray
    """Test labels."""
    scale: float = 1.0 / 255.0
    """Factor that maps the stored integers to [0, 1]."""

    @property
    def classes(self) -> int:
        """Number of classes."""
        return int(max(self.train_y.max(), self.test_y.max())) + 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


_cache: dict[tuple[str, str], DatasetArrays] = {}
_cache_lock = threading.Lock()


def load_dataset(name: str, data_dir: str | os.PathLike[str] | None = None, *,
                 source: Source | None = None, cache: bool = True) -> DatasetArrays:
    """Load dataset ``name`` (files checked against their checksums first).

    ``data_dir`` is searched as described in :func:`dse.trial.data.locate.search_dirs`;
    ``source`` replaces the canonical file list and checksums (files written by tests).
    Results are cached per process by name and folder.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"dataset.name: got {name!r}; accepted: {', '.join(DATASET_NAMES)}")
    if name == "digits":
        key = (name, "")
        folder = None
    else:
        src = source or SOURCES[name]
        folder = locate(src, data_dir)
        key = (name, str(folder.resolve()))
    if cache and source is None:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is not None:
            return hit
    arrays = _load_digits() if folder is None else _load_files(name, src, folder)
    if cache and source is None:
        with _cache_lock:
            _cache[key] = arrays
    return arrays


def clear_cache() -> None:
    """Forget every cached dataset."""
    with _cache_lock:
        _cache.clear()


def _load_files(name: str, source: Source, folder: Path) -> DatasetArrays:
    verify(folder, source.files)
    if name in ("mnist", "fashion-mnist"):
        train = read_idx_pair(folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
        test = read_idx_pair(folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz")
    elif name == "cifar10":
        batches = [read_cifar_batch(folder / f.path) for f in source.files if "data_batch" in f.path]
        train = (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))
        test = read_cifar_batch(folder / "cifar-10-batches-py/test_batch")
    else:  # svhn
        train = read_svhn_mat(folder / "train_32x32.mat")
        test = read_svhn_mat(folder / "test_32x32.mat")
    return DatasetArrays(name, train[0], train[1], test[0], test[1], scale=1.0 / 255.0)


def _load_digits() -> DatasetArrays:
    from sklearn.datasets import load_digits  # embedded in scikit-learn: no files

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]  # values 0..16
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):  # stratified: the same share of every class
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, size=int(round(DIGITS_TEST_FRACTION * len(idx))), replace=False)] = True
    return DatasetArrays("digits", x[~test], y[~test], x[test], y[test], scale=1.0 / 16.0)
