"""Errors raised by the simulator package (one small tree)."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error the simulator raises on purpose."""


class ConfigError(SimulatorError, ValueError):
    """A configuration value is invalid.

    The message names the field by its dotted path, the value given and what is accepted.
    ``path`` holds the dotted path of the offending field (``""`` when it is the whole config).
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)

    def prefixed(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` put in front of its path (for nested configs)."""
        path = f"{prefix}.{self.path}" if self.path else prefix
        return ConfigError(path, self.reason)


class CheckpointError(SimulatorError):
    """A model file that cannot be loaded: not a model file, truncated, or its checksum does not
    match (the file is corrupt and must not be used)."""
