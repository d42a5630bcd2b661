"""Schema and reference checks of rendered Kubernetes manifests, for the deploy tests.

- Built-in kinds are validated against the Kubernetes OpenAPI schemas that ``kubernetes-validate``
  ships (strict: unknown fields are errors).
- ``RayCluster`` (KubeRay's custom resource, not in those schemas) is validated against
  :data:`RAY_CLUSTER_SCHEMA`, written from KubeRay's ``ray.io/v1`` Go types
  (``ray-operator/apis/ray/v1/raycluster_types.go``): the spec's fields, their types and
  enumerations, the required ones (``headGroupSpec.template``; a worker group's ``groupName``,
  ``template`` and -- required by older CRDs -- ``minReplicas`` / ``maxReplicas``), and
  ``rayStartParams`` as a map of *strings* (an unquoted number there is the usual mistake). The
  pod templates inside it are core/v1 ``PodTemplateSpec``\\ s and go through the Kubernetes schema.
- :func:`reference_problems` checks what no schema can: that every Secret / ConfigMap key, volume
  claim, volume mount, probe port and Service selector / target port points at something that
  exists in the same rendering.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT = {"type": "object"}
INT32 = {"type": "integer", "minimum": 0, "maximum": 2147483647}
POD_TEMPLATE = {"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}

AUTOSCALER_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "resources": OBJECT,
        "image": {"type": "string"},
        "imagePullPolicy": {"enum": ["Always", "Never", "IfNotPresent"]},
        "securityContext": OBJECT,
        "idleTimeoutSeconds": INT32,
        "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
        "version": {"enum": ["v1", "v2"]},
        "env": {"type": "array", "items": OBJECT},
        "envFrom": {"type": "array", "items": OBJECT},
        "volumeMounts": {"type": "array", "items": OBJECT},
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
    },
}

HEAD_GROUP_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "template": POD_TEMPLATE,
        "headService": OBJECT,
        "enableIngress": {"type": "boolean"},
        "ingressOptions": OBJECT,
        "resources": STRING_MAP,
        "labels": STRING_MAP,
        "rayStartParams": STRING_MAP,
        "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
    },
}

WORKER_GROUP_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groupName", "template", "minReplicas", "maxReplicas"],
    "properties": {
        "suspend": {"type": "boolean"},
        "groupName": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "replicas": INT32,
        "minReplicas": INT32,
        "maxReplicas": INT32,
        "idleTimeoutSeconds": INT32,
        "priority": {"type": "integer"},
        "resources": STRING_MAP,
        "labels": STRING_MAP,
        "rayStartParams": STRING_MAP,
        "template": POD_TEMPLATE,
        "scaleStrategy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"workersToDelete": {"type": "array", "items": {"type": "string"}}},
        },
        "numOfHosts": {"type": "integer", "minimum": 1},
    },
}

RAY_CLUSTER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCluster"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            # the head Service is named <name>-head-svc, which must stay a DNS label (<= 63)
            "properties": {"name": {"type": "string", "pattern": r"^[a-z]([-a-z0-9]{0,52}[a-z0-9])?$"}},
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["headGroupSpec"],
            "properties": {
                "upgradeStrategy": {
                    "type": "object",
                    "properties": {"type": {"enum": ["Recreate", "None"]}},
                    "additionalProperties": False,
                },
                "authOptions": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enableK8sTokenAuth": {"type": "boolean"},
                        "secretName": {"type": "string"},
                        "mode": {"enum": ["disabled", "token"]},
                    },
                },
                "suspend": {"type": "boolean"},
                "managedBy": {"enum": ["ray.io/kuberay-operator", "kueue.x-k8s.io/multikueue"]},
                "autoscalerOptions": AUTOSCALER_OPTIONS,
                "headServiceAnnotations": STRING_MAP,
                "enableInTreeAutoscaling": {"type": "boolean"},
                "gcsFaultToleranceOptions": OBJECT,
                "historyServerOptions": OBJECT,
                "networkPolicy": OBJECT,
                "tlsOptions": OBJECT,
                "headGroupSpec": HEAD_GROUP_SPEC,
                "rayVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                "workerGroupSpecs": {"type": "array", "items": WORKER_GROUP_SPEC},
            },
        },
    },
}


def raycluster_pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod template) of the head and of each worker group."""
    spec = obj.get("spec", {})
    yield "headGroupSpec.template", spec["headGroupSpec"]["template"]
    for i, group in enumerate(spec.get("workerGroupSpecs", [])):
        yield f"workerGroupSpecs[{i}].template", group["template"]


def as_pod_template_object(name: str, template: dict[str, Any]) -> dict[str, Any]:
    """A core/v1 PodTemplate object around a PodTemplateSpec, so the Kubernetes schema applies."""
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}


def autoscaler_as_pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The autoscaler sidecar KubeRay adds, built from ``autoscalerOptions`` (env, resources, ...),
    as a pod template so that its env entries and resources get the Kubernetes schema too."""
    options = obj["spec"].get("autoscalerOptions")
    if not options:
        return None
    container = {"name": "autoscaler", "image": options.get("image", "autoscaler")}
    for key in ("env", "envFrom", "resources", "securityContext", "volumeMounts", "command", "args"):
        if key in options:
            container[key] = options[key]
    return {"spec": {"containers": [container]}}


# -- references ----------------------------------------------------------------------------------
def pod_templates(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, owning object, pod template) of every workload in a rendering."""
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{kind}/{name}", obj, obj["spec"]["template"]
        elif kind == "RayCluster":
            for where, template in raycluster_pod_templates(obj):
                yield f"{kind}/{name} {where}", obj, template
            auto = autoscaler_as_pod_template(obj)
            if auto is not None:
                yield f"{kind}/{name} autoscalerOptions", obj, auto


def _keys(obj: dict[str, Any]) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("stringData") or {}) | set(obj.get("binaryData") or {})


def reference_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Dangling references in a rendering, one message each (empty when all resolve)."""
    problems: list[str] = []
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], {})[obj["metadata"]["name"]] = obj
    secrets, configmaps = by_kind.get("Secret", {}), by_kind.get("ConfigMap", {})
    claims = set(by_kind.get("PersistentVolumeClaim", {}))

    def key_ref(where: str, ref: dict[str, Any], pool: dict[str, dict[str, Any]], what: str) -> None:
        if ref.get("optional"):
            return
        target = pool.get(ref["name"])
        if target is None:
            problems.append(f"{where}: {what} {ref['name']!r} does not exist")
        elif ref["key"] not in _keys(target):
            problems.append(f"{where}: {what} {ref['name']!r} has no key {ref['key']!r}")

    for where, owner, template in pod_templates(objects):
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claim_templates = {t["metadata"]["name"] for t in owner.get("spec", {}).get("volumeClaimTemplates", [])}
        for name, volume in volumes.items():
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None and claim not in claims:
                problems.append(f"{where}: volume {name!r} claims {claim!r}, which does not exist")
            secret = volume.get("secret", {}).get("secretName")
            if secret is not None and secret not in secrets:
                problems.append(f"{where}: volume {name!r} mounts Secret {secret!r}, which does not exist")
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            cwhere = f"{where} container {container['name']!r}"
            defined: list[str] = []
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                if "secretKeyRef" in source:
                    key_ref(cwhere, source["secretKeyRef"], secrets, "Secret")
                if "configMapKeyRef" in source:
                    key_ref(cwhere, source["configMapKeyRef"], configmaps, "ConfigMap")
                for var in re.findall(r"\$\((\w+)\)", env.get("value", "")):
                    if var not in defined:
                        problems.append(f"{cwhere}: env {env['name']} uses $({var}) before it is defined")
                defined.append(env["name"])
            for source in container.get("envFrom", []):
                for key, pool in (("configMapRef", configmaps), ("secretRef", secrets)):
                    ref = source.get(key)
                    if ref and not ref.get("optional") and ref["name"] not in pool:
                        problems.append(f"{cwhere}: envFrom {key} {ref['name']!r} does not exist")
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes and mount["name"] not in claim_templates:
                    problems.append(f"{cwhere}: mounts volume {mount['name']!r}, which the pod does not have")
            port_names = {p["name"] for p in container.get("ports", []) if "name" in p}
            port_numbers = {p["containerPort"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    problems.append(f"{cwhere}: {probe} uses port {port!r}, which the container does not name")
                if isinstance(port, int) and port not in port_numbers:
                    problems.append(f"{cwhere}: {probe} uses port {port}, which the container does not open")

    workloads = [(w, o, t) for w, o, t in pod_templates(objects) if o["kind"] != "RayCluster"]
    for where, owner, template in workloads:
        selector = owner["spec"].get("selector", {}).get("matchLabels", {})
        labels = template.get("metadata", {}).get("labels", {})
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{where}: selector {selector} does not match its pod labels {labels}")
        if owner["kind"] == "StatefulSet":
            service = by_kind.get("Service", {}).get(owner["spec"].get("serviceName", ""))
            if service is None or service["spec"].get("clusterIP") != "None":
                problems.append(f"{where}: serviceName must name a headless Service")

    for name, service in by_kind.get("Service", {}).items():
        selector = service["spec"].get("selector", {})
        matched = [t for _, _, t in workloads
                   if selector and all(t.get("metadata", {}).get("labels", {}).get(k) == v
                                       for k, v in selector.items())]
        if not matched:
            problems.append(f"Service/{name}: selector {selector} matches no pod template")
            continue
        for port in service["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for template in matched:
                containers = template["spec"]["containers"]
                names = {p.get("name") for c in containers for p in c.get("ports", [])}
                numbers = {p["containerPort"] for c in containers for p in c.get("ports", [])}
                if target not in (names if isinstance(target, str) else numbers):
                    problems.append(f"Service/{name}: targetPort {target!r} is not a port of its pods")
    return problems
