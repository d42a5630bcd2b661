"""End to end over real HTTP: ``dse serve`` on loopback runs ``configs/quickstart.yaml``; the
events follow it to the end and the Pareto front equals one computed from the Parquet export."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.api.server import READ_TOKEN, ROOT, ServiceProcess

pytestmark = [pytest.mark.ray, pytest.mark.integration]

QUICKSTART = ROOT / "configs" / "quickstart.yaml"


def read_events(response: Any) -> list[tuple[str, dict]]:
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and name is not None:
            events.append((name, json.loads("\n".join(data))))
            if name == "end":
                break
            name, data = None, []
    return events


def dominates(a: list[float], b: list[float], goals: list[str]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere."""
    better = [x < y if g == "minimize" else x > y for x, y, g in zip(a, b, goals)]
    no_worse = [x <= y if g == "minimize" else x >= y for x, y, g in zip(a, b, goals)]
    return all(no_worse) and any(better)


def front_from_parquet(data: bytes, spec: dict) -> set[int]:
    """Non-dominated trial numbers by brute force (O(n²)) over the exported rows."""
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    goals = [o["goal"] for o in spec["objectives"]]
    cols = [f"metric.{o['metric']}" for o in spec["objectives"]]
    feasible = []
    for row in rows:
        values = [row.get(c) for c in cols]
        if row["state"] != "COMPLETED" or any(v is None or not math.isfinite(v) for v in values):
            continue
        ok = True
        for c in spec.get("constraints", []):
            v = row.get(f"metric.{c['metric']}")
            ok &= (
                v is not None
                and math.isfinite(v)
                and (v <= c["bound"] if c["op"] == "<=" else v >= c["bound"])
            )
        if ok:
            feasible.append((row["number"], values))
    return {n for n, v in feasible if not any(dominates(w, v, goals) for _, w in feasible)}


def trimmed_quickstart() -> bytes:
    """configs/quickstart.yaml with 4 trials of 2 epochs: the same study, small enough for the
    default test run (the full file runs in the slow test below)."""
    spec = yaml.safe_load(QUICKSTART.read_text())
    spec["budget"] = {**spec.get("budget", {}), "max_trials": 4}
    spec["base"]["training"]["epochs"] = 2
    spec["searcher"] = (
        {**spec["searcher"], "n_startup_trials": 4}
        if isinstance(spec["searcher"], dict)
        else spec["searcher"]
    )
    return yaml.safe_dump(spec).encode()


def test_quickstart_over_http(tmp_path: Path, ray_session: Any) -> None:
    run_over_http(tmp_path, ray_session, trimmed_quickstart())


@pytest.mark.slow
def test_full_quickstart_over_http(tmp_path: Path, ray_session: Any) -> None:
    run_over_http(tmp_path, ray_session, QUICKSTART.read_bytes())


def run_over_http(tmp_path: Path, ray_session: Any, body: bytes) -> None:
    service = ServiceProcess(
        f"sqlite:///{tmp_path / 'e2e.db'}",
        tmp_path / "service.log",
        ray_address=ray_session.get_runtime_context().gcs_address,
        heartbeat_s="0.5",
        lease_s="5",
    ).start()
    try:
        with service.client() as http:
            r = http.post("/v1/studies", content=body, headers={"Content-Type": "application/yaml"})
            assert r.status_code == 201, r.text
            study = r.json()
            sid = study["id"]
            assert study["spec"]["name"] == yaml.safe_load(QUICKSTART.read_text())["name"]
            with http.stream(
                "GET",
                f"/v1/studies/{sid}/events",
                timeout=900,
                headers={"Authorization": f"Bearer {READ_TOKEN}"},
            ) as resp:
                assert resp.status_code == 200
                events = read_events(resp)
            assert events[-1] == ("end", {"state": "COMPLETED"}), service.output()[-3000:]
            finished = {e["number"] for name, e in events if name == "trial" and e["state"] == "COMPLETED"}
            body = http.get(f"/v1/studies/{sid}").json()
            assert (
                body["state"] == "COMPLETED" and body["trials"]["by_state"]["COMPLETED"] == len(finished) > 0
            )
            assert body["best"] and body["progress"] == 1.0
            spec = body["spec"]
            pareto = http.get(f"/v1/studies/{sid}/pareto").json()
            export = http.get(f"/v1/studies/{sid}/trials.parquet")
            assert export.status_code == 200
            assert {t["number"] for t in pareto["front"]} == front_from_parquet(export.content, spec)
            assert pq.read_table(io.BytesIO(export.content)).num_rows == body["trials"]["total"]
            history = http.get(f"/v1/studies/{sid}/hypervolume").json()["history"]
            if len(spec["objectives"]) > 1:
                assert history and 0 < history[-1]["hypervolume"] <= 1
            assert "Pareto" in http.get(f"/studies/{sid}").text
    finally:
        service.stop()
