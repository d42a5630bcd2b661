#!/usr/bin/env bash
# A multi-node Ray cluster on one machine: `ray start --head` plus worker nodes, each with its own
# temp dir so that Ray sees them as distinct nodes. This is how CI, the failure drills and the
# cluster benchmark exercise cluster mode without a container engine; on real machines run the
# same `ray start` commands on each host (docs/deploy.md).
#
#   deploy/local-cluster.sh start [--workers N] [--worker-cpus C] [--head-cpus H]
#                                 [--object-store-mb M] [--port P] [--timeout S]
#   deploy/local-cluster.sh add-worker [--worker-cpus C] [--timeout S]
#   deploy/local-cluster.sh status       # exit 0 healthy, 1 degraded, 3 not running
#   deploy/local-cluster.sh env          # the driver environment (export lines)
#   deploy/local-cluster.sh kill NODE    # SIGKILL one node's processes (failure drills)
#   deploy/local-cluster.sh stop [--clean]
#
# `start` prints the environment a driver needs (RAY_ADDRESS and the cluster's token settings) as
# `export` lines on stdout, everything else on stderr, so `eval "$(deploy/local-cluster.sh start)"`
# points `dse run`, `dse serve` and the service's study runners at the cluster. Token
# authentication is on, with a token generated per cluster. Ray binds to this machine's primary
# address (on Linux it resolves 127.0.0.1 to it); all traffic stays on this host.
#
# State (pids, token, per-node Ray temp dirs with the Ray logs, one console log per node) lives in
# $DSE_CLUSTER_DIR (default ${TMPDIR:-/tmp}/dse-cluster-$UID); clusters with different
# DSE_CLUSTER_DIR values run side by side. Each node runs in its own process group, and `stop` and
# `kill` signal exactly those groups -- never `ray stop`, which ends every Ray process on the
# machine, other users' included.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${DSE_CLUSTER_DIR:-${TMPDIR:-/tmp}/dse-cluster-$(id -u)}"
NODES_DIR="$STATE_DIR/nodes"
LOGS_DIR="$STATE_DIR/logs"
RAY_TMP_DIR="$STATE_DIR/ray"
ENV_FILE="$STATE_DIR/cluster.env"
TOKEN_FILE="$STATE_DIR/auth_token"
# Seconds `stop` waits for a node after SIGTERM before it sends SIGKILL.
STOP_GRACE_S="${DSE_CLUSTER_STOP_GRACE_S:-20}"
# Ray drains a node on SIGTERM for this long (its default is 30 s, made for Serve replicas); the
# trials of a study are retried elsewhere anyway, so the local cluster stops promptly.
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="${RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S:-0}"
export RAY_USAGE_STATS_ENABLED=0

if [ -n "${DSE_PYTHON:-}" ]; then
  PYTHON="$DSE_PYTHON"
elif [ -x "$ROOT/.venv/bin/python" ]; then
  PYTHON="$ROOT/.venv/bin/python"
else
  PYTHON="$(command -v python3)"
fi
RAY="$(dirname "$PYTHON")/ray"
[ -x "$RAY" ] || RAY="$(command -v ray || true)"

log() { echo "local-cluster: $*" >&2; }
die() {
  echo "local-cluster: error: $*" >&2
  exit 2
}

usage() {
  sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

# need_int OPTION VALUE MIN: options are checked before anything starts; the message names the
# option, the value and what is accepted.
need_int() {
  local opt="$1" value="$2" min="$3"
  [[ "$value" =~ ^[0-9]+$ ]] && [ "$value" -ge "$min" ] ||
    die "$opt: got '$value'; accepted: an integer >= $min"
}

# -- node bookkeeping -----------------------------------------------------------------------------
node_pid() { cat "$NODES_DIR/$1.pid" 2>/dev/null || true; }

# group_alive PGID: true while a process of group PGID runs with this cluster's temp dir on its
# command line (so that a recycled pid never makes us signal someone else's processes).
group_alive() {
  local pgid="$1" d stat rest state pgrp cmdline
  [ -n "$pgid" ] || return 1
  kill -0 -- "-$pgid" 2>/dev/null || return 1
  for d in /proc/[0-9]*; do
    stat="$(cat "$d/stat" 2>/dev/null)" || continue
    rest="${stat##*) }"            # "STATE PPID PGRP ..." after the command name
    read -r state _ pgrp _ <<<"$rest"
    [ "$pgrp" = "$pgid" ] && [ "$state" != Z ] || continue
    cmdline="$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" || continue
    case "$cmdline" in *"$RAY_TMP_DIR/"*) return 0 ;; esac
  done
  return 1
}

node_names() {
  [ -d "$NODES_DIR" ] || return 0
  local f
  for f in "$NODES_DIR"/*.pid; do
    [ -e "$f" ] || continue
    basename "$f" .pid
  done | sort -V
}

env_value() { [ -f "$ENV_FILE" ] && sed -n "s/^$1=//p" "$ENV_FILE"; }

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# The variables every node and every driver of this cluster runs with.
export_cluster_env() {
  export RAY_AUTH_MODE=token
  export RAY_AUTH_TOKEN_PATH="$TOKEN_FILE"
}

print_driver_env() {
  echo "export RAY_ADDRESS=$(env_value RAY_ADDRESS)"
  echo "export RAY_AUTH_MODE=token"
  echo "export RAY_AUTH_TOKEN_PATH=$TOKEN_FILE"
}

# start_node NAME RAY_START_ARGS...: one `ray start --block` in a new session, so that all of the
# node's processes (GCS, raylet, workers) share one process group whose id is the recorded pid.
start_node() {
  local name="$1"
  shift
  mkdir -p "$RAY_TMP_DIR/$name" "$LOGS_DIR" "$NODES_DIR"
  setsid "$RAY" start --block \
    --temp-dir="$RAY_TMP_DIR/$name" \
    --object-store-memory="$((OBJECT_STORE_MB * 1024 * 1024))" \
    --disable-usage-stats \
    "$@" >"$LOGS_DIR/$name.log" 2>&1 </dev/null &
  echo "$!" >"$NODES_DIR/$name.pid"
  log "started $name (pid $!, console log $LOGS_DIR/$name.log)"
}

# wait_for_head TIMEOUT: the head writes its GCS address into its temp dir once it is up.
wait_for_head() {
  local timeout="$1" waited=0 file="$RAY_TMP_DIR/head/ray_current_cluster"
  while [ ! -s "$file" ]; do
    group_alive "$(node_pid head)" || return 1
    [ "$waited" -lt "$((timeout * 10))" ] || return 1
    sleep 0.1
    waited=$((waited + 1))
  done
  cat "$file"
}

# wait_for_nodes N TIMEOUT: until the cluster reports N alive nodes (public ray.nodes()).
wait_for_nodes() {
  WANT="$1" TIMEOUT="$2" RAY_ADDRESS="$(env_value RAY_ADDRESS)" "$PYTHON" - <<'PY'
import os, sys, time
import ray

want, timeout = int(os.environ["WANT"]), float(os.environ["TIMEOUT"])
deadline = time.monotonic() + timeout
ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR", log_to_driver=False)
alive = []
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= want or time.monotonic() > deadline:
        break
    time.sleep(0.5)
cpus = sum(n["Resources"].get("CPU", 0) for n in alive)
print(f"local-cluster: {len(alive)}/{want} nodes alive, {cpus:g} CPUs", file=sys.stderr)
sys.exit(0 if len(alive) >= want else 1)
PY
}

# stop_node NAME: SIGTERM to the node's `ray start` (it shuts its processes down), then SIGKILL to
# whatever is left of its process group after the grace period.
# Every descendant of the processes of group $1. Ray starts its worker processes (the ones that
# run trials) in process groups of their own, so signalling the node's group alone misses them.
group_descendants() {
  local pgid="$1" d stat rest pid ppid pgrp frontier next
  declare -A parent_of=()
  frontier=""
  for d in /proc/[0-9]*; do
    stat="$(cat "$d/stat" 2>/dev/null)" || continue
    pid="${d#/proc/}"
    rest="${stat##*) }"
    read -r _ ppid pgrp _ <<<"$rest"
    parent_of[$pid]="$ppid"
    [ "$pgrp" = "$pgid" ] && frontier="$frontier $pid"
  done
  local seen=" $frontier "
  while [ -n "${frontier// /}" ]; do
    next=""
    for pid in "${!parent_of[@]}"; do
      case " $frontier " in *" ${parent_of[$pid]} "*) ;; *) continue ;; esac
      case "$seen" in *" $pid "*) continue ;; esac
      seen="$seen$pid "
      next="$next $pid"
      echo "$pid"
    done
    frontier="$next"
  done
}

stop_node() {
  local name="$1" pid
  pid="$(node_pid "$name")"
  if ! group_alive "$pid"; then
    rm -f "$NODES_DIR/$name.pid"
    log "$name was not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while group_alive "$pid" && [ "$waited" -lt "$((STOP_GRACE_S * 10))" ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if group_alive "$pid"; then
    log "$name still running ${STOP_GRACE_S}s after SIGTERM; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$NODES_DIR/$name.pid"
  log "stopped $name"
}

# -- sub-commands ---------------------------------------------------------------------------------
cmd_start() {
  local workers=2 worker_cpus=1 head_cpus=0 port="" timeout=90
  OBJECT_STORE_MB=200
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --workers) workers="${2-}" ;;
      --worker-cpus) worker_cpus="${2-}" ;;
      --head-cpus) head_cpus="${2-}" ;;
      --object-store-mb) OBJECT_STORE_MB="${2-}" ;;
      --port) port="${2-}" ;;
      --timeout) timeout="${2-}" ;;
      *) die "start: unknown option '$1'; accepted: --workers --worker-cpus --head-cpus --object-store-mb --port --timeout" ;;
    esac
    shift $(($# >= 2 ? 2 : 1))
  done
  need_int --workers "$workers" 0
  need_int --worker-cpus "$worker_cpus" 1
  need_int --head-cpus "$head_cpus" 0
  need_int --object-store-mb "$OBJECT_STORE_MB" 80
  need_int --timeout "$timeout" 1
  [ -n "$port" ] || port="$(free_port)"
  need_int --port "$port" 1
  [ -n "$RAY" ] || die "the 'ray' command was not found beside $PYTHON nor on PATH (install the project first)"

  local name
  for name in $(node_names); do
    if group_alive "$(node_pid "$name")"; then
      die "a cluster is already running in $STATE_DIR (node $name); run '$0 stop' first or set DSE_CLUSTER_DIR"
    fi
  done
  rm -rf "$NODES_DIR" "$RAY_TMP_DIR"
  mkdir -p "$STATE_DIR" "$NODES_DIR"
  chmod 700 "$STATE_DIR"
  (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_hex(32), end="")' >"$TOKEN_FILE")
  export_cluster_env

  # The head holds the GCS and by default no CPUs: drivers (dse run, the service's study runners)
  # attach to it, and trials are scheduled on the worker nodes only.
  start_node head --head --port="$port" --num-cpus="$head_cpus" --num-gpus=0 --include-dashboard=false
  local address
  if ! address="$(wait_for_head "$timeout")"; then
    log "the head node did not come up within ${timeout}s; see $LOGS_DIR/head.log"
    cmd_stop >/dev/null
    exit 1
  fi
  {
    echo "RAY_ADDRESS=$address"
    echo "OBJECT_STORE_MB=$OBJECT_STORE_MB"
  } >"$ENV_FILE"
  local i
  for i in $(seq 1 "$workers"); do
    start_node "worker-$i" --address="$address" --num-cpus="$worker_cpus" --num-gpus=0
  done
  if ! wait_for_nodes "$((workers + 1))" "$timeout"; then
    log "the cluster did not come up within ${timeout}s; logs in $LOGS_DIR"
    cmd_stop >/dev/null
    exit 1
  fi
  print_driver_env
}

cmd_add_worker() {
  local worker_cpus=1 timeout=90
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --worker-cpus) worker_cpus="${2-}" ;;
      --timeout) timeout="${2-}" ;;
      *) die "add-worker: unknown option '$1'; accepted: --worker-cpus --timeout" ;;
    esac
    shift $(($# >= 2 ? 2 : 1))
  done
  need_int --worker-cpus "$worker_cpus" 1
  need_int --timeout "$timeout" 1
  local address
  address="$(env_value RAY_ADDRESS)" || die "no cluster in $STATE_DIR; run '$0 start' first"
  group_alive "$(node_pid head)" || die "the head node in $STATE_DIR is not running"
  OBJECT_STORE_MB="$(env_value OBJECT_STORE_MB)"
  export_cluster_env
  local n=1 alive=0 name
  while [ -e "$NODES_DIR/worker-$n.pid" ]; do n=$((n + 1)); done
  for name in $(node_names); do
    if group_alive "$(node_pid "$name")"; then alive=$((alive + 1)); fi
  done
  start_node "worker-$n" --address="$address" --num-cpus="$worker_cpus" --num-gpus=0
  wait_for_nodes "$((alive + 1))" "$timeout"
  echo "worker-$n"
}

cmd_status() {
  local names
  names="$(node_names)"
  if [ -z "$names" ]; then
    echo "no cluster in $STATE_DIR"
    return 3
  fi
  local name pid alive=0 dead=0
  echo "cluster dir: $STATE_DIR"
  echo "RAY_ADDRESS=$(env_value RAY_ADDRESS || true)"
  for name in $names; do
    pid="$(node_pid "$name")"
    if group_alive "$pid"; then
      echo "  $name  pid $pid  running  ray logs $RAY_TMP_DIR/$name/session_latest/logs"
      alive=$((alive + 1))
    else
      echo "  $name  pid $pid  dead"
      dead=$((dead + 1))
    fi
  done
  [ "$alive" -gt 0 ] || return 3
  if ! group_alive "$(node_pid head)"; then
    echo "the head node is down"
    return 1
  fi
  export_cluster_env
  wait_for_nodes "$alive" 10 || return 1
  [ "$dead" -eq 0 ] || return 1
}

cmd_env() {
  [ -n "$(env_value RAY_ADDRESS)" ] || die "no cluster in $STATE_DIR; run '$0 start' first"
  print_driver_env
}

cmd_kill() {
  local name="${1-}" pid
  [ -n "$name" ] || die "kill: missing NODE; accepted: $(node_names | tr '\n' ' ')"
  pid="$(node_pid "$name")"
  [ -n "$pid" ] || die "kill: no node '$name' in $STATE_DIR; accepted: $(node_names | tr '\n' ' ')"
  if group_alive "$pid"; then
    local orphans
    orphans="$(group_descendants "$pid")"
    kill -KILL -- "-$pid" 2>/dev/null || true
    # shellcheck disable=SC2086 # one pid per word
    [ -z "$orphans" ] || kill -KILL $orphans 2>/dev/null || true
    local waited=0
    while group_alive "$pid" && [ "$waited" -lt 100 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    log "killed $name (process group $pid, SIGKILL)"
  else
    log "$name was not running"
  fi
}

cmd_stop() {
  local clean=0
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --clean) clean=1 ;;
      *) die "stop: unknown option '$1'; accepted: --clean" ;;
    esac
    shift
  done
  local name
  # Workers first, then the head, so that no worker outlives the GCS it reports to.
  for name in $(node_names); do
    [ "$name" = head ] || stop_node "$name"
  done
  if [ -e "$NODES_DIR/head.pid" ]; then stop_node head; fi
  rm -f "$ENV_FILE"
  if [ "$clean" -eq 1 ]; then
    rm -rf "$STATE_DIR"
    log "removed $STATE_DIR"
  fi
}

main() {
  local cmd="${1-}"
  [ "$#" -eq 0 ] || shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    add-worker) cmd_add_worker "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env "$@" ;;
    kill) cmd_kill "$@" ;;
    stop) cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage
      die "unknown command '$cmd'; accepted: start add-worker status env kill stop"
      ;;
  esac
}

main "$@"
