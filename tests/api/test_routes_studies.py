"""Studies endpoints, auth and request errors, through TestClient (no scheduler)."""

from __future__ import annotations

import json
import re

import yaml
from fastapi.testclient import TestClient

from api.store import SqlStore
from tests.api.conftest import READ, WRITE, fill_study
from tests.api.factories import spec_dict, synthetic_records


def _submit(client: TestClient, **changes: object) -> dict:
    r = client.post("/v1/studies", json=spec_dict(**changes), headers=WRITE)
    assert r.status_code == 201, r.text
    return r.json()


def _problem(r, status: int, slug: str | None = None) -> dict:  # noqa: ANN001 - httpx response
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if slug is not None:
        assert body["type"] == f"urn:analog-dse:problem:{slug}"
    return body


class TestSubmit:
    def test_json_submission_is_queued_with_its_spec(self, client: TestClient) -> None:
        r = client.post("/v1/studies", json=spec_dict(), headers=WRITE)
        assert r.status_code == 201
        body = r.json()
        assert r.headers["location"] == f"/v1/studies/{body['id']}"
        assert body["state"] == "QUEUED" and body["name"] == "api-test"
        assert body["labels"] == {"team": "api", "kind": "unit"}
        assert body["trials"] == {
            "total": 0,
            "by_state": {s: 0 for s in body["trials"]["by_state"]},
            "budget": 40,
        }
        assert body["spec"]["budget"]["max_trials"] == 40 and body["best"] == [] and body["runs"] == 0
        assert [o["metric"] for o in body["objectives"]] == ["accuracy", "train_time_s"]

    def test_yaml_submission_matches_json(self, client: TestClient) -> None:
        text = yaml.safe_dump(spec_dict())
        r = client.post("/v1/studies", content=text, headers={**WRITE, "Content-Type": "application/yaml"})
        assert r.status_code == 201, r.text
        assert r.json()["spec"] == _submit(client)["spec"]

    def test_idempotency_key_makes_retries_safe(self, client: TestClient) -> None:
        h = {**WRITE, "Idempotency-Key": "nb-42"}
        first = client.post("/v1/studies", json=spec_dict(), headers=h)
        retry = client.post("/v1/studies", json=spec_dict(), headers=h)
        assert first.status_code == 201 and retry.status_code == 200
        assert retry.json()["id"] == first.json()["id"]
        assert client.get("/v1/studies", headers=READ).json()["total"] == 1
        other = client.post("/v1/studies", json=spec_dict(name="different"), headers=h)
        body = _problem(other, 422, "request-id-reuse")
        assert body["errors"][0]["path"] == "header.Idempotency-Key" and "nb-42" in body["detail"]

    def test_invalid_spec_names_the_field(self, client: TestClient) -> None:
        bad = spec_dict(objectives=[{"metric": "accuracy", "goal": "upwards"}])
        body = _problem(client.post("/v1/studies", json=bad, headers=WRITE), 422, "invalid-spec")
        assert body["errors"] == [{"path": "objectives[0].goal", "message": body["errors"][0]["message"]}]
        assert "'upwards'" in body["detail"] and "minimize or maximize" in body["detail"]

    def test_bad_target_path_names_the_parameter(self, client: TestClient) -> None:
        bad = spec_dict(
            parameters=[
                {"name": "x", "target": "training.no_such_field", "type": "float", "low": 0.1, "high": 1.0}
            ]
        )
        body = _problem(client.post("/v1/studies", json=bad, headers=WRITE), 422, "invalid-spec")
        assert body["errors"][0]["path"].startswith("parameters[0]")

    def test_bodies_that_are_not_specs(self, client: TestClient) -> None:
        r = client.post(
            "/v1/studies", content=b"{not json", headers={**WRITE, "Content-Type": "application/json"}
        )
        assert _problem(r, 422, "invalid-request")["errors"][0]["path"] == "body"
        r = client.post("/v1/studies", json=[1, 2], headers=WRITE)
        assert "a mapping" in _problem(r, 422, "invalid-request")["detail"]
        r = client.post("/v1/studies", content=b"a: [", headers={**WRITE, "Content-Type": "text/yaml"})
        assert "YAML" in _problem(r, 422)["detail"]
        r = client.post(
            "/v1/studies", content=b"\xff\xfe", headers={**WRITE, "Content-Type": "application/json"}
        )
        assert "UTF-8" in _problem(r, 422)["detail"]
        r = client.post("/v1/studies", content=b"name: x", headers={**WRITE, "Content-Type": "text/plain"})
        assert "header.Content-Type" in _problem(r, 415, "unsupported-media-type")["detail"]

    def test_body_size_limit(self, client: TestClient) -> None:
        big = json.dumps(spec_dict(description="x" * 2_000_000)).encode()
        r = client.post("/v1/studies", content=big, headers={**WRITE, "Content-Type": "application/json"})
        assert "at most 1048576 bytes" in _problem(r, 413, "body-too-large")["detail"]

        def chunks():  # no Content-Length: the limit applies while streaming
            for _ in range(40):
                yield b" " * 65536

        r = client.post(
            "/v1/studies", content=chunks(), headers={**WRITE, "Content-Type": "application/json"}
        )
        _problem(r, 413, "body-too-large")


class TestAuth:
    def test_missing_and_unknown_tokens_get_401(self, client: TestClient) -> None:
        r = client.get("/v1/studies")
        assert _problem(r, 401, "unauthorized") and r.headers["www-authenticate"].startswith("Bearer")
        r = client.get("/v1/studies", headers={"Authorization": "Bearer nope"})
        assert "invalid_token" in r.headers["www-authenticate"] and r.status_code == 401
        r = client.get("/v1/studies", headers={"Authorization": "Basic dGVzdDp0ZXN0"})
        assert r.status_code == 401

    def test_read_only_token_reads_but_cannot_write(self, client: TestClient) -> None:
        sid = _submit(client)["id"]
        assert client.get(f"/v1/studies/{sid}", headers=READ).status_code == 200
        _problem(client.post("/v1/studies", json=spec_dict(), headers=READ), 403, "forbidden")
        _problem(client.post(f"/v1/studies/{sid}:cancel", headers=READ), 403)
        _problem(client.delete(f"/v1/studies/{sid}", headers=READ), 403)

    def test_health_docs_and_dashboard_need_no_token(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok"}
        docs = client.get("/docs")
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()
        for asset in re.findall(r'(?:src|href)="(/static/swagger/[^"]+)"', docs.text):
            assert client.get(asset).status_code == 200, asset  # served here, works offline
        assert "/static/swagger/swagger-ui-bundle.js" in docs.text
        paths = client.get("/openapi.json").json()["paths"]
        for p in (
            "/v1/studies",
            "/v1/studies/{study_id}",
            "/v1/studies/{study_id}:cancel",
            "/v1/studies/{study_id}/trials",
            "/v1/studies/{study_id}/trials/{number}",
            "/v1/studies/{study_id}/pareto",
            "/v1/studies/{study_id}/best",
            "/v1/studies/{study_id}/hypervolume",
            "/v1/studies/{study_id}/trials.parquet",
            "/v1/studies/{study_id}/events",
            "/healthz",
            "/readyz",
        ):
            assert p in paths, p
        assert "<table" in client.get("/").text and 'id="pareto-plot"' in client.get("/studies/abc").text
        assert client.get("/static/study.js").status_code == 200


class TestListShowCancelDelete:
    def test_list_paginates_newest_first_and_filters(self, client: TestClient) -> None:
        ids = [_submit(client, name=f"s{i}", labels={"team": "a" if i % 2 else "b"})["id"] for i in range(5)]
        page = client.get("/v1/studies?limit=2&offset=0", headers=READ).json()
        assert [s["id"] for s in page["items"]] == ids[::-1][:2]
        assert page["total"] == 5 and page["next_offset"] == 2 and page["limit"] == 2
        last = client.get("/v1/studies?limit=2&offset=4", headers=READ).json()
        assert [s["id"] for s in last["items"]] == [ids[0]] and last["next_offset"] is None
        team_a = client.get("/v1/studies?label=team=a", headers=READ).json()
        assert {s["id"] for s in team_a["items"]} == {ids[1], ids[3]}
        assert client.get("/v1/studies?label=team", headers=READ).json()["total"] == 5
        assert client.get("/v1/studies?label=missing", headers=READ).json()["total"] == 0
        client.post(f"/v1/studies/{ids[2]}:cancel", headers=WRITE)
        cancelled = client.get("/v1/studies?state=CANCELLED", headers=READ).json()
        assert [s["id"] for s in cancelled["items"]] == [ids[2]]

    def test_list_rejects_bad_parameters(self, client: TestClient) -> None:
        body = _problem(client.get("/v1/studies?state=DONE", headers=READ), 422, "invalid-request")
        assert body["errors"][0]["path"] == "query.state[0]" and "QUEUED" in body["detail"]
        assert (
            _problem(client.get("/v1/studies?limit=5000", headers=READ), 422)["errors"][0]["path"]
            == "query.limit"
        )
        assert (
            _problem(client.get("/v1/studies?limit=0", headers=READ), 422)["errors"][0]["path"]
            == "query.limit"
        )
        assert (
            _problem(client.get("/v1/studies?offset=-1", headers=READ), 422)["errors"][0]["path"]
            == "query.offset"
        )

    def test_show_counts_elapsed_and_best(self, client: TestClient, sqlite_store: SqlStore) -> None:
        sid = _submit(client)["id"]
        records = synthetic_records(12, seed=3) + synthetic_records(2, start=12, state="FAILED")
        fill_study(sqlite_store, sid, records)
        body = client.get(f"/v1/studies/{sid}", headers=READ).json()
        assert body["state"] == "RUNNING" and body["runs"] == 1 and body["elapsed_s"] >= 0
        assert body["trials"]["total"] == 14 and body["trials"]["by_state"]["COMPLETED"] == 12
        assert body["trials"]["by_state"]["FAILED"] == 2 and body["progress"] == 14 / 40
        feasible = [r for r in records if r.state.value == "COMPLETED" and r.metrics["n_params"] <= 5000]
        best_acc = max(feasible, key=lambda r: (r.metrics["accuracy"], -r.number))
        best_time = min(feasible, key=lambda r: (r.metrics["train_time_s"], r.number))
        assert body["best"] == [
            {
                "metric": "accuracy",
                "goal": "maximize",
                "value": best_acc.metrics["accuracy"],
                "trial": best_acc.number,
            },
            {
                "metric": "train_time_s",
                "goal": "minimize",
                "value": best_time.metrics["train_time_s"],
                "trial": best_time.number,
            },
        ]
        assert body["metrics"] == ["accuracy", "n_params", "train_time_s"]

    def test_unknown_study_is_a_404_problem(self, client: TestClient) -> None:
        for method, path in [
            ("GET", "/v1/studies/nope"),
            ("POST", "/v1/studies/nope:cancel"),
            ("DELETE", "/v1/studies/nope"),
            ("GET", "/v1/studies/nope/trials"),
            ("GET", "/v1/studies/nope/pareto"),
            ("GET", "/v1/studies/nope/events"),
        ]:
            r = client.request(method, path, headers=WRITE)
            assert "nope" in _problem(r, 404, "not-found")["detail"], path

    def test_cancel_then_conflict(self, client: TestClient, sqlite_store: SqlStore) -> None:
        queued = _submit(client)["id"]
        r = client.post(f"/v1/studies/{queued}:cancel", headers=WRITE)
        assert r.status_code == 200 and r.json()["state"] == "CANCELLED"
        _problem(client.post(f"/v1/studies/{queued}:cancel", headers=WRITE), 409, "conflict")
        running = _submit(client)["id"]
        fill_study(sqlite_store, running, synthetic_records(3))
        r = client.post(f"/v1/studies/{running}:cancel", headers=WRITE)
        assert r.json()["state"] == "CANCELLING" and r.json()["trials"]["total"] == 3

    def test_delete(self, client: TestClient, sqlite_store: SqlStore) -> None:
        running = _submit(client)["id"]
        fill_study(sqlite_store, running, synthetic_records(2))
        assert (
            "cancel it first"
            in _problem(client.delete(f"/v1/studies/{running}", headers=WRITE), 409)["detail"]
        )
        done = _submit(client)["id"]
        client.post(f"/v1/studies/{done}:cancel", headers=WRITE)
        r = client.delete(f"/v1/studies/{done}", headers=WRITE)
        assert r.status_code == 204 and r.content == b""
        _problem(client.get(f"/v1/studies/{done}", headers=READ), 404)

    def test_framework_errors_are_problems_too(self, client: TestClient) -> None:
        body = _problem(client.get("/v1/nothing-here", headers=READ), 404)
        assert body["type"] == "about:blank" and body["title"] == "Not Found"
        _problem(client.put("/v1/studies", headers=WRITE), 405)
