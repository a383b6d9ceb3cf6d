#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on 127.0.0.1 for the cluster tests: `start` (idempotent),
# `stop` (stops the nodes, removes their data), `status`, `rejoin N` (starts node N again after
# it stopped or was killed, into the running cluster, and waits until it is Synced).
#
# SQL ports 3311-3313, root with an empty password over TCP, a `test` database. The standalone
# server on 3306 and its datadir are never touched: every node has its own defaults file, datadir
# and socket under $GALERA_DIR, and only the pids in those pid files are signalled.
set -euo pipefail

GALERA_DIR=${GALERA_DIR:-/tmp/user-service-galera}
NODES=(1 2 3)
CLUSTER_NAME=user-service-test
# Distinct ports per node, all on loopback: SQL, group communication, IST and SST (rsync).
sql_port() { echo $((3310 + $1)); }
gcomm_port() { echo $((4570 + $1)); }
ist_port() { echo $((4580 + $1)); }
sst_port() { echo $((4590 + $1)); }

node_dir() { echo "$GALERA_DIR/node$1"; }
socket() { echo "$(node_dir "$1")/mariadbd.sock"; }
pid_file() { echo "$(node_dir "$1")/mariadbd.pid"; }

find_provider() {
  local candidate
  for candidate in /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so \
    /usr/lib64/galera-4/libgalera_smm.so /usr/lib64/galera/libgalera_smm.so; do
    [[ -f $candidate ]] && { echo "$candidate"; return; }
  done
  candidate=$(find /usr/lib /usr/lib64 -name libgalera_smm.so 2>/dev/null | head -n 1 || true)
  [[ -n $candidate ]] || { echo "libgalera_smm.so not found (install galera-4)" >&2; exit 1; }
  echo "$candidate"
}

# rsync state transfer needs rsync and a tool that lists listening sockets (ss or lsof).
ensure_tools() {
  local missing=()
  command -v rsync >/dev/null || missing+=(rsync)
  command -v ss >/dev/null || command -v lsof >/dev/null || missing+=(iproute2)
  command -v mariadbd >/dev/null || missing+=(mariadb-server)
  if [[ ! -f /usr/lib/galera/libgalera_smm.so ]] && ! find /usr/lib /usr/lib64 \
    -name libgalera_smm.so 2>/dev/null | grep -q .; then
    missing+=(galera-4)
  fi
  if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  fi
}

write_config() {
  local n=$1 provider=$2 dir
  dir=$(node_dir "$n")
  local peers="127.0.0.1:$(gcomm_port 1),127.0.0.1:$(gcomm_port 2),127.0.0.1:$(gcomm_port 3)"
  cat >"$dir/my.cnf" <<EOF
[mysqld]
user = mysql
datadir = $dir/data
# Its own tmpdir: a starting mariadbd deletes every #sql* file in its tmpdir, and in /tmp those
# are the standalone server's live temporary tables (it crashed, or its queries failed).
tmpdir = $dir/tmp
socket = $(socket "$n")
pid-file = $(pid_file "$n")
log-error = $dir/error.log
port = $(sql_port "$n")
bind-address = 127.0.0.1
# Small: three nodes share a two-core machine with other work.
innodb_buffer_pool_size = 64M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 2
performance_schema = OFF
# What Galera requires.
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = $provider
wsrep_cluster_name = $CLUSTER_NAME
wsrep_cluster_address = gcomm://$peers
wsrep_node_name = node$n
wsrep_node_address = 127.0.0.1
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=32M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:$(sst_port "$n")
EOF
}

sql() { mariadb --no-defaults --socket="$(socket "$1")" --user=root -N -B -e "$2" 2>/dev/null; }
status_var() { sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" | cut -f2; }
node_running() {
  local pid
  [[ -f $(pid_file "$1") ]] && pid=$(cat "$(pid_file "$1")") && kill -0 "$pid" 2>/dev/null
}
node_synced() {
  [[ $(status_var "$1" wsrep_local_state_comment) == Synced ]] &&
    [[ $(status_var "$1" wsrep_cluster_size) == 3 ]]
}
cluster_synced() {
  local n
  for n in "${NODES[@]}"; do node_synced "$n" || return 1; done
}

start_node() {
  local n=$1 extra=${2:-}
  # mariadbd switches to the mysql user itself (rsync state transfer fails as root).
  # shellcheck disable=SC2086
  setsid /usr/sbin/mariadbd --defaults-file="$(node_dir "$n")/my.cnf" $extra \
    </dev/null >>"$(node_dir "$n")/stdout.log" 2>&1 &
}

wait_for() {
  local what=$1 seconds=$2 check=$3
  shift 3
  for _ in $(seq 1 "$seconds"); do
    "$check" "$@" && return 0
    sleep 1
  done
  echo "$what did not happen within $seconds s" >&2
  return 1
}

node_answers() { sql "$1" "SELECT 1" >/dev/null; }
node_joined() { [[ $(status_var "$1" wsrep_local_state_comment) == Synced ]]; }

show_logs() {
  local n
  for n in "${NODES[@]}"; do
    echo "--- node$n error.log (tail)" >&2
    tail -n 30 "$(node_dir "$n")/error.log" >&2 2>/dev/null || true
  done
}

start() {
  if cluster_synced 2>/dev/null; then
    echo "Galera cluster already up and synced (ports $(sql_port 1)-$(sql_port 3))"
    return 0
  fi
  local n
  for n in "${NODES[@]}"; do
    if node_running "$n"; then
      echo "a partial cluster is running; restarting it from scratch"
      stop
      break
    fi
  done
  ensure_tools
  local provider
  provider=$(find_provider)
  for n in "${NODES[@]}"; do
    if ss -ltn "sport = :$(sql_port "$n")" | grep -q LISTEN; then
      echo "port $(sql_port "$n") is taken by something else; not starting" >&2
      exit 1
    fi
  done
  rm -rf "$GALERA_DIR"
  for n in "${NODES[@]}"; do
    mkdir -p "$(node_dir "$n")/data" "$(node_dir "$n")/tmp"
    write_config "$n" "$provider"
    chown -R mysql:mysql "$(node_dir "$n")"
    mariadb-install-db --no-defaults --user=mysql --datadir="$(node_dir "$n")/data" \
      --tmpdir="$(node_dir "$n")/tmp" \
      --auth-root-authentication-method=normal --skip-test-db >"$(node_dir "$n")/install.log" 2>&1
  done
  chown -R mysql:mysql "$GALERA_DIR"
  echo "bootstrapping node1 (port $(sql_port 1))"
  start_node 1 --wsrep-new-cluster
  wait_for "node1 bootstrap" 60 node_joined 1 || { show_logs; exit 1; }
  # Root over TCP from 127.0.0.1 with an empty password, like the standalone test server; the
  # grants replicate to the nodes that join.
  sql 1 "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE DATABASE IF NOT EXISTS test;"
  # One joiner at a time: each takes a full state transfer from a donor.
  for n in 2 3; do
    echo "joining node$n (port $(sql_port "$n"))"
    start_node "$n"
    wait_for "node$n join" 120 node_joined "$n" || { show_logs; exit 1; }
  done
  wait_for "cluster size 3 on every node" 60 cluster_synced || { show_logs; exit 1; }
  echo "Galera cluster up: 127.0.0.1:$(sql_port 1),$(sql_port 2),$(sql_port 3) (synced, size 3)"
}

stop() {
  local n pid stopped=()
  for n in "${NODES[@]}"; do
    if node_running "$n"; then
      pid=$(cat "$(pid_file "$n")")
      kill -TERM "$pid" 2>/dev/null || true
      stopped+=("$pid")
    fi
  done
  for pid in "${stopped[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  rm -rf "$GALERA_DIR"
  echo "Galera cluster stopped (${#stopped[@]} nodes), data removed"
}

rejoin() {
  local n=$1
  [[ $n =~ ^[123]$ ]] || { echo "rejoin: no node $n (1-3)" >&2; exit 2; }
  [[ -f $(node_dir "$n")/my.cnf ]] || { echo "rejoin: node$n was never set up (start)" >&2; exit 1; }
  if node_running "$n"; then
    echo "node$n is running"
  else
    # A node killed mid-transaction may leave a stale pid file; mariadbd replaces it.
    echo "rejoining node$n (port $(sql_port "$n"))"
    start_node "$n"
  fi
  wait_for "node$n rejoin" 120 node_joined "$n" || { show_logs; exit 1; }
  wait_for "cluster size 3 on every node" 60 cluster_synced || { show_logs; exit 1; }
  echo "node$n Synced, cluster size 3"
}

status() {
  local n
  for n in "${NODES[@]}"; do
    if node_answers "$n"; then
      echo "node$n :$(sql_port "$n") $(status_var "$n" wsrep_local_state_comment)" \
        "size=$(status_var "$n" wsrep_cluster_size)"
    else
      echo "node$n :$(sql_port "$n") down"
    fi
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  rejoin) rejoin "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|rejoin N" >&2; exit 2 ;;
esac
