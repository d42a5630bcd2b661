"""The web process stays light: no torch, Ray, Optuna or pyarrow until a request needs it.

(That `api/` never imports Ray, torch, Optuna or the simulator is checked in
`tests/test_dependencies.py`.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
