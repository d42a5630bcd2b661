#!/usr/bin/env bash
# Install everything and run the main job on the embedded default data (scikit-learn's digits).
# The study is resumable: a second run keeps the finished trials and prints the results again.
set -euo pipefail
DSE_EXTRAS="${DSE_EXTRAS:-[client,plot]}"
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec "$VENV/bin/dse" run configs/quickstart.yaml --resume "$@"
