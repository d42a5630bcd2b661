"""The service's one door to the DSE engine's spec schema: parsing submitted studies and reading
their objectives, constraints and budget (``dse.spec``; no torch, no Ray)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from api.errors import ProblemError, invalid
from dse.errors import SpecError
from dse.metric_names import DEFAULT_TRIAL_FN, check_study_metrics
from dse.spec import ConstraintSpec, ObjectiveSpec, StudySpec, load_spec

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def parse_spec_body(body: bytes, content_type: str | None, trial_function: str | None = None) -> StudySpec:
    """A study spec from a request body (JSON or YAML, the CLI's schema); errors name the field.
    Objectives and constraints must name metrics the trial function (``trial_function``, default
    the engine's) declares."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in JSON_TYPES + YAML_TYPES:
        raise ProblemError(
            415,
            "unsupported-media-type",
            f"header.Content-Type: got {media!r}; accepted: one of {', '.join(JSON_TYPES + YAML_TYPES)}",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(
            "body", f"<{len(body)} bytes>", f"UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        data = json.loads(text) if media in JSON_TYPES else yaml.safe_load(text)
    except RecursionError:
        raise _too_deep() from None
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if media in JSON_TYPES else "YAML"
        raise ProblemError(
            422,
            "invalid-request",
            f"body: not valid {kind}: {exc}",
            errors=[{"path": "body", "message": f"not valid {kind}: {exc}"}],
        ) from None
    if not isinstance(data, Mapping):
        raise invalid(
            "body", _short(data), "a mapping (the study spec: name, base, parameters, objectives, ...)"
        )
    if nesting_depth(data) > MAX_NESTING:
        raise _too_deep()
    check_storable(data)
    try:
        spec = load_spec(dict(data))
    except SpecError:
        raise
    except ValueError as exc:
        # A configuration error from below the engine carries the field's dotted path.
        path = getattr(exc, "path", "") or "body"
        raise SpecError(path, getattr(exc, "reason", str(exc))) from None
    check_study_metrics(spec.objectives, spec.constraints, trial_function or DEFAULT_TRIAL_FN)
    return spec


MAX_NESTING = 64
"""Deepest nesting of mappings and lists accepted in a submitted spec (a real one needs under 10)."""


def nesting_depth(data: Any) -> int:
    """How deeply mappings and lists nest in ``data`` (a scalar: 0), without recursion; counting
    stops past :data:`MAX_NESTING`."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING:
            stack.extend((child, depth + 1) for child in children)
    return deepest


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (SQLite and PostgreSQL alike), or None: PostgreSQL's text
    and JSONB hold no NUL character and only valid UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate at position {exc.start}"
    return None


def check_storable(data: Any) -> None:
    """Raise a 422 naming the first string (key or value) of a submitted spec that a store
    cannot hold (the path as the spec's errors name it: ``base.model.name``, ``labels.team``)."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, here = stack.pop()
        if isinstance(node, str):
            why = text_problem(node)
            if why is not None:
                raise invalid(here or "body", _short(node), f"text without NUL characters or lone surrogates ({why})")
        elif isinstance(node, Mapping):
            for key, value in node.items():
                where = f"{here}.{key}" if here else str(key)
                why = text_problem(key) if isinstance(key, str) else None
                if why is not None:
                    raise invalid(f"{here or 'body'} (a key)", _short(key),
                                  f"text without NUL characters or lone surrogates ({why})")
                stack.append((value, where))
        elif isinstance(node, list):
            stack.extend((value, f"{here}[{i}]") for i, value in enumerate(node))


def _too_deep() -> ProblemError:
    message = f"nested too deeply; accepted: mappings and lists at most {MAX_NESTING} levels deep"
    return ProblemError(422, "invalid-request", f"body: {message}", errors=[{"path": "body", "message": message}])


def check_resources(spec: StudySpec, node_cpus: float | None, node_gpus: float | None) -> None:
    """A 422 when one trial asks for more CPUs or GPUs than the cluster's largest node has."""
    for name, asked, most in (("cpus", spec.resources.cpus, node_cpus), ("gpus", spec.resources.gpus, node_gpus)):
        if most is not None and asked > most:
            raise invalid(f"resources.{name}", asked,
                          f"at most {most:g}, the {name.upper()} of the cluster's largest node (a trial "
                          "asking for more could never start)")


def spec_dict(spec: StudySpec) -> dict[str, Any]:
    """The spec in its dict form (what is stored, and what ``load_spec`` reads back)."""
    return spec.to_dict()


def load_stored_spec(data: Mapping[str, Any]) -> StudySpec:
    """The spec of a stored study."""
    return load_spec(dict(data))


def spec_labels(spec: StudySpec) -> dict[str, str]:
    """The spec's labels as ``{key: value}`` (a list of plain labels maps each to ``""``)."""
    labels = getattr(spec, "labels", None) or {}
    if isinstance(labels, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in labels.items()}
    return {str(label): "" for label in labels}


def objectives(spec: StudySpec) -> list[ObjectiveSpec]:
    """The spec's objectives, in order."""
    return list(spec.objectives)


def constraints(spec: StudySpec) -> list[ConstraintSpec]:
    """The spec's constraints."""
    return list(spec.constraints)


def max_trials(spec: StudySpec) -> int | None:
    """The trial budget, if the spec bounds it."""
    value = getattr(spec.budget, "max_trials", None)
    return None if value is None else int(value)


def parse_objectives(
    texts: Sequence[str], spec: StudySpec, path: str = "query.objectives"
) -> list[ObjectiveSpec]:
    """Objectives from query values: ``metric:min|max[:threshold]``, or a bare ``metric`` that is
    one of the study's objectives (its goal and threshold are used). Comma lists are split."""
    known = {o.metric: o for o in spec.objectives}
    out: list[ObjectiveSpec] = []
    for i, item in enumerate(_split(texts)):
        here = f"{path}[{i}]"
        if ":" not in item:
            if item not in known:
                raise invalid(
                    here,
                    item,
                    "METRIC:min|max[:THRESHOLD], or one of the study's objectives "
                    f"({', '.join(known) or 'none'}) by name",
                )
            out.append(known[item])
        else:
            out.append(ObjectiveSpec.parse(item, here))
    names = [o.metric for o in out]
    if len(set(names)) != len(names):
        raise invalid(path, ",".join(names), "each metric at most once")
    return out


def parse_constraints(texts: Sequence[str], path: str = "query.constraint") -> list[ConstraintSpec]:
    """Constraints from query values (``"n_tiles <= 16"``; comma lists are split)."""
    return [ConstraintSpec.from_dict(item, f"{path}[{i}]") for i, item in enumerate(_split(texts))]


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or None."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _split(texts: Sequence[str]) -> list[str]:
    return [part.strip() for text in texts for part in text.split(",") if part.strip()]


def _short(value: Any, limit: int = 80) -> Any:
    text = repr(value)
    return value if len(text) <= limit else text[: limit - 3] + "..."
