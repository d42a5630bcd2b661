"""A real service process for end-to-end tests: ``python -m dse.cli serve`` on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
WRITE_TOKEN = "e2e-write-token"
READ_TOKEN = "e2e-read-token"


class ServiceProcess:
    """``dse serve`` in a subprocess; the port is the one uvicorn reports binding."""

    def __init__(self, database_url: str, log_path: Path, **settings: str) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.settings = settings
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self._lines: list[str] = []

    def start(self, timeout_s: float = 120.0) -> ServiceProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DSE_") or k.startswith("DSE_TEST_")}
        env.update(
            {
                "DSE_DATABASE_URL": self.database_url,
                "DSE_WRITE_TOKENS": WRITE_TOKEN,
                "DSE_READ_TOKENS": READ_TOKEN,
                "DSE_PORT": "0",
                "DSE_RUNNER_LOG_DIR": str(self.log_path.parent / "runner-logs"),
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({f"DSE_{k.upper()}": v for k, v in self.settings.items()})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dse.cli", "serve"],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        found = threading.Event()

        def pump() -> None:
            assert self.process is not None and self.process.stdout is not None
            with open(self.log_path, "a") as log:
                for line in self.process.stdout:
                    log.write(line)
                    log.flush()
                    self._lines.append(line)
                    m = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
                    if m:
                        self.url = m.group(1)
                        found.set()

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not found.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start:\n" + "".join(self._lines[-40:]))
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the service never became ready:\n" + "".join(self._lines[-40:]))

    def client(self, token: str = WRITE_TOKEN) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers run."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return "".join(self._lines)


def runner_pids(study_id: str) -> list[int]:
    """Pids of the runner processes of a study (from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"api.runner.process" in cmd and study_id.encode() in cmd:
            pids.append(int(entry.name))
    return pids


def wait_gone(pids: list[int], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not [p for p in pids if _alive(p)]:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes {pids} still alive")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped
