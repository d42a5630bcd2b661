"""A study runner process: drives one study with the DSE engine, writing to the SQL store.

Started by the service's scheduler as
``python -m api.runner.process --study ID --owner OWNER --database-url URL ...`` after it took the
study's lease for ``OWNER``. The runner

- renews the lease every ``--heartbeat-s`` (a :class:`~api.runner.lease.LeaseKeeper` thread),
  which also picks up cancel requests; if the lease is lost (another runner took over after this
  one stalled), the runner stops at once and writes nothing more (the store refuses its writes);
- resumes from the trials already in the store: finished trials are not run again;
- writes every trial's record to the store as it changes (one transaction per write, so a
  finished trial survives any crash from then on);
- records the end: COMPLETED, CANCELLED (after a cancel request: running trials are stopped and
  recorded CANCELLED, finished ones kept) or FAILED with the error;
- on SIGTERM (the service stopping gracefully) gives the study back to the queue (QUEUED) and
  exits; the next service start resumes it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from typing import Any

from api.runner.lease import LeaseKeeper
from api.store import SqlStore

log = logging.getLogger("api.runner")

EXIT_OK = 0
EXIT_LEASE_LOST = 3
EXIT_NOT_OWNER = 4


class StoreSink:
    """The engine's ``TrialSink`` writing to the store under this runner's lease."""

    def __init__(self, store: SqlStore, study_id: str, owner: str) -> None:
        self.store = store
        self.study_id = study_id
        self.owner = owner

    def write_trial(self, record: Any) -> None:
        """Write one record (refused with ConflictError once the lease is lost)."""
        self.store.write_trial(self.study_id, record, owner=self.owner)


def run(
    study_id: str,
    owner: str,
    store: SqlStore,
    *,
    lease_s: float,
    heartbeat_s: float,
    ray_address: str | None = None,
    trial_function: str | None = None,
    model_store: str | None = None,
) -> int:
    """Drive the study to its end; returns the process exit status."""
    from api import engine  # the engine's spec schema (torch- and Ray-free)
    from api.runner import drive  # the engine's runner (imports Ray lazily)

    study = store.get_study(study_id)
    if study.lease_owner != owner:
        log.error("study %s is not leased to %s (owner %s); exiting", study_id, owner, study.lease_owner)
        return EXIT_NOT_OWNER
    cancel = threading.Event()
    keeper = LeaseKeeper(
        store,
        study_id,
        owner,
        lease_s=lease_s,
        heartbeat_s=heartbeat_s,
        on_cancel=cancel.set,
        on_lost=lambda reason: _lost(cancel, reason),
    )
    keeper.start()
    if keeper.lost:
        return EXIT_LEASE_LOST

    def _terminate(signum: int, _frame: Any) -> None:
        # Graceful service stop: hand the study back to the queue; finished trials are stored,
        # unfinished ones are re-run when the study resumes.
        keeper.stop()
        store.release_lease(study_id, owner)
        log.info("study %s: signal %d, returned to the queue", study_id, signum)
        os._exit(EXIT_OK)

    signal.signal(signal.SIGTERM, _terminate)
    try:
        spec = engine.load_stored_spec(study.spec)
        records = store.records(study_id)
        log.info("study %s: run %d, %d trials already stored", study_id, study.runs, len(records))
        outcome = drive.run_study(
            spec,
            StoreSink(store, study_id, owner),
            resume=records,
            cancel=cancel,
            address=ray_address,
            trial_function=trial_function,
            model_store=model_store,
        )
        if keeper.lost:
            return EXIT_LEASE_LOST
        state, error = outcome.state, outcome.error
    except Exception as exc:  # noqa: BLE001 - recorded as the study's error
        if keeper.lost:
            return EXIT_LEASE_LOST
        log.exception("study %s failed", study_id)
        state, error = "FAILED", f"{type(exc).__name__}: {exc}\n{_tail(exc)}"
    finally:
        keeper.stop()
    store.abandon_unfinished_trials(study_id, reason=f"study {state.lower()}")
    if not store.finish(study_id, owner, state, error=error):
        log.error("study %s: lease lost before the end could be recorded", study_id)
        return EXIT_LEASE_LOST
    log.info("study %s: %s", study_id, state)
    return EXIT_OK


def _lost(cancel: threading.Event, reason: str) -> None:
    log.error("lease lost: %s; stopping", reason)
    cancel.set()


def _tail(exc: BaseException, limit: int = 6) -> str:
    return "".join(traceback.format_exception(exc, limit=-limit)[-limit:]).strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.runner.process", description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True, help="study id")
    parser.add_argument(
        "--owner", required=True, help="the lease owner the scheduler acquired for this runner"
    )
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL of the store")
    parser.add_argument("--lease-s", type=float, required=True, help="lease duration in seconds")
    parser.add_argument("--heartbeat-s", type=float, required=True, help="seconds between renewals")
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster address (default: RAY_ADDRESS or local)"
    )
    parser.add_argument("--trial-function", default=None, help="module:function run per trial")
    parser.add_argument("--model-store", default=None, help="directory of the trained models")
    args = parser.parse_args(argv)
    from dse.runner.cluster import protect_local_ray

    protect_local_ray(args.ray_address)  # a local Ray of this runner only: before Ray is imported
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = SqlStore(args.database_url, create=False)
    try:
        return run(
            args.study,
            args.owner,
            store,
            lease_s=args.lease_s,
            heartbeat_s=args.heartbeat_s,
            ray_address=args.ray_address,
            trial_function=args.trial_function,
            model_store=args.model_store,
        )
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
