#!/usr/bin/env bash
# Install everything and run the test suite (the default run excludes tests marked slow).
# Extra arguments go to pytest, e.g. ./scripts/test.sh -m slow
set -euo pipefail
DSE_EXTRAS="[test]"
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
