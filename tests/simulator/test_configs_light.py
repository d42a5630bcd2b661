"""The configs stay importable without torch (the DSE engine validates hardware without it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_importing_the_configs_does_not_load_torch() -> None:
    code = ("import simulator.configs as c\n"
            "cfg = c.get_preset('gokmen_vlasov').with_overrides({'forward.out_bits': 7})\n"
            "c.RPUConfig.from_dict(cfg.to_dict())\n"
            "c.get_preset('hwa_standard'); c.get_preset('pcm_inference')\n")
    assert _loaded_after(code) == []


def test_the_package_exposes_configs_lazily_without_torch() -> None:
    code = "import simulator\nsimulator.get_preset('ideal')\nsimulator.RPUConfig()\n"
    assert _loaded_after(code) == []


def test_the_torch_classes_load_on_first_access() -> None:
    assert "torch" in _loaded_after("import simulator\nsimulator.AnalogLinear\n")
