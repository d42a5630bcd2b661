"""Paths and loaders shared by the deployment tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yaml"
COMPOSE_GPU = DEPLOY / "docker-compose.gpu.yaml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose.env.example"
K8S = DEPLOY / "k8s"
OVERLAYS = ("cpu", "gpu")
LOCAL_CLUSTER = DEPLOY / "local-cluster.sh"


def find_tool(name: str) -> str | None:
    """A command-line tool beside this interpreter (installed by the test extra), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def require_tool(name: str, package: str) -> str:
    """The tool's path; skip (with the reason) when it is not installed."""
    path = find_tool(name)
    if path is None:
        pytest.skip(f"{name} not installed (pip package {package}, in the project's test extra)")
    return path


def load_yaml_documents(path: Path) -> list[object]:
    """Every document of a YAML file (empty documents dropped)."""
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]
