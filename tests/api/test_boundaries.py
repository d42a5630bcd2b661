"""The service uses the engine's public surface only: it never imports Ray or the simulator,
and the web process stays light (no torch, Ray, Optuna or pyarrow until a request needs it)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_api_never_imports_ray_torch_or_the_simulator() -> None:
    offenders = {}
    for path in sorted((ROOT / "api").rglob("*.py")):
        bad = _imported_roots(path) & {"ray", "torch", "simulator", "optuna"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_service_modules_load_no_heavy_dependency() -> None:
    code = (
        "import sys, api.app, api.runner.scheduler, api.runner.process\n"
        "api.app.create_app(__import__('api.settings', fromlist=['Settings']).Settings("
        "anonymous_access='read', run_studies=False))\n"
        "print(','.join(sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'ray', 'torch', 'simulator', 'optuna', 'pyarrow'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
