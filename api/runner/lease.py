"""``LeaseKeeper``: the runner's heartbeat, renewing its lease on the study and watching for a
cancel request or a lost lease."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from api.store import SqlStore

log = logging.getLogger("api.runner.lease")

EXIT_LEASE_LOST = 3


class LeaseKeeper:
    """Renews ``owner``'s lease every ``heartbeat_s``.

    Calls ``on_cancel`` once when a cancel is requested, and ``on_lost(reason)`` once when the
    lease is no longer ``owner``'s: ``reason`` says whether the store was unreachable for longer
    than the lease (it lapsed: "store unavailable ...") or another runner took the study. A runner that lost its lease must stop: if the process is still alive
    ``lease_s`` after that, the keeper ends it (exit status 3), so a stalled runner can never
    run alongside the one that took over. A renewal that fails because the database is
    unreachable is retried; the lease lapses on its own if that lasts ``lease_s``.
    """

    def __init__(
        self,
        store: SqlStore,
        study_id: str,
        owner: str,
        *,
        lease_s: float,
        heartbeat_s: float,
        on_cancel: Callable[[], None],
        on_lost: Callable[[str], None],
        hard_exit: bool = True,
    ) -> None:
        self.store = store
        self.study_id = study_id
        self.owner = owner
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.on_cancel = on_cancel
        self.on_lost = on_lost
        self.hard_exit = hard_exit
        self.lost = False
        self.lost_reason: str | None = None
        self.cancel_requested = False
        self._renewed_at = time.monotonic()
        self._outage: str | None = None  # the error of the renewals failing since the last success
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dse-lease", daemon=True)

    def start(self) -> None:
        """Renew once now (so a runner that cannot reach its study learns it at once), then
        keep renewing in the background."""
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease then lapses unless finished or released)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(self.heartbeat_s * 2)

    def beat(self) -> None:
        """One renewal."""
        if self.lost:
            return
        try:
            result = self.store.renew_lease(self.study_id, self.owner, self.lease_s)
        except Exception as exc:  # noqa: BLE001 - transient database errors: retry next beat
            log.warning("lease renewal of study %s failed: %s", self.study_id, exc)
            self._outage = f"{type(exc).__name__}: {exc}"
            return
        outage, self._outage = self._outage, None
        down_s = time.monotonic() - self._renewed_at
        if result is None:
            self.lost = True
            if outage is not None and down_s >= self.lease_s:
                self.lost_reason = (f"store unavailable for {down_s:.0f} s, longer than the "
                                    f"{self.lease_s:g} s lease, which lapsed ({outage})")
            else:
                self.lost_reason = "another runner owns the study now"
            self.on_lost(self.lost_reason)
            if self.hard_exit:
                timer = threading.Timer(self.lease_s, os._exit, args=(EXIT_LEASE_LOST,))
                timer.daemon = True
                timer.start()
            return
        self._renewed_at = time.monotonic()
        if result and not self.cancel_requested:
            self.cancel_requested = True
            self.on_cancel()

    def _loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.beat()
            if self.lost:
                return
