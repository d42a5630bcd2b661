# Sourced by the scripts: create .venv (Python 3.11+) and install the project into it.
# Torch goes in first, pinned, so that pip never resolves a multi-GB CUDA build on a CPU machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DSE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "torch==${DSE_TORCH_VERSION:-2.13.0}"
fi
"${PIP[@]}" install -e "$ROOT${DSE_EXTRAS:-}"
export PATH="$VENV/bin:$PATH"
