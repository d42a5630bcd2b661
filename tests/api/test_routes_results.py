"""Trials, Pareto, best, hypervolume, Parquet and events endpoints against the engine's own
definitions (``dse.pareto`` on the same records)."""

from __future__ import annotations

import io
import json
import math

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.store import SqlStore
from dse import pareto as oracle
from dse.results import TrialRecord
from dse.spec import ConstraintSpec, load_spec
from tests.api.conftest import READ, WRITE, fill_study
from tests.api.factories import spec_dict, synthetic_records


@pytest.fixture
def study(client: TestClient, sqlite_store: SqlStore) -> tuple[str, list[TrialRecord]]:
    """A running study with 30 completed, 3 failed and 1 running trial."""
    sid = client.post("/v1/studies", json=spec_dict(), headers=WRITE).json()["id"]
    records = synthetic_records(30, seed=11) + synthetic_records(3, start=30, state="FAILED")
    records.append(TrialRecord.pending("trial-running", 33, {"lr": 0.1, "hidden": [16]}).start())
    fill_study(sqlite_store, sid, records)
    return sid, records


def _problem_path(r) -> str:  # noqa: ANN001 - httpx response
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
    return r.json()["errors"][0]["path"]


class TestTrials:
    def test_sorted_by_metric_with_missing_values_last(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        body = client.get(f"/v1/studies/{sid}/trials?sort=accuracy&order=desc&limit=100", headers=READ).json()
        with_acc = sorted(
            (r for r in records if "accuracy" in r.metrics), key=lambda r: (-r.metrics["accuracy"], r.number)
        )
        without = sorted(r.number for r in records if "accuracy" not in r.metrics)
        assert [t["number"] for t in body["items"]] == [r.number for r in with_acc] + without
        assert body["total"] == 34 and body["sort"] == "accuracy" and body["order"] == "desc"
        asc = client.get(f"/v1/studies/{sid}/trials?sort=train_time_s&limit=5", headers=READ).json()
        expect = sorted(
            (r for r in records if r.metrics), key=lambda r: (r.metrics["train_time_s"], r.number)
        )[:5]
        assert [t["number"] for t in asc["items"]] == [r.number for r in expect]

    def test_state_filter_and_pages(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, _ = study
        failed = client.get(f"/v1/studies/{sid}/trials?state=FAILED&state=RUNNING", headers=READ).json()
        assert [t["number"] for t in failed["items"]] == [30, 31, 32, 33]
        assert failed["items"][0]["error"] == "diverged: loss is NaN"
        pages, offset = [], 0
        while offset is not None:
            page = client.get(f"/v1/studies/{sid}/trials?limit=7&offset={offset}", headers=READ).json()
            pages += [t["number"] for t in page["items"]]
            offset = page["next_offset"]
        assert pages == list(range(34))

    def test_trial_fields_and_detail(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        item = client.get(f"/v1/studies/{sid}/trials?limit=1", headers=READ).json()["items"][0]
        rec = records[0]
        assert item["trial_id"] == rec.trial_id and item["params"] == rec.params and item["node"] == "node-0"
        assert item["metrics"] == rec.metrics and item["duration_s"] == pytest.approx(
            rec.duration_s, abs=1e-4
        )
        assert item["finished_at"].endswith("Z")
        detail = client.get(f"/v1/studies/{sid}/trials/0", headers=READ).json()
        assert detail["repeat_metrics"] == [dict(m) for m in rec.repeat_metrics]
        assert [(m["epoch"], m["metrics"]) for m in detail["measurements"]] == [
            (m.epoch, dict(m.metrics)) for m in rec.measurements
        ]

    def test_trial_errors(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, _ = study
        r = client.get(f"/v1/studies/{sid}/trials?sort=nonsense", headers=READ)
        assert _problem_path(r) == "query.sort" and "accuracy" in r.json()["detail"]
        assert (
            _problem_path(client.get(f"/v1/studies/{sid}/trials?state=DONE", headers=READ))
            == "query.state[0]"
        )
        assert _problem_path(client.get(f"/v1/studies/{sid}/trials?order=up", headers=READ)) == "query.order"
        assert client.get(f"/v1/studies/{sid}/trials/999", headers=READ).status_code == 404
        assert _problem_path(client.get(f"/v1/studies/{sid}/trials/abc", headers=READ)) == "path.number"

    def test_parquet_export_reads_back(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        r = client.get(f"/v1/studies/{sid}/trials.parquet", headers=READ)
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(r.content))
        assert table.num_rows == 34 and table.column("number").to_pylist() == list(range(34))
        acc = table.column("metric.accuracy").to_pylist()
        assert acc[:30] == [rec.metrics["accuracy"] for rec in records[:30]]
        meas = pq.read_table(
            io.BytesIO(
                client.get(f"/v1/studies/{sid}/trials.parquet?table=measurements", headers=READ).content
            )
        )
        assert meas.num_rows == sum(len(rec.measurements) for rec in records)


class TestResults:
    def test_pareto_matches_the_engine(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        spec = load_spec(spec_dict())
        body = client.get(f"/v1/studies/{sid}/pareto", headers=READ).json()
        front = oracle.pareto_front(records, spec.objectives, spec.constraints)
        assert [t["number"] for t in body["front"]] == [t.number for t in front] and front
        ranks = oracle.rank_trials(records, spec.objectives, spec.constraints)
        got = dict(zip(body["points"]["trial"], body["points"]["rank"]))
        for rec in records:
            expected = ranks[rec.trial_id]
            if expected is not None:
                assert got[rec.number] == expected
            elif rec.state.value == "COMPLETED":
                assert got[rec.number] == -1  # completed but over the n_params constraint
            else:
                assert rec.number not in got
        assert -1 in got.values()
        assert body["objectives"][0] == {"metric": "accuracy", "goal": "maximize", "threshold": 0.5}
        assert body["constraints"] == ["n_params <= 5000"]

    def test_pareto_over_other_metrics_and_constraints(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        q = "objectives=accuracy,n_params:min&constraint=train_time_s <= 8"
        body = client.get(f"/v1/studies/{sid}/pareto?{q}", headers=READ).json()
        objs = ["accuracy:max", "n_params:min"]
        cons = [ConstraintSpec.from_dict("train_time_s <= 8", "c")]
        assert [t["number"] for t in body["front"]] == [
            t.number for t in oracle.pareto_front(records, objs, cons)
        ]
        values = dict(zip(body["points"]["trial"], body["points"]["values"]))
        assert values[0] == [records[0].metrics["accuracy"], records[0].metrics["n_params"]]

    def test_pareto_errors(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, _ = study
        assert (
            _problem_path(client.get(f"/v1/studies/{sid}/pareto?objectives=n_params", headers=READ))
            == "query.objectives[0]"
        )
        assert (
            _problem_path(client.get(f"/v1/studies/{sid}/pareto?objectives=accuracy:up", headers=READ))
            == "query.objectives[0]"
        )
        assert (
            _problem_path(
                client.get(f"/v1/studies/{sid}/pareto?objectives=accuracy,accuracy:min", headers=READ)
            )
            == "query.objectives"
        )
        assert (
            _problem_path(client.get(f"/v1/studies/{sid}/pareto?constraint=accuracy%20~%201", headers=READ))
            == "query.constraint[0]"
        )

    def test_best_under_constraints(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        default = client.get(f"/v1/studies/{sid}/best", headers=READ).json()
        spec = load_spec(spec_dict())
        expect = oracle.best_trials(records, spec.objectives, spec.constraints)["accuracy"]
        assert default["metric"] == "accuracy" and default["trial"]["number"] == expect.number
        assert default["value"] == expect.metrics["accuracy"]
        r = client.get(
            f"/v1/studies/{sid}/best?metric=train_time_s:min&constraint=accuracy>=0.6", headers=READ
        )
        expect = oracle.best_trials(
            records, ["train_time_s:min"], [ConstraintSpec.from_dict("accuracy >= 0.6", "c")]
        )
        assert r.json()["trial"]["number"] == expect["train_time_s"].number
        assert r.json()["constraints"] == ["accuracy >= 0.6"]
        none = client.get(
            f"/v1/studies/{sid}/best?metric=accuracy:max&constraint=accuracy>=2", headers=READ
        ).json()
        assert none["trial"] is None and none["value"] is None
        assert (
            _problem_path(client.get(f"/v1/studies/{sid}/best?metric=a:b:c:d", headers=READ))
            == "query.metric[0]"  # the parameter the client sent
        )

    def test_hypervolume_history_matches_the_engine(self, client: TestClient, study) -> None:  # noqa: ANN001
        sid, records = study
        spec = load_spec(spec_dict())
        body = client.get(f"/v1/studies/{sid}/hypervolume", headers=READ).json()
        expect = oracle.hypervolume_history(records, spec.objectives, spec.constraints)
        assert body["history"] and body["history"][-1]["trials"] == len(records)
        for point in body["history"]:
            assert point["hypervolume"] == pytest.approx(expect[point["trials"] - 1], rel=1e-12, abs=1e-15)
        assert body["history"][-1]["hypervolume"] == pytest.approx(
            oracle.study_hypervolume(records, spec.objectives, spec.constraints), rel=1e-12
        )
        norm = oracle.normalization_for(records, spec.objectives, spec.constraints)
        assert body["normalization"]["reference"] == list(norm.reference)
        four = "accuracy:max,train_time_s:min,n_params:min,lr:min"
        assert (
            _problem_path(client.get(f"/v1/studies/{sid}/hypervolume?objectives={four}", headers=READ))
            == "query.objectives"
        )

    def test_results_of_an_empty_study(self, client: TestClient) -> None:
        sid = client.post("/v1/studies", json=spec_dict(), headers=WRITE).json()["id"]
        pareto = client.get(f"/v1/studies/{sid}/pareto", headers=READ).json()
        assert pareto["front"] == [] and pareto["points"] == {"trial": [], "rank": [], "values": []}
        assert client.get(f"/v1/studies/{sid}/hypervolume", headers=READ).json()["history"] == []
        assert client.get(f"/v1/studies/{sid}/best", headers=READ).json()["trial"] is None
        assert client.get(f"/v1/studies/{sid}/trials", headers=READ).json()["items"] == []


def _events(text: str) -> list[tuple[str, int | None, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in fields:
            out.append(
                (fields["event"], int(fields["id"]) if "id" in fields else None, json.loads(fields["data"]))
            )
    return out


class TestEvents:
    def test_finished_study_replays_its_trials_then_ends(
        self, client: TestClient, sqlite_store: SqlStore
    ) -> None:
        sid = client.post("/v1/studies", json=spec_dict(), headers=WRITE).json()["id"]
        fill_study(sqlite_store, sid, synthetic_records(5))
        sqlite_store.finish(sid, "test-owner", "COMPLETED")
        with client.stream("GET", f"/v1/studies/{sid}/events", headers=READ) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = _events(r.read().decode())
        kinds = [e[0] for e in events]
        assert kinds == ["trial"] * 5 + ["study", "end"]
        assert [e[2]["number"] for e in events[:5]] == [0, 1, 2, 3, 4]
        ids = [e[1] for e in events]
        assert ids == sorted(ids)
        assert events[-2][2]["state"] == "COMPLETED" and events[-1][2] == {"state": "COMPLETED"}
        # Resuming from the third trial's id replays only what came after it.
        with client.stream(
            "GET", f"/v1/studies/{sid}/events", headers={**READ, "Last-Event-ID": str(ids[2])}
        ) as r:
            later = _events(r.read().decode())
        assert [e[2]["number"] for e in later if e[0] == "trial"] == [3, 4]
        with client.stream("GET", f"/v1/studies/{sid}/events?since={ids[4]}", headers=READ) as r:
            assert [e[0] for e in _events(r.read().decode())] == ["study", "end"]

    def test_bad_last_event_id(self, client: TestClient) -> None:
        sid = client.post("/v1/studies", json=spec_dict(), headers=WRITE).json()["id"]
        r = client.get(f"/v1/studies/{sid}/events", headers={**READ, "Last-Event-ID": "x"})
        assert _problem_path(r) == "header.Last-Event-ID"


def test_nan_metrics_are_strings_not_invalid_json(client: TestClient, sqlite_store: SqlStore) -> None:
    sid = client.post("/v1/studies", json=spec_dict(), headers=WRITE).json()["id"]
    rec = (
        TrialRecord.pending("nan-trial", 0, {"lr": 0.2})
        .start()
        .complete([{"accuracy": float("nan"), "train_time_s": float("inf"), "n_params": 10.0}])
    )
    fill_study(sqlite_store, sid, [rec])
    r = client.get(f"/v1/studies/{sid}/trials", headers=READ)
    item = json.loads(r.text)["items"][0]  # strict JSON: NaN would not parse as a number here
    assert item["metrics"] == {"accuracy": "NaN", "train_time_s": "Infinity", "n_params": 10.0}
    assert math.isnan(sqlite_store.records(sid)[0].metrics["accuracy"])
    assert client.get(f"/v1/studies/{sid}/pareto", headers=READ).json()["front"] == []
