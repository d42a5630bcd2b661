"""Design-space exploration of analog in-memory-computing networks.

Heavy dependencies (torch, ray, optuna) are imported lazily by the modules that need them, so
``import dse`` and the spec / Pareto / results code stay light.
"""

from dse.errors import ConflictError, DSEError, NotFoundError, SpecError, TrialError

__all__ = ["ConflictError", "DSEError", "NotFoundError", "SpecError", "TrialError"]
