#!/usr/bin/env bash
# Entry point of the analog-dse image: `api`, `head`, `worker`, or any command to run as is.
#
# Environment (all optional unless noted):
#   api     DSE_PORT (8000), DSE_* service settings (api/settings.py), RAY_ADDRESS or
#           DSE_RAY_ADDRESS: the cluster's GCS address host:port (then this container joins the
#           cluster as a node with no CPUs or GPUs, so that the study runners -- Ray drivers --
#           find a local raylet; trials never run here) or a ray://host:10001 client address.
#   head    RAY_PORT (6379), RAY_NUM_CPUS (0: trials run on workers only), RAY_NUM_GPUS (0),
#           RAY_OBJECT_STORE_MEMORY (bytes; Ray's default is 30% of the container's memory).
#   worker  RAY_HEAD_ADDRESS (required, host:port), RAY_NUM_CPUS / RAY_NUM_GPUS (default: what
#           the container has), RAY_OBJECT_STORE_MEMORY.
#   all     RAY_AUTH_MODE=token with RAY_AUTH_TOKEN: the cluster's shared token.
set -euo pipefail

role="${1:-${DSE_ROLE:-api}}"
[ "$#" -eq 0 ] || shift

die() {
  echo "dse-entrypoint: error: $*" >&2
  exit 2
}

# The health check of a container reads the role from here (it does not see this process's env).
record_role() { echo "$1" >"${TMPDIR:-/tmp}/dse-role"; }

# Optional resource flags, each only when its variable is set and is a number.
resource_args=()
add_resource() {  # add_resource VARIABLE FLAG
  local value="${!1:-}"
  [ -n "$value" ] || return 0
  [[ "$value" =~ ^[0-9]+$ ]] || die "$1: got '$value'; accepted: a non-negative integer"
  resource_args+=("$2=$value")
}

case "$role" in
  head)
    record_role head
    add_resource RAY_OBJECT_STORE_MEMORY --object-store-memory
    RAY_NUM_CPUS="${RAY_NUM_CPUS:-0}"
    RAY_NUM_GPUS="${RAY_NUM_GPUS:-0}"
    add_resource RAY_NUM_CPUS --num-cpus
    add_resource RAY_NUM_GPUS --num-gpus
    exec ray start --head --block \
      --port="${RAY_PORT:-6379}" \
      --dashboard-host=0.0.0.0 \
      --disable-usage-stats \
      "${resource_args[@]}" "$@"
    ;;
  worker)
    record_role worker
    [ -n "${RAY_HEAD_ADDRESS:-}" ] || die "RAY_HEAD_ADDRESS: not set; accepted: the head's host:port, e.g. ray-head:6379"
    add_resource RAY_OBJECT_STORE_MEMORY --object-store-memory
    add_resource RAY_NUM_CPUS --num-cpus
    add_resource RAY_NUM_GPUS --num-gpus
    exec ray start --block --address="$RAY_HEAD_ADDRESS" --disable-usage-stats "${resource_args[@]}" "$@"
    ;;
  api)
    record_role api
    address="${DSE_RAY_ADDRESS:-${RAY_ADDRESS:-}}"
    if [ -n "$address" ] && [[ "$address" != ray://* ]] && [ "$address" != auto ]; then
      # A Ray driver needs a raylet on its own host: join with no resources, so no trial lands here.
      add_resource RAY_OBJECT_STORE_MEMORY --object-store-memory
      ray start --address="$address" --num-cpus=0 --num-gpus=0 --disable-usage-stats "${resource_args[@]}"
    fi
    mkdir -p "${DSE_RUNNER_LOG_DIR:-/data/logs}"
    exec dse serve --host 0.0.0.0 --port "${DSE_PORT:-8000}" "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
