"""Errors of the DSE engine, grouped by what the caller should do about them."""

from __future__ import annotations


class DSEError(Exception):
    """Base class of every error the DSE engine raises on purpose."""


class SpecError(DSEError, ValueError):
    """A study spec or trial config is invalid (do not retry; fix the input).

    ``path`` is the dotted path of the offending field, e.g. ``parameters[2].target``.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class NotFoundError(DSEError, LookupError):
    """A study, trial, results directory or data file does not exist."""


class ConflictError(DSEError):
    """The request conflicts with the current state (e.g. results exist without --resume)."""


class TrialError(DSEError):
    """A trial failed (exception or divergence); recorded as the trial's error state."""
