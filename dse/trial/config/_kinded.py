"""Polymorphic trial-config sections whose kinds are named by a short ``type`` string."""

from __future__ import annotations

from typing import Any, ClassVar

from simulator._config import TYPE_KEY, Config


class KindedConfig(Config):
    """A polymorphic section whose concrete kinds are named by a short ``type`` string."""

    kind: ClassVar[str] = ""
    """The ``type`` value that selects this kind (set on each concrete class)."""

    @classmethod
    def kinds(cls) -> dict[str, type[Config]]:
        registry = cls.__dict__.get("_registry")
        return dict(registry) if registry else {}

    @classmethod
    def register(cls, *kinds: type[KindedConfig]) -> None:
        """Declare the concrete kinds a field annotated with ``cls`` may hold."""
        registry = cls.__dict__.get("_registry")
        if registry is None:
            registry = {}
            cls._registry = registry  # type: ignore[attr-defined]
        for kind in kinds:
            registry[kind.kind] = kind

    def to_dict(self) -> dict[str, Any]:
        return {TYPE_KEY: self.kind, **super().to_dict()}
