"""What a study pays for running through Ray Client (``ray://``) instead of as a Ray driver.

Starts one Ray head on this machine (``ray start --head``, token authentication, its Ray Client
server on another port) and runs the same study of N instant trials
(``dse.runner.synthetic:instant_trial``: every second is engine overhead) twice with ``dse run``:
with the head's GCS address (this process is the driver: the baseline) and with its
``ray://`` address (the driver runs as a task on the cluster and relays every record and event
back, see ``dse/runner/ray_client.py``). Both write a results directory here.

Prints one JSON object per line (see HOUSE_STYLE.md):

- ``case: ray-client/<N>-trials``: seconds per trial of ``dse run`` end to end (process start to
  exit), against ``gcs-address/<N>-trials``;
- ``case: ray-client/steady``: seconds per trial from the first trial's start to the last one's
  end (over N - 1 trials), against the same span of the baseline.

    .venv/bin/python benchmarks/ray_client_overhead.py [--trials 40] [--cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dse.results import TrialState, read_trials

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s:g} s")


def spec_text(trials: int, cpus: int) -> str:
    return (
        "name: ray-client-overhead\n"
        "base: {dataset: {name: digits}, model: {name: fcnn, hidden: [32]}, training: {epochs: 1}}\n"
        "parameters:\n"
        "  - {name: lr, target: training.lr, type: float, low: 0.01, high: 0.5, log: true}\n"
        "objectives: [{metric: accuracy, goal: max}]\n"
        "searcher: {type: random, seed: 0}\n"
        f"budget: {{max_trials: {trials}, max_concurrent_trials: {cpus}}}\n"
    )


def run_study(address: str, spec: Path, results: Path, env: dict[str, str]) -> dict[str, float]:
    start = time.perf_counter()
    run = subprocess.run(
        [str(BIN / "dse"), "run", str(spec), "--address", address, "--results", str(results), "--quiet",
         "--trial-fn", "dse.runner.synthetic:instant_trial"],
        env=env, capture_output=True, text=True, timeout=1800, check=False,
    )
    total = time.perf_counter() - start
    if run.returncode != 0:
        raise RuntimeError(f"dse run --address {address} failed:\n{run.stdout}\n{run.stderr}")
    records = read_trials(results)
    done = [r for r in records if r.state is TrialState.COMPLETED]
    first = min(r.started_at for r in done)
    last = max(r.finished_at for r in done)
    return {"total_s": total, "trials": len(done), "steady_s": (last - first).total_seconds()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    temp = Path(tempfile.mkdtemp(prefix="dse-rcb-"))
    token = temp / "token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "DSE_"))}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S="180")  # a session's server start on a busy host
    port, client_port = free_port(), free_port()
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--port", str(port), "--ray-client-server-port", str(client_port),
         "--num-cpus", str(args.cpus), "--include-dashboard", "false", "--temp-dir", str(temp / "ray"),
         "--block", "--disable-usage-stats", "--object-store-memory", str(100 * 1024 * 1024)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        wait_port(client_port)
        spec = temp / "study.yaml"
        spec.write_text(spec_text(args.trials, args.cpus))
        base = run_study(f"127.0.0.1:{port}", spec, temp / "direct", env)
        client = run_study(f"ray://127.0.0.1:{client_port}", spec, temp / "client", env)
    finally:
        head.terminate()
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)
    n = args.trials
    rows = [
        ("ray-client", f"{n}-trials", client["total_s"] / n, f"gcs-address/{n}-trials", base["total_s"] / n),
        ("ray-client", "steady", client["steady_s"] / (n - 1), "gcs-address/steady", base["steady_s"] / (n - 1)),
    ]
    for bench, case, value, baseline_case, baseline in rows:
        print(json.dumps({"bench": "ray_client", "case": f"{bench}/{case}", "value": round(value, 4),
                          "unit": "s/trial", "baseline_case": baseline_case, "baseline_value": round(baseline, 4),
                          "ratio": round(value / baseline, 3), "trials": n, "cpus": args.cpus}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
