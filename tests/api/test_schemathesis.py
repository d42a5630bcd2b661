"""A bounded property-based run of schemathesis against the service's OpenAPI schema: generated
requests to every operation never get a 5xx, and responses conform to the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.store import SqlStore
from tests.api.conftest import WRITE, fill_study, make_settings
from tests.api.factories import spec_dict, synthetic_records


@pytest.fixture
def api_schema(tmp_path: Path) -> Iterator[schemathesis.BaseSchema]:
    store = SqlStore(f"sqlite:///{tmp_path / 'fuzz.db'}")
    study, _ = store.create_study(spec_dict(), name="fuzzed", labels={"team": "api"})
    fill_study(store, study.id, synthetic_records(10))
    store.finish(study.id, "test-owner", "COMPLETED")
    app = create_app(make_settings(store.url), store=store)
    # The app's lifespan opens the results cache; from_asgi's client runs it per call.
    app.state.store = store
    from api.snapshot import ResultsCache

    app.state.results = ResultsCache(store)
    app.state.scheduler = None
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    store.close()


def test_no_server_errors_and_conforming_responses(api_schema: schemathesis.BaseSchema) -> None:
    fuzz(api_schema, max_examples=20)


@pytest.mark.slow  # about ten times the default run's examples per operation
def test_no_server_errors_and_conforming_responses_over_many_examples(api_schema: schemathesis.BaseSchema) -> None:
    fuzz(api_schema, max_examples=200)


def fuzz(api_schema: schemathesis.BaseSchema, *, max_examples: int) -> None:
    """Every operation with ``max_examples`` generated requests (a write token): no 5xx, and
    every response conforms to the schema."""
    # Each operation gets its own bounded Hypothesis run (schemathesis's pytest plugin does the
    # same; its fixture loader is not used because it relies on pytest internals).
    labels = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            # Excluded: "schema-valid input is accepted". Specs, metric names and objective or
            # constraint expressions are checked against each other and against the study's data,
            # which no JSON Schema expresses, so schema-valid nonsense rightly gets a 422 (the
            # route tests check those 422s name the field). Every other check runs.
            case.call_and_validate(headers=WRITE, excluded_checks=[positive_data_acceptance])

        run()
    assert "POST /v1/studies" in labels and "GET /v1/studies/{study_id}/pareto" in labels


@pytest.mark.parametrize(
    ("section", "field", "too_big"),
    [
        ("budget", "max_trials", 1_000_001),
        ("budget", "max_concurrent_trials", 10_001),
        ("budget", "max_failed_trials", 1_000_001),
        ("budget", "time_budget_s", 31_622_401.0),
        ("resources", "cpus", 4097.0),
        ("repeats", "count", 1001),
    ],
)
def test_the_request_schema_is_no_looser_than_the_validator(section: str, field: str, too_big: float) -> None:
    """What the validator refuses, the published schema refuses too (and both accept the bound)."""
    import jsonschema

    from api.routes.studies import _SPEC_SCHEMA
    from dse.errors import SpecError
    from dse.spec import load_spec

    for value, ok in ((too_big, False), (type(too_big)(too_big - 1), True)):
        part = {field: value}
        if section == "budget" and field != "max_trials":
            part["max_trials"] = 1_000_000  # other budget bounds are checked against it too
        data = spec_dict(**{section: part})
        schema_ok = jsonschema.Draft202012Validator(_SPEC_SCHEMA).is_valid(data)
        try:
            load_spec(data)
            validator_ok = True
        except SpecError:
            validator_ok = False
        assert (schema_ok, validator_ok) == (ok, ok), (section, field, value)
