"""Analog crossbar simulator in pure PyTorch."""

from simulator.errors import ConfigError, SimulatorError

__all__ = ["ConfigError", "SimulatorError"]
