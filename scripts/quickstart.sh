#!/usr/bin/env bash
# Install everything and run the main job on the embedded default data (scikit-learn's digits).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec "$VENV/bin/dse" demo "$@"
