"""The Python client of the study service's ``/v1`` API (``docs/client.md``).

>>> from dse.client import Client
>>> client = Client("http://127.0.0.1:8000", token="my-secret")   # or $DSE_SERVER / $DSE_TOKEN
>>> study = client.submit("configs/quickstart.yaml")
>>> study = client.wait(study.id)                  # follows the study's events to its end
>>> df = client.trials(study.id)                   # pandas, the columns of a local trials.parquet

Importing it loads neither torch nor Ray: only httpx, and pyarrow / pandas / matplotlib when a
method that needs them is called.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpx

from dse.client.errors import (
    ClientConfigError,
    RetryableError,
    ServerUnreachableError,
    WaitTimeoutError,
    error_from_problem,
)
from dse.client.events import SSEParser, StudyEvent
from dse.client.study import Study
from dse.client.transport import RetryPolicy, Transport

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from matplotlib.figure import Figure

    from dse.results import TrialRecord
    from dse.spec import StudySpec

SERVER_ENV = "DSE_SERVER"
"""Environment variable with the service's URL (``http://host:8000``)."""
TOKEN_ENV = "DSE_TOKEN"
"""Environment variable with the bearer token."""

EVENT_READ_TIMEOUT_S = 60.0
"""Longest silence on an event stream before it is taken as dropped (the service sends a
keep-alive comment every 15 s)."""

Objectives = Sequence[Any] | None
"""Objectives as ``"metric:min|max[:threshold]"`` strings, a study objective's name, or
:class:`dse.spec.ObjectiveSpec` objects; None: the study's own."""


class Client:
    """A connection to one ``dse serve``.

    Parameters:
        url: the service's base URL; default ``$DSE_SERVER``.
        token: a bearer token (read-only or read-write); default ``$DSE_TOKEN``; none: anonymous.
        timeout_s: timeout of each request (connect, read), in seconds.
        retry: how safe calls are retried (see :mod:`dse.client.transport`).
        reconnect_for_s: how long :meth:`wait` and :meth:`events` keep reconnecting to a service
            that went away (a restart, a dropped connection) before giving up.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        reconnect_for_s: float = 300.0,
        http: httpx.Client | None = None,
    ) -> None:
        url = url or os.environ.get(SERVER_ENV)
        if not url:
            raise ClientConfigError(
                f"url: no service URL given; pass --server URL (Client(url) in Python) or set ${SERVER_ENV}, "
                "e.g. http://127.0.0.1:8000"
            )
        token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.reconnect_for_s = reconnect_for_s
        self._sleep = time.sleep
        self._t = Transport(url, token, timeout_s=timeout_s, retry=retry or RetryPolicy(), http=http)

    @property
    def url(self) -> str:
        """The service's base URL."""
        return self._t.url

    def close(self) -> None:
        """Close the connection pool."""
        self._t.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- studies ----------------------------------------------------------------------------
    def submit(self, spec: Any, *, idempotency_key: str | None = None) -> Study:
        """Queue a study: a :class:`~dse.spec.StudySpec`, a spec dict, a path to a YAML / JSON
        file, or YAML text. Each call sends its own ``Idempotency-Key`` (``idempotency_key`` or a
        new random one), so a submit retried after a lost answer never creates a second study.
        An invalid spec raises :class:`~dse.client.errors.InvalidRequestError` naming the field."""
        content, media = _spec_body(spec)
        key = idempotency_key or uuid.uuid4().hex
        response = self._t.request(
            "POST",
            "/v1/studies",
            safe=True,  # the key makes a repeat return the first submission
            content=content,
            headers={"Content-Type": media, "Idempotency-Key": key},
        )
        return Study.from_json(response.json())

    def study(self, study_id: str) -> Study:
        """The study's state, trial counts, spec and best values so far."""
        return Study.from_json(self._get(f"/v1/studies/{_id(study_id)}").json())

    def studies(
        self, state: str | Sequence[str] | None = None, label: str | Sequence[str] | None = None
    ) -> list[Study]:
        """Every study (newest first), optionally only those in ``state`` (one or several) or
        with ``label`` (``key`` or ``key=value``, one or several)."""
        params: list[tuple[str, Any]] = [("state", s) for s in _list(state)]
        params += [("label", x) for x in _list(label)]
        out: list[Study] = []
        offset: int | None = 0
        while offset is not None:
            page = self._get("/v1/studies", params=[*params, ("limit", 1000), ("offset", offset)]).json()
            out.extend(Study.from_json(s) for s in page["items"])
            offset = page.get("next_offset")
        return out

    def cancel(self, study_id: str) -> Study:
        """Cancel a queued or running study (finished trials are kept); not retried."""
        response = self._t.request("POST", f"/v1/studies/{_id(study_id)}:cancel", safe=False)
        return Study.from_json(response.json())

    def delete(self, study_id: str) -> None:
        """Delete a study that is not running, with its trials; not retried."""
        self._t.request("DELETE", f"/v1/studies/{_id(study_id)}", safe=False)

    # -- following ------------------------------------------------------------------------------
    def events(self, study_id: str, *, since: int = 0, timeout_s: float | None = None) -> Iterator[StudyEvent]:
        """The study's server-sent events from event id ``since`` on, ending with its ``end``
        event. A dropped connection or a restarted service is reconnected with
        ``Last-Event-ID``, so no event is missed or repeated; after ``reconnect_for_s`` without
        a service, :class:`~dse.client.errors.ServerUnreachableError`; after ``timeout_s`` in
        all, :class:`~dse.client.errors.WaitTimeoutError`."""
        path = f"/v1/studies/{_id(study_id)}/events"
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last_id = since
        down_since: float | None = None
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = str(last_id)
            read_s = EVENT_READ_TIMEOUT_S if deadline is None else max(0.1, min(EVENT_READ_TIMEOUT_S, deadline - time.monotonic()))
            timeout = httpx.Timeout(self._t.timeout_s, read=read_s)
            problem: Exception | None = None
            try:
                with self._t.http.stream("GET", path, headers=headers, timeout=timeout) as response:
                    if response.status_code >= 400:
                        response.read()
                        error = error_from_problem(
                            response.status_code, response.content, method="GET", url=self.url + path,
                            retry_after=response.headers.get("Retry-After"),
                        )
                        raise error  # 429 / 503 are RetryableError: caught below, reconnected
                    down_since, failures = None, 0
                    parser = SSEParser()
                    for event in parser.feed(response.iter_lines()):
                        if event.id is not None:
                            last_id = max(last_id, event.id)
                        yield event
                        if event.kind == "end":
                            return
                # The stream closed without an ``end``: the service went away mid-study.
            except (httpx.TransportError, RetryableError) as exc:
                problem = exc
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise WaitTimeoutError(f"study {study_id}: not finished after {timeout_s:g} s (it goes on)")
            down_since = down_since if down_since is not None else now
            if now - down_since > self.reconnect_for_s:
                raise ServerUnreachableError(
                    f"GET {self.url}{path}: the event stream could not be resumed for "
                    f"{self.reconnect_for_s:g} s (last error: {problem!r})"
                ) from problem
            failures += 1
            self._sleep(self._t.retry.delay_s(min(failures, 6)))

    def wait(
        self,
        study_id: str,
        *,
        timeout_s: float | None = None,
        on_event: Callable[[StudyEvent], None] | None = None,
    ) -> Study:
        """Follow the study's events until it is over and return the final study.

        ``on_event`` is called with every event (trial writes, state changes, the end). The
        stream survives dropped connections and service restarts (see :meth:`events`);
        ``timeout_s`` bounds the whole wait (:class:`~dse.client.errors.WaitTimeoutError`)."""
        for event in self.events(study_id, timeout_s=timeout_s):
            if on_event is not None:
                on_event(event)
        return self.study(study_id)

    # -- trials -----------------------------------------------------------------------------
    def trials_table(self, study_id: str, table: str = "trials") -> pa.Table:
        """The study's ``trials`` (one row per trial) or ``measurements`` (per trial, repeat and
        epoch) as a pyarrow Table in the engine's Parquet schema."""
        import pyarrow.parquet as pq

        if table not in ("trials", "measurements"):
            raise ClientConfigError(f"table: got {table!r}; accepted: trials or measurements")
        response = self._get(f"/v1/studies/{_id(study_id)}/trials.parquet", params={"table": table})
        return pq.read_table(io.BytesIO(response.content))

    def trials(self, study_id: str) -> pd.DataFrame:
        """The study's trials as a pandas DataFrame: one row per trial, the columns of a local
        ``trials.parquet`` (``trial_id``, ``number``, ``state``, ``param.*``, ``metric.*``,
        ``metric_std.*``, ``n_repeats``, ``seeds``, ``repeat_metrics``, ``details``, times, ...)."""
        from dse.extras import require

        require("pandas", "Client.trials()")
        return self.trials_table(study_id).to_pandas()

    def measurements(self, study_id: str) -> pd.DataFrame:
        """Per-epoch reports as a pandas DataFrame (the columns of ``measurements.parquet``)."""
        from dse.extras import require

        require("pandas", "Client.measurements()")
        return self.trials_table(study_id, "measurements").to_pandas()

    def records(self, study_id: str) -> list[TrialRecord]:
        """The study's trials as the engine's :class:`~dse.results.TrialRecord` objects (what
        ``dse.pareto`` and ``dse.results.plots`` take), with their measurements."""
        from dse.results import records_from_tables

        return records_from_tables(self.trials_table(study_id), self.trials_table(study_id, "measurements"))

    def download_model(self, study_id: str, number: int, path: str | os.PathLike[str], *, repeat: int = 0) -> Path:
        """Write trial ``number``'s trained model (its training on the trial's evaluation chip,
        ``GET /v1/studies/{id}/trials/{n}/model``) to ``path`` and return it; load it with
        ``simulator.load_analog_model(path)``."""
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ClientConfigError(f"number: got {number!r}; accepted: a trial number >= 0")
        response = self._get(f"/v1/studies/{_id(study_id)}/trials/{number}/model", params={"repeat": repeat})
        out = Path(path)
        part = out.with_name(out.name + ".part")
        part.write_bytes(response.content)
        part.replace(out)
        return out

    def spec(self, study_id: str) -> StudySpec:
        """The study's spec as a :class:`~dse.spec.StudySpec`."""
        from dse.spec import load_spec

        return load_spec(self.study(study_id).spec, validate_targets=False)

    # -- results ----------------------------------------------------------------------------
    def pareto(self, study_id: str, objectives: Objectives = None, constraints: Sequence[Any] | None = None) -> dict:
        """The Pareto front computed by the service: ``{"objectives", "constraints", "points":
        {"trial", "rank", "values"}, "front": [trials]}`` (``docs/api.md``)."""
        params = _objective_params(objectives) + _constraint_params(constraints)
        return self._get(f"/v1/studies/{_id(study_id)}/pareto", params=params).json()

    def best(self, study_id: str, metric: Any = None, constraints: Sequence[Any] | None = None) -> dict:
        """The best trial for ``metric`` (a study objective's name or ``metric:min|max``; default
        the first objective) under the constraints: ``{"metric", "goal", "value", "trial"}``."""
        params: list[tuple[str, Any]] = []
        if metric is not None:
            params.append(("metric", _objective_text(metric)))
        params += _constraint_params(constraints)
        return self._get(f"/v1/studies/{_id(study_id)}/best", params=params).json()

    def hypervolume(
        self, study_id: str, objectives: Objectives = None, constraints: Sequence[Any] | None = None
    ) -> dict:
        """Normalized hypervolume of the first *n* trials for each *n*: ``{"history": [{"trials",
        "hypervolume"}], "normalization": ...}``."""
        params = _objective_params(objectives) + _constraint_params(constraints)
        return self._get(f"/v1/studies/{_id(study_id)}/hypervolume", params=params).json()

    # -- figures ----------------------------------------------------------------------------
    def plot_pareto(self, study_id: str, objectives: Objectives = None, *, constraints: bool = True) -> Figure:
        """The study's front and dominated points as a matplotlib Figure (see
        :func:`dse.results.plots.pareto_figure`)."""
        from dse.pareto import as_objectives
        from dse.results.plots import pareto_figure

        spec = self.spec(study_id)
        objs = as_objectives(list(objectives)) if objectives else tuple(spec.objectives)
        cons = tuple(spec.constraints) if constraints else ()
        return pareto_figure(self.records(study_id), objs, cons, title=spec.name)

    def plot_hypervolume(self, *study_ids: str, objectives: Objectives = None) -> Figure:
        """Hypervolume against trials of one or several studies on one Figure, normalized
        together so that the curves compare (see :func:`dse.results.plots.hypervolume_figure`)."""
        from dse.pareto import as_objectives
        from dse.results.plots import hypervolume_figure

        studies = [(self.spec(i), self.records(i)) for i in study_ids]
        if not studies:
            raise ClientConfigError("study_ids: got none; accepted: one or more study ids")
        objs = as_objectives(list(objectives)) if objectives else tuple(studies[0][0].objectives)
        return hypervolume_figure(studies, objs)

    # -- helpers ----------------------------------------------------------------------------
    def _get(self, path: str, params: Any = None) -> httpx.Response:
        return self._t.request("GET", path, safe=True, params=params)


def _id(study_id: str) -> str:
    if not isinstance(study_id, str) or not study_id or "/" in study_id:
        raise ClientConfigError(f"study_id: got {study_id!r}; accepted: a study id as the service gives it")
    return study_id


def _list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _objective_text(o: Any) -> str:
    if isinstance(o, str):
        return o
    if isinstance(o, Mapping) and "metric" in o:
        metric, goal, threshold = o["metric"], o.get("goal", "minimize"), o.get("threshold")
    elif hasattr(o, "metric") and hasattr(o, "goal"):
        metric, goal, threshold = o.metric, o.goal, getattr(o, "threshold", None)
    else:
        raise ClientConfigError(f"objectives: got {o!r}; accepted: 'metric:min|max' strings or ObjectiveSpec")
    short = "max" if goal in ("maximize", "max") else "min"
    return f"{metric}:{short}" + (f":{threshold!r}" if threshold is not None else "")


def _objective_params(objectives: Objectives) -> list[tuple[str, Any]]:
    return [("objectives", _objective_text(o)) for o in objectives or ()]


def _constraint_params(constraints: Sequence[Any] | None) -> list[tuple[str, Any]]:
    return [] if constraints is None else [("constraint", str(c)) for c in constraints]


def _spec_body(spec: Any) -> tuple[bytes, str]:
    """The request body and media type of a spec given as object, dict, path or YAML text."""
    if hasattr(spec, "to_dict") and callable(spec.to_dict):
        return json.dumps(spec.to_dict()).encode(), "application/json"
    if isinstance(spec, Mapping):
        return json.dumps(dict(spec)).encode(), "application/json"
    if isinstance(spec, str) and "\n" in spec:
        return spec.encode(), "application/yaml"
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"spec: {path}: no such file (pass a path, a dict, a StudySpec or YAML text)")
        media = "application/json" if path.suffix.lower() == ".json" else "application/yaml"
        return path.read_bytes(), media
    raise ClientConfigError(
        f"spec: got {type(spec).__name__}; accepted: a StudySpec, a dict, a path to a YAML / JSON file or YAML text"
    )
