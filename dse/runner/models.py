"""Models between Ray workers and the study's model store, without a shared file system.

The driver starts one :class:`ModelBroker` actor per study, on its own node, over the study's
:class:`~dse.models.ModelStore`. A worker's trial asks the broker for the model of its training
key (the bytes come through Ray's object store) and hands it the model it trained; only the
broker's node touches the store's directory. Model files are checked (SHA-256) when the broker
reads them and again when the worker decodes them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class ModelBroker:
    """The Ray actor in front of a model store (methods are called with ``.remote``)."""

    def __init__(self, root: str) -> None:
        from dse.models import ModelStore

        self.store = ModelStore(root)

    def has(self, key: str) -> bool:
        """Whether a model file for ``key`` exists (not checked)."""
        return key in self.store

    def fetch(self, key: str) -> bytes | None:
        """The checked model file of ``key``, or None (absent, or corrupt and set aside)."""
        return self.store.read(key)

    def keep(self, key: str, data: bytes) -> bool:
        """Store a model file (checked first)."""
        self.store.write(key, data)
        return True


def start_broker(root: str) -> Any:
    """A :class:`ModelBroker` actor on this driver's node (anywhere when the driver is a Ray
    client outside the cluster: the store is then on the node the actor lands on)."""
    import ray

    options: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 8}
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = ray.get_runtime_context().get_node_id()
        if node:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=True)
    except Exception as exc:  # noqa: BLE001 - a Ray client has no node of its own
        log.info("model broker placed by Ray (%s)", exc)
    actor = ray.remote(ModelBroker).options(**options).remote(root)
    ray.get(actor.has.remote("0" * 24))  # started and able to read the store
    return actor


class BrokerSource:
    """The :class:`~dse.models.ModelSource` a worker's trial uses: the study's broker."""

    def __init__(self, broker: Any, origin: Mapping[str, Any]) -> None:
        self.broker = broker
        self.origin = dict(origin)

    def fetch(self, key: str) -> bytes | None:
        import ray

        return ray.get(self.broker.fetch.remote(key))

    def keep(self, key: str, data: bytes) -> None:
        import ray

        ray.get(self.broker.keep.remote(key, data))
