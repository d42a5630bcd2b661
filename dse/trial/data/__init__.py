"""Datasets of a trial: the embedded digits and the canonical MNIST, Fashion-MNIST, CIFAR-10
and SVHN files, checksummed on load, split into seeded train / validation / test sets."""

from __future__ import annotations

from dse.trial.data.download import DownloadError, download
from dse.trial.data.formats import FormatError
from dse.trial.data.loaders import DATASET_NAMES, DatasetArrays, clear_cache, load_dataset
from dse.trial.data.locate import DATA_DIR_ENV, ChecksumError, cache_dir, search_dirs
from dse.trial.data.sources import SOURCES, Archive, DataFile, Source
from dse.trial.data.split import Splits, split

__all__ = [
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "SOURCES",
    "Archive",
    "ChecksumError",
    "DataFile",
    "DatasetArrays",
    "DownloadError",
    "FormatError",
    "Source",
    "Splits",
    "cache_dir",
    "clear_cache",
    "download",
    "load_dataset",
    "search_dirs",
    "split",
]
