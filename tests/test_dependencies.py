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


def _simulator_import_graph() -> dict[str, set[str]]:
    """Module -> simulator modules it imports, counting imports under TYPE_CHECKING and inside
    functions (a floor that imports upward for annotations only is still a circle)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "simulator").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("simulator"):
                deps.add(node.module)  # type: ignore[arg-type]
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("simulator"))
        graph[".".join(parts)] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return sorted(out)


def test_simulator_floors_only_import_downward() -> None:
    assert _cycles(_simulator_import_graph()) == []
