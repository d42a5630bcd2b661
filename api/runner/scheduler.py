"""The scheduler: a thread in the service that starts study runners, outside the request path.

Every ``scheduler_interval_s`` it

1. reaps the runner processes it started, every one of them (a runner that lost its lease may
   still be exiting when its study's next runner starts), and ends what an exited runner left
   in its process group (a local Ray's processes); a runner that died while holding its study's
   lease gives the study back to the queue at once, instead of waiting for the lease to lapse;
2. if it holds the ``scheduler`` lock (one scheduler acts at a time, however many service
   processes share the database), counts the RUNNING studies with a live lease and, up to
   ``max_running_studies``, takes over the RUNNING studies whose lease lapsed (their runner died
   with a crashed service: they are resumed) and then the oldest QUEUED ones: it acquires the
   study's lease for a fresh runner identity and starts ``python -m api.runner.process``.

Runner processes run in their own session: a service killed outright leaves them running and
still renewing their leases, so a restarted service neither loses their work nor starts a
second runner for the same study. A graceful stop of the service sends them SIGTERM; they give
their study back to the queue (state QUEUED) and the next start resumes it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

from api.model_store import model_store_dir
from api.settings import Settings
from api.store import SqlStore

log = logging.getLogger("api.scheduler")

LOCK_NAME = "scheduler"
STARTUP_GRACE_S = 30.0
"""Extra lease time for a runner that is still starting (interpreter, imports) before its first
renewal."""


@dataclass
class _Child:
    study_id: str
    owner: str
    process: subprocess.Popen[bytes]
    log_path: Path


class Scheduler:
    """Starts, watches and stops the study runner processes of one service process."""

    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{token_hex(4)}"
        self._children: dict[str, _Child] = {}  # by lease owner: one study may have an exiting runner and a new one
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self.last_error: str | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduling thread."""
        self._thread = threading.Thread(target=self._loop, name="dse-scheduler", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """The scheduling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Run a pass now (after a submission) instead of at the next interval."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop scheduling; ask this process's runners to give their studies back (SIGTERM)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        for child in list(self._children.values()):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in list(self._children.values()):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("runner of study %s did not stop; killing it", child.study_id)
                child.process.kill()
                child.process.wait()
            self.store.release_lease(child.study_id, child.owner)
        self._children.clear()
        try:
            self.store.release_lock(LOCK_NAME, self.identity)
        except Exception:  # noqa: BLE001 - the lock lapses on its own
            log.exception("could not release the scheduler lock")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 - keep scheduling; the store may come back
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("scheduler pass failed")
            self._wake.wait(self.settings.scheduler_interval_s)
            self._wake.clear()

    # -- one pass -------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[str]:
        """Reap finished runners and start new ones; returns the ids of studies started."""
        self._reap()
        lock_s = max(5 * self.settings.scheduler_interval_s, self.settings.lease_s)
        if not self.store.acquire_lock(LOCK_NAME, self.identity, lock_s):
            return []
        now = time.time() if now is None else now
        running = self.store.running_studies()
        live = [s for s in running if s.lease_expires_at is not None and s.lease_expires_at >= now]
        lapsed = sorted((s for s in running if s not in live), key=lambda s: s.created_at)
        free = self.settings.max_running_studies - len(live)
        if free <= 0:
            return []
        candidates = [s.id for s in lapsed] + self.store.queued_studies(free)
        started = []
        for study_id in candidates:
            if len(started) >= free:
                break
            if self._launch(study_id):
                started.append(study_id)
        return started

    def _launch(self, study_id: str) -> bool:
        owner = f"{socket.gethostname()}:{token_hex(8)}"
        if not self.store.acquire_lease(study_id, owner, self.settings.lease_s + STARTUP_GRACE_S):
            return False
        study = self.store.get_study(study_id)
        if study.runs > self.settings.max_study_runs:
            self.store.finish(
                study_id,
                owner,
                "FAILED",
                error=(
                    f"the study's runner was started {study.runs - 1} times without finishing "
                    f"(max_study_runs = {self.settings.max_study_runs}); see the runner logs"
                ),
            )
            return False
        log_path = self._log_dir() / f"{study_id}.log"
        cmd = [
            sys.executable,
            "-m",
            "api.runner.process",
            "--study",
            study_id,
            "--owner",
            owner,
            "--database-url",
            self.settings.database_url,
            "--lease-s",
            str(self.settings.lease_s),
            "--heartbeat-s",
            str(self.settings.heartbeat_s),
        ]
        if self.settings.ray_address:
            cmd += ["--ray-address", self.settings.ray_address]
        if self.settings.trial_function:
            cmd += ["--trial-function", self.settings.trial_function]
        cmd += ["--model-store", str(model_store_dir(self.settings, self.store))]
        try:
            with open(log_path, "ab") as out:
                process = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=os.getcwd(),
                    env=_runner_env(),
                )
        except OSError:
            log.exception("could not start the runner of study %s", study_id)
            self.store.release_lease(study_id, owner)
            return False
        log.info(
            "study %s: runner pid %d started (run %d, log %s)", study_id, process.pid, study.runs, log_path
        )
        self._children[owner] = _Child(study_id, owner, process, log_path)
        return True

    def _reap(self) -> None:
        for owner, child in list(self._children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self._children[owner]
            _end_group(child.process.pid)
            study_id = child.study_id
            if self.store.release_lease(study_id, child.owner):
                # It died holding the lease (killed, crashed): back to the queue to be resumed.
                log.warning(
                    "runner of study %s exited with %s without finishing; requeued (log %s)",
                    study_id,
                    code,
                    child.log_path,
                )

    def _log_dir(self) -> Path:
        if self.settings.runner_log_dir:
            path = Path(self.settings.runner_log_dir)
        elif self.store.dialect == "sqlite" and self.store.engine.url.database not in (None, "", ":memory:"):
            path = Path(self.store.engine.url.database).resolve().parent / "runner-logs"
        else:
            path = Path(tempfile.gettempdir()) / "dse-runner-logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def children(self) -> dict[str, int]:
        """Study id -> pid of the runners this scheduler started and that are still running
        (the newest, when an exiting runner and its successor overlap)."""
        return {c.study_id: c.process.pid for c in self._children.values() if c.process.poll() is None}


def _end_group(pgid: int) -> None:
    """SIGKILL what is left of an exited runner's process group (it leads its own session): the
    processes of a Ray it started locally, which would otherwise outlive it."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _runner_env() -> dict[str, str]:
    env = dict(os.environ)
    # The runner imports the project from the same place as the service.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
