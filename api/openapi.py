"""The service's OpenAPI document: error responses are documented as what they are, RFC 9457
problem details (``application/problem+json``), for every status an operation can return."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_JSON
from api.schemas import Problem

_DESCRIPTIONS = {
    "401": "Missing or unknown bearer token",
    "403": "Read-only token on a write",
    "404": "No such study or trial",
    "409": "Conflicts with the study's state",
    "413": "Body over the size limit",
    "415": "Body neither JSON nor YAML",
    "422": "Invalid input; `errors[].path` names the field",
    "503": "The study store is unavailable; retry later",
}


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with a generator that documents problem-details errors."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        ref = {"$ref": "#/components/schemas/Problem"}
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                statuses = {"422", "503"}
                if path.startswith("/v1/"):
                    statuses |= {"401"}
                    if "{study_id}" in path:
                        statuses.add("404")
                    if method in ("post", "delete", "put", "patch"):
                        statuses |= {"403", "413"}
                for status in statuses:
                    responses.setdefault(status, {"description": _DESCRIPTIONS[status]})
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = {PROBLEM_JSON: {"schema": ref}}
                        response.setdefault("description", _DESCRIPTIONS.get(status, "Error"))
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
