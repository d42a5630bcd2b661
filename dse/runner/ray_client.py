"""Studies on a cluster reached through Ray Client (``ray://host:10001``, e.g. a KubeRay head service).

Through Ray Client this process is not a Ray driver: Ray Tune would run its experiment as an
actor on the cluster, where this process's study loop (searcher, sink, listeners) does not exist.
So the study's driver moves to the cluster instead: :func:`run_through_ray_client` starts one task
(zero CPUs) that runs a plain :class:`~dse.runner.RayTuneRunner` there, on the cluster's Ray, and
relays every trial record and progress event back through a small actor. This process writes the
records to its own sink (the results directory of ``dse run``, the service's store) and hands the
events to its listeners (the progress bar), exactly as for a local run; a cancel or Ctrl-C here
is passed to the driver there.

What cannot work through Ray Client, and says so (:class:`RayClientUnsupported`):

- ``num_cpus`` (``dse run --num-cpus``) sizes a Ray started on this machine; the cluster has its own;
- a searcher *object* passed to the runner cannot be shipped; name it in ``spec.searcher``;
- the trial function and the datasets are loaded on the cluster's nodes: its module must be
  installed there, and data files (MNIST, ...) must be in the nodes' data directory
  (``dse data download`` on them; the embedded digits need nothing);
- a model store on this machine (``dse run``'s ``results/<study>/models``, ``--model-store``)
  is out of the cluster's reach: trained models are kept on the cluster for the run only (a
  warning says so).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dse.errors import DSEError

if TYPE_CHECKING:
    from dse.runner.ray_runner import RayTuneRunner, StudyOutcome

log = logging.getLogger(__name__)

SCHEME = "ray://"
SESSION_ATTEMPTS = 3
"""Tries to open a Ray Client session when the head fails to start its server process."""
SESSION_START_FAILED = "Initialization failure from server"
"""How Ray Client reports that the head failed to start a session (its server process died,
timed out, or raced with its own process check)."""
POLL_S = 0.25
"""Seconds between two collections of the relayed records and events."""


class RayClientUnsupported(DSEError):
    """A feature was asked for that cannot work through Ray Client (the message says what instead)."""


def is_ray_client_address(address: str | None) -> bool:
    """True for a Ray Client address (``ray://host:port``)."""
    return bool(address) and str(address).startswith(SCHEME)


class _Relay:
    """Actor between the driver task on the cluster and this process: records and events go up,
    a stop request comes down."""

    def __init__(self) -> None:
        self._items: list[tuple[str, Any]] = []
        self._stop: tuple[str, str] | None = None

    def put(self, kind: str, item: Any) -> None:
        self._items.append((kind, item))

    def drain(self) -> list[tuple[str, Any]]:
        items, self._items = self._items, []
        return items

    def request_stop(self, reason: str, message: str) -> None:
        if self._stop is None:
            self._stop = (reason, message)

    def stop_request(self) -> tuple[str, str] | None:
        return self._stop


class _RelaySink:
    """The driver's sink on the cluster: each record goes up to the relay."""

    def __init__(self, relay: Any) -> None:
        self.relay = relay

    def write_trial(self, record: Any) -> None:
        self.relay.put.remote("record", record)


def _drive(spec_dict: dict, history: list, trial_fn: str, options: dict, relay: Any) -> Any:
    """The study's driver, run as a task on the cluster (a normal Ray driver there)."""
    import importlib

    import ray

    from dse.runner.ray_runner import RayTuneRunner
    from dse.spec import load_spec

    module = trial_fn.partition(":")[0]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise RayClientUnsupported(
            f"trial function {trial_fn!r}: module {module!r} cannot be imported on the cluster ({exc}); "
            "through Ray Client trials run on the cluster's nodes: install the module there"
        ) from None
    spec = load_spec(spec_dict)
    runner = RayTuneRunner(spec, _RelaySink(relay), history=history, trial_fn=trial_fn,
                           listeners=[lambda event: relay.put.remote("event", event)], **options)
    done = threading.Event()

    def watch_stop() -> None:
        while not done.wait(POLL_S):
            request = ray.get(relay.stop_request.remote())
            if request is not None:
                runner.loop.stop(request[0], request[1])
                return

    threading.Thread(target=watch_stop, name="dse-ray-client-stop", daemon=True).start()
    try:
        outcome = runner.run()
    finally:
        done.set()
    ray.get(relay.put.remote("done", None))  # every earlier put from here is in the relay now
    return outcome


def connect_ray_client(address: str) -> Any:
    """``ray.init`` through Ray Client; a clear error when it is not installed or not reachable."""
    import ray

    try:
        import grpc  # noqa: F401 - Ray Client's transport
    except ImportError:
        raise RayClientUnsupported(
            f"address {address!r}: Ray Client needs grpcio, which is not installed; install the "
            "'ray-client' extra: pip install 'analog-dse[ray-client]'"
        ) from None
    for attempt in range(1, SESSION_ATTEMPTS + 1):
        try:
            return ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            # The head starts a server process per session; on a busy head that start can fail
            # once and succeed on the next try.
            session_failed = SESSION_START_FAILED in str(exc)
            if session_failed and attempt < SESSION_ATTEMPTS:
                log.warning("Ray Client at %s could not start a session (try %d of %d); retrying",
                            address, attempt, SESSION_ATTEMPTS)
                with contextlib.suppress(Exception):
                    ray.shutdown()
                time.sleep(2.0 * attempt)
                continue
            hint = (f"; the head could not start a session's server ({attempt} tries): see its "
                    "ray_client_server_*.err logs; on a busy head raise RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S "
                    "(default 30) in the head's environment" if session_failed else "")
            raise DSEError(
                f"cannot connect to the Ray Client server at {address!r}: {exc}. It listens on the head node "
                f"(`ray start --head --ray-client-server-port 10001`; KubeRay's head service port 10001){hint}"
            ) from exc
    raise DSEError(f"cannot connect to the Ray Client server at {address!r}")  # not reached: attempts >= 1


def run_through_ray_client(runner: RayTuneRunner, address: str) -> StudyOutcome:
    """Run ``runner``'s study with its driver on the cluster at ``address`` (see the module docstring)."""
    import ray

    if runner.num_cpus is not None:
        raise RayClientUnsupported(
            f"num_cpus={runner.num_cpus} (--num-cpus) sizes a Ray started on this machine and cannot apply "
            f"to the cluster at {address}; drop it (the cluster's nodes bring their CPUs)"
        )
    if runner.custom_searcher:
        raise RayClientUnsupported(
            "a searcher object cannot be shipped to the cluster through Ray Client; name the searcher in the "
            "spec (searcher: {type: ...}) instead"
        )
    if getattr(runner, "model_store", None):
        log.warning("through Ray Client the model store %s on this machine is not used: the study's trained "
                    "models are kept on the cluster for this run only", runner.model_store)
    if ray.is_initialized():
        raise DSEError(f"Ray is already initialized in this process; cannot connect to {address!r} as well")
    connect_ray_client(address)
    try:
        relay = ray.remote(num_cpus=0)(_Relay).remote()
        options = {"preload_datasets": runner.preload_datasets, "tick_s": runner.tick_s,
                   "reuse_actors": runner.reuse_actors, "max_retries": runner.max_retries,
                   "write_retry_s": runner.write_retry_s}
        task = ray.remote(num_cpus=0, max_retries=0)(_drive).remote(
            runner.spec.to_dict(), list(runner.history), runner.trial_fn, options, relay)
        with _sigint_requests_stop(runner):
            outcome = _follow(runner, relay, task)
        return outcome
    finally:
        ray.shutdown()


def _follow(runner: RayTuneRunner, relay: Any, task: Any) -> StudyOutcome:
    """Hand relayed records to the sink and events to the listeners until the driver is done."""
    import ray

    sink_error: Exception | None = None
    stop_sent = False
    finished = False
    outcome = None
    while True:
        for kind, item in ray.get(relay.drain.remote()):
            if kind == "record" and runner.sink is not None and sink_error is None:
                try:
                    runner.sink.write_trial(item)
                except Exception as exc:  # noqa: BLE001 - stops the study, reported below
                    sink_error = exc
                    runner.loop.stop("cancelled", f"the results sink refused a record: {exc}")
            elif kind == "event":
                for listener in runner.listeners:
                    listener(item)
            elif kind == "done":
                finished = True
        if finished:
            break
        if not stop_sent and runner.loop.stop_reason is not None:
            relay.request_stop.remote(runner.loop.stop_reason, runner.loop.stop_message or runner.loop.stop_reason)
            stop_sent = True
        ready, _ = ray.wait([task], timeout=POLL_S)
        if ready and outcome is None:
            outcome = ray.get(task)  # raises the driver's error (a bad resource request, ...)
    if sink_error is not None:
        raise DSEError(f"the study was stopped: its results sink refused a record: {sink_error}") from sink_error
    return outcome if outcome is not None else ray.get(task)


@contextlib.contextmanager
def _sigint_requests_stop(runner: RayTuneRunner) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        runner.loop.stop("interrupted", "interrupted (Ctrl-C); resume with --resume")
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
