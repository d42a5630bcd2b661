"""Inputs that used to reach a 5xx: deep nesting, text no store can hold, non-finite thresholds.

Each answer is a 4xx problem naming the field, the same on SQLite and PostgreSQL (the ``store``
fixture runs both; PostgreSQL skips with its reason when it is not available).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.store import SqlStore
from tests.api.conftest import READ, WRITE, fill_study, make_settings
from tests.api.factories import spec_dict, synthetic_records


@pytest.fixture
def backend_client(store: SqlStore) -> Iterator[TestClient]:
    """The service over each backend's store (``raise_server_exceptions`` off: a 5xx is an answer
    the tests check for, not an exception)."""
    app = create_app(make_settings(store.url), store=store)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _problem(r, status: int, path: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    if path is not None:
        assert [e["path"] for e in body.get("errors", [])] == [path], body
        assert body["detail"].startswith(f"{path}: ")
    return body


class TestDeepNesting:
    DEPTH = 5000  # under the 1 MiB body limit: 10 kB of brackets

    def test_deeply_nested_json_is_a_422(self, backend_client: TestClient) -> None:
        body = json.dumps(spec_dict())[:-1] + ', "extra": ' + "[" * self.DEPTH + "]" * self.DEPTH + "}"
        r = backend_client.post("/v1/studies", content=body, headers={**WRITE, "content-type": "application/json"})
        assert "nested too deeply" in _problem(r, 422, "body")["detail"]

    def test_deeply_nested_yaml_is_a_422(self, backend_client: TestClient) -> None:
        text = yaml.safe_dump(spec_dict()) + "extra: " + "[" * self.DEPTH + "]" * self.DEPTH + "\n"
        r = backend_client.post("/v1/studies", content=text, headers={**WRITE, "content-type": "application/yaml"})
        assert "nested too deeply" in _problem(r, 422, "body")["detail"]

    def test_nesting_just_within_the_limit_reaches_the_spec_check(self, backend_client: TestClient) -> None:
        nested: object = 1
        for _ in range(40):
            nested = [nested]
        r = backend_client.post("/v1/studies", json=spec_dict(extra=nested), headers=WRITE)
        _problem(r, 422, "extra")  # an unknown field, named by the spec's own check


    def test_deep_nesting_in_query_texts_is_a_4xx(self, backend_client: TestClient, store: SqlStore) -> None:
        """Queries carry texts, not documents: brackets 5,000 deep in an objective, a constraint
        or a sort field are one invalid value naming its parameter, and in a label a value
        nobody has; never a parse of nested structure."""
        study, _ = store.create_study(spec_dict(), name="q")
        fill_study(store, study.id, synthetic_records(4))
        base = f"/v1/studies/{study.id}"
        deep = "[" * self.DEPTH + "]" * self.DEPTH
        for url, path in ((f"{base}/pareto?objectives={deep}", "query.objectives"),
                          (f"{base}/hypervolume?objectives=accuracy:max,{deep}", "query.objectives"),
                          (f"{base}/best?metric={deep}", "query.metric"),
                          (f"{base}/pareto?constraint={deep}", "query.constraint"),
                          (f"{base}/trials?sort={deep}", "query.sort")):
            r = backend_client.get(url, headers=READ)
            assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
            assert [e["path"].split("[")[0] for e in r.json()["errors"]] == [path], (url[:80], r.text[:300])
        r = backend_client.get(f"/v1/studies?label={deep}", headers=READ)
        assert r.status_code == 200 and r.json()["items"] == []  # a label nobody has


class TestTextNoStoreHolds:
    @pytest.mark.parametrize(
        ("changes", "path"),
        [
            ({"name": "a\x00b"}, "name"),
            ({"labels": {"team": "x\x00"}}, "labels.team"),
            ({"description": "lone \ud800 surrogate"}, "description"),
            ({"base": {"dataset": {"name": "digits"}, "model": {"name": "fcnn\x00", "hidden": [16]},
                       "training": {"epochs": 1, "lr": 0.1}}}, "base.model.name"),
        ],
    )
    def test_in_a_submitted_spec_is_a_422_naming_the_field(
        self, backend_client: TestClient, changes: dict, path: str
    ) -> None:
        body = json.dumps(spec_dict(**changes))  # ASCII with \u0000 / \ud800 escapes
        r = backend_client.post("/v1/studies", content=body, headers={**WRITE, "content-type": "application/json"})
        body = _problem(r, 422, path)
        assert "Retry-After" not in r.headers

    def test_in_a_query_or_path_is_a_422_naming_it(self, backend_client: TestClient) -> None:
        _problem(backend_client.get("/v1/studies?label=team%3Dx%00y", headers=READ), 422, "query.label")
        _problem(backend_client.get("/v1/studies/abc%00def", headers=READ), 422, "path")
        _problem(backend_client.get("/v1/studies?label=%ED%A0%80", headers=READ), 422, "query.label")


class TestNonFiniteThresholds:
    @pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
    def test_pareto_hypervolume_and_best_refuse_them(self, backend_client: TestClient, store: SqlStore,
                                                      value: str) -> None:
        study, _ = store.create_study(spec_dict(), name="q")
        fill_study(store, study.id, synthetic_records(4))
        base = f"/v1/studies/{study.id}"
        for url in (f"{base}/pareto?objectives=accuracy:max:{value}",
                    f"{base}/hypervolume?objectives=accuracy:max:{value},train_time_s:min",
                    f"{base}/best?metric=accuracy:max:{value}"):
            body = _problem(backend_client.get(url, headers=READ), 422)
            assert "not finite" in body["detail"], url
        assert backend_client.get(f"{base}/pareto?objectives=accuracy:max:0.5", headers=READ).status_code == 200


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "url", "allowed"),
        [
            ("put", "/v1/studies", "GET, POST"),
            ("post", "/v1/studies/abc", "DELETE, GET"),
            ("patch", "/v1/studies/abc/trials", "GET"),
            ("delete", "/healthz", "GET"),
        ],
    )
    def test_allow_lists_every_method_of_the_path(self, client: TestClient, method: str, url: str,
                                                   allowed: str) -> None:
        r = getattr(client, method)(url, headers=WRITE)
        assert r.status_code == 405 and r.headers["allow"] == allowed


class TestSubmitChecks:
    def test_an_objective_or_constraint_the_trial_function_does_not_produce_is_a_422(
        self, client: TestClient
    ) -> None:
        r = client.post("/v1/studies", json=spec_dict(objectives=["acuracy:max"]), headers=WRITE)
        body = _problem(r, 422, "objectives[0].metric")
        assert "'acuracy'" in body["detail"] and "energy_per_inference_nj" in body["detail"]
        r = client.post("/v1/studies", json=spec_dict(constraints=["n_tile <= 4"]), headers=WRITE)
        _problem(r, 422, "constraints[0].metric")
        ok = spec_dict(objectives=["accuracy:max", "energy_per_inference_nj:min", "accuracy_drift_1d:max"])
        assert client.post("/v1/studies", json=ok, headers=WRITE).status_code == 201

    @pytest.mark.parametrize(
        ("budget", "path", "accepted"),
        [
            ({"max_trials": 10**12}, "budget.max_trials", "from 1 to 1000000"),
            ({"max_concurrent_trials": 10**6}, "budget.max_concurrent_trials", "from 1 to 10000"),
            ({"max_failed_trials": 10**9}, "budget.max_failed_trials", "from 0 to 1000000"),
            ({"time_budget_s": 1e12}, "budget.time_budget_s", "<= 31622400"),
        ],
    )
    def test_budgets_have_upper_bounds_named_in_the_error(self, client: TestClient, budget: dict, path: str,
                                                          accepted: str) -> None:
        body = _problem(client.post("/v1/studies", json=spec_dict(budget=budget), headers=WRITE), 422, path)
        assert accepted in body["detail"]

    def test_cpus_beyond_the_largest_node_are_rejected_when_the_service_knows_it(
        self, sqlite_store: SqlStore
    ) -> None:
        app = create_app(make_settings(sqlite_store.url, node_cpus=8), store=sqlite_store)
        with TestClient(app) as c:
            r = c.post("/v1/studies", json=spec_dict(resources={"cpus": 16}), headers=WRITE)
            assert "at most 8" in _problem(r, 422, "resources.cpus")["detail"]
            assert c.post("/v1/studies", json=spec_dict(resources={"cpus": 8}), headers=WRITE).status_code == 201
        with TestClient(create_app(make_settings(sqlite_store.url), store=sqlite_store)) as c:
            r = c.post("/v1/studies", json=spec_dict(resources={"cpus": 1e9}), headers=WRITE)
            assert "<= 4096" in _problem(r, 422, "resources.cpus")["detail"]  # the spec's own bound
