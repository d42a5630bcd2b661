"""Static checks of deploy/docker-compose.yaml: the compose-spec schema, the service graph, health
checks, and consistency with the image, the service's settings and the example environment."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import _dockerfile as df
from tests.deploy.conftest import COMPOSE, COMPOSE_ENV_EXAMPLE, COMPOSE_GPU, DEPLOY, DOCKERFILE, ROOT

IMAGE_SERVICES = {"ray-head": "head", "ray-worker-1": "worker", "ray-worker-2": "worker", "api": "api"}
SECRETS = {"DSE_RAY_AUTH_TOKEN", "DSE_POSTGRES_PASSWORD", "DSE_WRITE_TOKENS"}

# $$, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME
VARIABLE = re.compile(r"\$(?:(?P<escape>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_]\w*))")
BRACED = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:(?P<op>:-|-|:\?|\?)(?P<arg>.*))?$", re.S)


class MissingVariable(LookupError):
    """A ``${NAME:?message}`` variable is not set."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable interpolation, applied to every string in ``value``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        if match.group("escape"):
            return "$"
        if match.group("plain"):
            return env.get(match.group("plain"), "")
        parts = BRACED.match(match.group("braced"))
        if parts is None:
            raise ValueError(f"invalid interpolation ${{{match.group('braced')}}}")
        name, op, arg = parts.group("name"), parts.group("op"), parts.group("arg")
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":-" and not current:
            return interpolate(arg, env)
        if op == "-" and current is None:
            return interpolate(arg, env)
        return current or ""

    return VARIABLE.sub(sub, value)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def variables(data: Any) -> dict[str, str | None]:
    """Every variable referenced in the strings of ``data`` and its operator (None when plain)."""
    found: dict[str, str | None] = {}
    for match in VARIABLE.finditer("\n".join(_strings(data))):
        if match.group("plain"):
            found.setdefault(match.group("plain"), None)
        elif match.group("braced"):
            parts = BRACED.match(match.group("braced"))
            assert parts, match.group(0)
            op = parts.group("op")
            if found.get(parts.group("name")) is None or op in (":?", "?"):
                found[parts.group("name")] = op
    return found


def example_env() -> dict[str, str]:
    env = {}
    for line in COMPOSE_ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The compose file as Compose sees it with the example environment."""
    return interpolate(raw, example_env())


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema (test extra) vendors the compose-spec schema")
    path = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(path.read_text())


def _schema_errors(schema: dict[str, Any], data: Any) -> list[str]:
    cls = jsonschema.validators.validator_for(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in cls(schema).iter_errors(data)]


@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_GPU], ids=lambda p: p.name)
def test_compose_files_match_the_compose_spec_schema(path, compose_schema) -> None:
    data = yaml.safe_load(path.read_text())
    assert _schema_errors(compose_schema, data) == []
    assert _schema_errors(compose_schema, interpolate(data, example_env())) == []


def test_the_schema_check_rejects_a_broken_compose_file(raw, compose_schema) -> None:
    broken = copy.deepcopy(raw)
    broken["services"]["api"]["restart_policy"] = "always"  # not a service key
    broken["services"]["api"]["ports"] = 8000  # not a list
    broken["services"]["api"]["depends_on"]["postgres"]["condition"] = "service_ok"
    errors = _schema_errors(compose_schema, broken)
    assert any("restart_policy" in e for e in errors)
    assert any(e.startswith("services/api/ports:") for e in errors)
    assert any(e.startswith("services/api/depends_on:") for e in errors)


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $$SET $SET", env) == "x d  d $SET x"
    with pytest.raises(MissingVariable, match="EMPTY: needed"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""


def test_the_example_env_defines_every_variable_and_no_real_secret() -> None:
    data = [yaml.safe_load(COMPOSE.read_text()), yaml.safe_load(COMPOSE_GPU.read_text())]
    text = "\n".join(_strings(data))
    used = variables(data)
    example = example_env()
    assert set(used) <= set(example), sorted(set(used) - set(example))
    # Secrets have no default: compose refuses to start until they are set...
    assert {name for name, op in used.items() if op in (":?", "?")} == SECRETS
    for name in SECRETS:
        assert all(op == ":?" for op in re.findall(rf"\$\{{{name}(:\?|\?|:-|-)?", text)), name
    # ...and the example only carries placeholders.
    for name in SECRETS:
        assert example[name].startswith("CHANGE-ME"), name
    assert (DEPLOY / ".gitignore").read_text().splitlines()[-1] == ".env"


def test_compose_refuses_to_start_without_the_secrets(raw) -> None:
    env = example_env()
    for name in SECRETS:
        missing = {k: v for k, v in env.items() if k != name}
        with pytest.raises(MissingVariable, match=name):
            interpolate(raw, missing)


def test_the_service_graph_starts_dependencies_first(compose) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", *IMAGE_SERVICES}
    deps = {name: dict(s.get("depends_on", {})) for name, s in services.items()}
    for name, targets in deps.items():
        assert set(targets) <= set(services), (name, targets)
        for target, spec in targets.items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}, which has no health check"
    # topological order exists (no cycle)
    order, todo = [], dict(deps)
    while todo:
        ready = sorted(n for n, t in todo.items() if set(t) <= set(order))
        assert ready, f"dependency cycle among {sorted(todo)}"
        order.extend(ready)
        for n in ready:
            del todo[n]
    assert deps["ray-worker-1"] == deps["ray-worker-2"] == {"ray-head": {"condition": "service_healthy"}}
    assert deps["api"]["postgres"]["condition"] == deps["api"]["ray-head"]["condition"] == "service_healthy"
    assert order.index("api") > max(order.index(n) for n in ("postgres", "ray-head", "ray-worker-1", "ray-worker-2"))


def test_every_service_has_a_health_check_for_its_role(compose) -> None:
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    healthcheck = (DEPLOY / "docker" / "healthcheck.py").read_text()
    for name, role in IMAGE_SERVICES.items():
        service = compose["services"][name]
        assert service["command"] == [role]
        assert f"\n  {role})" in entrypoint, f"the entry point has no {role} role"
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "dse-healthcheck", role], (name, test)
        assert set(test[3:]) <= {"--ready"}
        assert f'"{role}"' in healthcheck
        assert service["restart"] == "unless-stopped"
    # the service reports healthy only when it is ready (store answers, scheduler runs)
    assert compose["services"]["api"]["healthcheck"]["test"][-1] == "--ready"
    pg = compose["services"]["postgres"]
    env = pg["environment"]
    assert pg["healthcheck"]["test"] == ["CMD-SHELL", f"pg_isready -U {env['POSTGRES_USER']} -d {env['POSTGRES_DB']}"]


def test_ray_nodes_and_the_service_find_the_head(compose) -> None:
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    head_port = re.search(r"--port=\"\$\{RAY_PORT:-(\d+)\}\"", entrypoint).group(1)
    services = compose["services"]
    assert "RAY_PORT" not in services["ray-head"]["environment"]
    for name in ("ray-worker-1", "ray-worker-2"):
        assert services[name]["environment"]["RAY_HEAD_ADDRESS"] == f"ray-head:{head_port}"
    assert services["api"]["environment"]["RAY_ADDRESS"] == f"ray-head:{head_port}"
    assert services["ray-head"]["environment"]["RAY_NUM_CPUS"] == "0"
    # one cluster token everywhere
    tokens = {services[n]["environment"]["RAY_AUTH_TOKEN"] for n in IMAGE_SERVICES}
    assert tokens == {example_env()["DSE_RAY_AUTH_TOKEN"]}
    assert {services[n]["environment"]["RAY_AUTH_MODE"] for n in IMAGE_SERVICES} == {"token"}


def test_ray_containers_get_a_usable_object_store(compose) -> None:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    for name in IMAGE_SERVICES:
        size = str(compose["services"][name]["shm_size"]).lower().rstrip("b")
        value = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        assert value >= 1 << 30, f"{name}: /dev/shm of {size} starves Ray's object store"


def test_the_service_environment_is_valid_settings(compose, monkeypatch) -> None:
    from api.settings import Settings

    env = compose["services"]["api"]["environment"]
    dse = {k: v for k, v in env.items() if k.startswith("DSE_")}
    fields = {f"DSE_{name.upper()}" for name in Settings.model_fields}
    assert set(dse) - {"DSE_ROLE"} <= fields, sorted(set(dse) - fields)
    for key in list(os.environ):
        if key.startswith("DSE_"):
            monkeypatch.delenv(key)
    for key, value in dse.items():
        monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert settings.port == int(env["DSE_PORT"])
    url = re.fullmatch(r"postgresql\+psycopg://(\w+):([^@]+)@([\w-]+):(\d+)/(\w+)", settings.database_url)
    assert url, settings.database_url
    user, password, host, port, db = url.groups()
    pg = compose["services"]["postgres"]["environment"]
    assert (user, password, host, port, db) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], "postgres", "5432", pg["POSTGRES_DB"])
    assert settings.write_tokens == (example_env()["DSE_WRITE_TOKENS"],)


def test_published_ports_match_the_image_and_stay_on_loopback_by_default(compose) -> None:
    instructions = df.parse(DOCKERFILE.read_text())
    exposed = {p for i in instructions if i.keyword == "EXPOSE" for p in i.value.split()}
    api = compose["services"]["api"]
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    assert api["ports"][0].rsplit(":", 1)[1] == api["environment"]["DSE_PORT"] in exposed
    assert compose["services"]["ray-head"]["ports"] == ["127.0.0.1:8265:8265"]
    assert "ports" not in compose["services"]["ray-worker-1"]


def test_every_image_service_builds_the_same_image_with_the_pinned_versions(compose) -> None:
    args = df.arg_defaults(df.parse(DOCKERFILE.read_text()))
    builds = [compose["services"][n]["build"] for n in IMAGE_SERVICES]
    images = {compose["services"][n]["image"] for n in IMAGE_SERVICES}
    assert images == {"analog-dse:0.1.0-cpu"} and all(b == builds[0] for b in builds)
    build = builds[0]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert build["args"] == {"VARIANT": "cpu", "RAY_VERSION": args["RAY_VERSION"],
                             "TORCH_VERSION": args["TORCH_VERSION"]}


def test_the_gpu_override_gives_each_worker_one_gpu_and_tells_ray() -> None:
    override = interpolate(yaml.safe_load(COMPOSE_GPU.read_text()), example_env())
    assert set(override["services"]) == {"ray-worker-1", "ray-worker-2"}
    for service in override["services"].values():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
        assert service["environment"]["RAY_NUM_GPUS"] == str(device["count"])
