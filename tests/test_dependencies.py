"""The dependency direction is api -> dse -> simulator, and the simulator stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR_ALLOWED = {"torch", "numpy", "simulator"} | set(sys.stdlib_module_names)


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_simulator_imports_only_torch_numpy_and_stdlib() -> None:
    offenders = {}
    for path in sorted((ROOT / "simulator").rglob("*.py")):
        bad = _imported_roots(path) - SIMULATOR_ALLOWED
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_importing_every_simulator_module_loads_no_dse_api_ray_optuna_or_fastapi() -> None:
    code = (
        "import importlib, pkgutil, sys, simulator\n"
        "for m in pkgutil.walk_packages(simulator.__path__, 'simulator.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in {'dse', 'api', 'ray', 'optuna', 'fastapi'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_dse_never_imports_api() -> None:
    offenders = {
        str(p.relative_to(ROOT)): "api"
        for p in sorted((ROOT / "dse").rglob("*.py"))
        if "api" in _imported_roots(p)
    }
    assert offenders == {}


def test_api_never_imports_ray_torch_optuna_or_the_simulator() -> None:
    offenders = {}
    for path in sorted((ROOT / "api").rglob("*.py")):
        bad = _imported_roots(path) & {"ray", "torch", "simulator", "optuna"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
