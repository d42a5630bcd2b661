"""The seeded train / validation / test split a trial trains and reports on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.trial.data.loaders import DatasetArrays


@dataclass(frozen=True)
class Splits:
    """Index arrays into a :class:`DatasetArrays`: train and validation come from its training
    set, test from its test set."""

    train: np.ndarray
    """Indices of the training examples (into ``train_x``)."""
    validation: np.ndarray
    """Indices of the validation examples (into ``train_x``), disjoint from ``train``."""
    test: np.ndarray
    """Indices of the test examples (into ``test_x``)."""


def split(data: DatasetArrays, validation_fraction: float, seed: int, *,
          max_train_samples: int | None = None, max_test_samples: int | None = None) -> Splits:
    """Seeded split: the same arguments give the same indices on every machine.

    The training set (optionally subsampled to ``max_train_samples`` first) is permuted with
    ``numpy.random.default_rng(seed)`` and its first ``round(fraction · n)`` examples (at least
    one) become the validation set. ``max_test_samples`` keeps a seeded subset of the test set.
    """
    rng = np.random.default_rng([seed, 0x5711])
    n = len(data.train_y)
    order = rng.permutation(n)
    if max_train_samples is not None and max_train_samples < n:
        order = order[:max_train_samples]
    n_val = min(len(order) - 1, max(1, int(round(validation_fraction * len(order)))))
    validation = np.sort(order[:n_val])
    train = order[n_val:]
    n_test = len(data.test_y)
    if max_test_samples is not None and max_test_samples < n_test:
        test = np.sort(rng.permutation(n_test)[:max_test_samples])
    else:
        test = np.arange(n_test)
    return Splits(train=np.sort(train), validation=validation, test=test)
