#!/usr/bin/env bash
# Installs (from Debian's packages, only when missing) and starts PostgreSQL, Redis and RabbitMQ
# with its management plugin, all on 127.0.0.1 only, for local runs and tests. Idempotent: when
# everything already answers it makes no apt calls and returns in well under a second.
#
#   hack/services.sh [start]   install if needed, configure, start, wait until each answers
#   hack/services.sh status    print what answers (exit 1 if something does not)
#   hack/services.sh stop      stop all three
#   hack/services.sh restart postgres|redis|rabbitmq [seconds-down]
#                              stop one running service, keep it down for seconds-down (default 0),
#                              start it again and wait until it answers (fault tests; Redis comes
#                              back with its dataset, as one with persistence would, and still
#                              writes nothing to disk otherwise)
#
# Endpoints: postgres://turnpike:turnpike@127.0.0.1:5432/turnpike, redis://127.0.0.1:6379,
# amqp://turnpike:turnpike@127.0.0.1:5672, http://127.0.0.1:15672 (management, same user).
# Daemons are started directly (no systemd needed) and keep running after this script exits.
# TURNPIKE_RABBIT_SCHEDULERS sets RabbitMQ's Erlang schedulers (default: one per two cores); a
# change takes effect when the script next starts the broker.
set -Eeuo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="main"
PG_PORT=5432
REDIS_PORT=6379
AMQP_PORT=5672
RABBIT_MGMT_PORT=15672
USER_NAME="turnpike"
USER_PASSWORD="turnpike"
RABBIT_NODE="rabbit@localhost"

log() { echo "[services] $*" >&2; }
die() {
  echo "[services] ERROR: $*" >&2
  exit 1
}
trap 'rc=$?; [ "$rc" -eq 0 ] || echo "[services] ERROR: failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2' ERR

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages and starts system daemons)"

as_user() {
  local user="$1"
  shift
  runuser -u "$user" -- "$@"
}

# Writes stdin to $1 only if the content differs; returns 0 when it changed the file.
write_if_changed() {
  local file="$1" tmp
  tmp="$(mktemp)"
  cat >"$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  install -D -m 0644 "$tmp" "$file"
  rm -f "$tmp"
  return 0
}

# Waits up to $1 seconds for the command in "$@" (after the timeout) to succeed.
wait_for() {
  local timeout="$1" i=0
  shift
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -le $((timeout * 4)) ] || return 1
    sleep 0.25
  done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------

missing_packages() {
  local pkgs=()
  [ -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ] && command -v pg_ctlcluster >/dev/null ||
    pkgs+=("postgresql-$PG_VERSION")
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server)
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || pkgs+=(rabbitmq-server)
  command -v curl >/dev/null || pkgs+=(curl)
  echo "${pkgs[@]}"
}

install_missing() {
  local pkgs
  read -r -a pkgs <<<"$(missing_packages)"
  [ "${#pkgs[@]}" -gt 0 ] || return 0
  log "installing ${pkgs[*]} (apt)"
  # Package scripts try to start (and, under systemd, enable) each service with its default
  # config, e.g. RabbitMQ on all interfaces. A temporary policy-rc.d denies that; this script
  # configures and starts them itself. An existing policy-rc.d is left alone.
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# added by turnpike hack/services.sh during apt-get install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    added_policy=1
  fi
  local rc=0
  {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${pkgs[@]}"
  } >/tmp/turnpike-services-apt.log 2>&1 || rc=$?
  [ -z "$added_policy" ] || rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 /tmp/turnpike-services-apt.log >&2
    die "apt-get install ${pkgs[*]} failed (full log: /tmp/turnpike-services-apt.log)"
  fi
  read -r -a pkgs <<<"$(missing_packages)"
  [ "${#pkgs[@]}" -eq 0 ] || die "still missing after install: ${pkgs[*]}"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------

pg_answers() {
  PGPASSWORD="$USER_PASSWORD" PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p "$PG_PORT" -U "$USER_NAME" \
    -d "$USER_NAME" -qAtc 'select 1' 2>/dev/null | grep -qx 1
}

pg_running() { pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" 2>/dev/null | awk '{print $4}' | grep -qx online; }

pg_configure() {
  if ! pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" 2>/dev/null | grep -q .; then
    log "postgres: creating cluster $PG_VERSION/$PG_CLUSTER"
    pg_createcluster --port "$PG_PORT" "$PG_VERSION" "$PG_CLUSTER" >/dev/null
  fi
  local port
  port="$(pg_lsclusters -h "$PG_VERSION" "$PG_CLUSTER" | awk '{print $3}')"
  [ "$port" = "$PG_PORT" ] || die "postgres cluster $PG_VERSION/$PG_CLUSTER uses port $port, expected $PG_PORT"
  # conf.d is included last by Debian's postgresql.conf, so this wins over the defaults.
  if write_if_changed "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/turnpike.conf" <<EOF; then
# Written by turnpike hack/services.sh: loopback only.
listen_addresses = '127.0.0.1'
EOF
    chown postgres:postgres "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/turnpike.conf"
    PG_RESTART=1
  fi
}

pg_start() {
  PG_RESTART=""
  pg_configure
  if pg_running; then
    if [ -n "$PG_RESTART" ]; then
      log "postgres: restarting to apply loopback config"
      pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart
    fi
  else
    log "postgres: starting cluster $PG_VERSION/$PG_CLUSTER"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start ||
      die "postgres failed to start; see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"
  fi
  wait_for 60 pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || die "postgres does not answer on 127.0.0.1:$PG_PORT"
  log "postgres: ensuring role and database $USER_NAME"
  as_user postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -qAt >/dev/null <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$USER_NAME') THEN
    CREATE ROLE $USER_NAME LOGIN SUPERUSER PASSWORD '$USER_PASSWORD';
  ELSE
    ALTER ROLE $USER_NAME LOGIN SUPERUSER PASSWORD '$USER_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $USER_NAME OWNER $USER_NAME'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$USER_NAME') \gexec
SQL
  pg_answers || die "postgres: cannot log in as $USER_NAME on 127.0.0.1:$PG_PORT/$USER_NAME"
}

pg_stop() {
  if command -v pg_ctlcluster >/dev/null && pg_running; then
    log "postgres: stopping"
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast
  else
    log "postgres: not running"
  fi
}

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

redis_start() {
  install -d -o redis -g redis -m 0755 /run/redis /var/lib/redis
  install -d -o redis -g adm -m 2750 /var/log/redis
  log "redis: starting on 127.0.0.1:$REDIS_PORT (no persistence)"
  # All settings on the command line: no config file, nothing written to disk.
  as_user redis redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --save "" --appendonly no --dir /var/lib/redis --maxmemory-policy noeviction \
    --pidfile /run/redis/turnpike-redis.pid --logfile /var/log/redis/turnpike-redis.log ||
    die "redis-server failed to start; see /var/log/redis/turnpike-redis.log"
  wait_for 30 redis_answers || die "redis does not answer on 127.0.0.1:$REDIS_PORT; see /var/log/redis/turnpike-redis.log"
}

redis_stop() {
  if redis_answers; then
    log "redis: stopping"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    wait_for 15 tcp_closed "$REDIS_PORT" || die "redis did not stop"
  else
    log "redis: not running"
  fi
}

tcp_closed() { ! tcp_open "$1"; }

# ---------------------------------------------------------------------------------------------
# RabbitMQ
# ---------------------------------------------------------------------------------------------

RABBIT_LOG=/var/log/rabbitmq/turnpike-startup.log
RABBIT_NODE_LOG="/var/log/rabbitmq/$RABBIT_NODE.log"
# Booting after an unclean stop recovers every queue first; see rabbit_boot.
RABBIT_BOOT_TIMEOUT="${TURNPIKE_RABBIT_BOOT_TIMEOUT:-600}"

# 0 when the management API accepts the turnpike user and the AMQP port is open.
rabbit_answers() {
  tcp_open "$AMQP_PORT" &&
    curl -fsS -m 5 -o /dev/null -u "$USER_NAME:$USER_PASSWORD" "http://127.0.0.1:$RABBIT_MGMT_PORT/api/overview" 2>/dev/null
}

# ERL_EPMD_ADDRESS matters here too: the first Erlang program to run (often this CLI) starts epmd.
rabbitmqctl_() {
  as_user rabbitmq env HOME=/var/lib/rabbitmq ERL_EPMD_ADDRESS=127.0.0.1 /usr/lib/rabbitmq/bin/rabbitmqctl "$@"
}

rabbit_node_running() { rabbitmqctl_ -q ping >/dev/null 2>&1; }

rabbit_configure() {
  local changed=""
  # The node name is pinned to localhost so its data directory does not depend on the hostname,
  # and Erlang distribution listens on loopback only (epmd via ERL_EPMD_ADDRESS at start).
  # The broker shares this machine with the roles, PostgreSQL and Redis, so it runs one Erlang
  # scheduler per two cores (at least one) instead of one per core: on two cores it then spent
  # 9-20% less CPU per echo request, with the same latency at a given rate (bench/README.md,
  # "Seventeenth round").
  local schedulers="${TURNPIKE_RABBIT_SCHEDULERS:-$((($(nproc) + 1) / 2))}"
  [[ "$schedulers" =~ ^[1-9][0-9]{0,2}$ ]] ||
    die "TURNPIKE_RABBIT_SCHEDULERS must be a whole number from 1 to 999, got '$schedulers'"
  if write_if_changed /etc/rabbitmq/rabbitmq-env.conf <<EOF; then
# Written by turnpike hack/services.sh.
NODENAME=$RABBIT_NODE
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +S $schedulers:$schedulers"
EOF
    changed=1
  fi
  # default_user applies when the node initialises a fresh database; otherwise the user is
  # created with rabbitmqctl below.
  if write_if_changed /etc/rabbitmq/rabbitmq.conf <<EOF; then
# Written by turnpike hack/services.sh: loopback only.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBIT_MGMT_PORT
default_user = $USER_NAME
default_pass = $USER_PASSWORD
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users.guest = true
EOF
    changed=1
  fi
  if write_if_changed /etc/rabbitmq/enabled_plugins <<<"[rabbitmq_management]."; then
    changed=1
  fi
  chown rabbitmq:rabbitmq /etc/rabbitmq/rabbitmq-env.conf /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/enabled_plugins
  # The Erlang cookie must exist, belong to rabbitmq and be private, or the CLI cannot connect.
  local cookie=/var/lib/rabbitmq/.erlang.cookie
  if [ ! -s "$cookie" ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$cookie"
  fi
  chown rabbitmq:rabbitmq "$cookie"
  chmod 0400 "$cookie"
  install -d -o rabbitmq -g rabbitmq -m 0755 /var/log/rabbitmq /var/lib/rabbitmq/mnesia
  [ -z "$changed" ] || RABBIT_RESTART=1
}

rabbit_ensure_user() {
  local code
  code="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -u "$USER_NAME:$USER_PASSWORD" \
    "http://127.0.0.1:$RABBIT_MGMT_PORT/api/whoami" || true)"
  [ "$code" = "200" ] && return 0
  log "rabbitmq: creating user $USER_NAME"
  rabbitmqctl_ -q add_user "$USER_NAME" "$USER_PASSWORD" >/dev/null 2>&1 ||
    rabbitmqctl_ -q change_password "$USER_NAME" "$USER_PASSWORD" >/dev/null
  rabbitmqctl_ -q set_user_tags "$USER_NAME" administrator >/dev/null
  rabbitmqctl_ -q set_permissions -p / "$USER_NAME" ".*" ".*" ".*" >/dev/null
}

# Starts the node and waits until it has booted; prints both logs' tails and fails otherwise.
rabbit_boot() {
  log "rabbitmq: starting node $RABBIT_NODE (log: $RABBIT_LOG)"
  # Run in the foreground of a new session as the rabbitmq user, so it outlives this script
  # and its output lands in one log (rabbitmq-server -detached loses early boot errors).
  (
    cd /var/lib/rabbitmq
    exec setsid env HOME=/var/lib/rabbitmq ERL_EPMD_ADDRESS=127.0.0.1 \
      runuser -u rabbitmq -- /usr/lib/rabbitmq/bin/rabbitmq-server >>"$RABBIT_LOG" 2>&1 </dev/null
  ) &
  disown
  # await_startup needs the node to be reachable first. After an unclean stop (the machine or
  # session killed) the node rebuilds its message store and queue indices before it serves;
  # with many queues left by benches that takes minutes on two cores, so wait long.
  if wait_for 60 rabbit_node_running; then
    log "rabbitmq: node is up, waiting for it to finish booting (up to ${RABBIT_BOOT_TIMEOUT}s)"
    rabbitmqctl_ -q await_startup --timeout "$RABBIT_BOOT_TIMEOUT" >/dev/null && return 0
  fi
  tail -n 30 "$RABBIT_LOG" >&2
  echo "--- last lines of $RABBIT_NODE_LOG:" >&2
  tail -n 40 "$RABBIT_NODE_LOG" >&2 || true
  log "rabbitmq: node $RABBIT_NODE did not boot"
  return 1
}

# Stops the node however far it got: politely, then its processes.
rabbit_kill_node() {
  rabbitmqctl_ -q shutdown >/dev/null 2>&1 || true
  pkill -u rabbitmq -f "beam.smp.*-s rabbit boot" 2>/dev/null || true
  sleep 2
  pkill -9 -u rabbitmq -f "beam.smp.*-s rabbit boot" 2>/dev/null || true
}

rabbit_start() {
  RABBIT_RESTART=""
  rabbit_configure
  if rabbit_node_running; then
    if [ -n "$RABBIT_RESTART" ]; then
      log "rabbitmq: restarting to apply loopback config"
      rabbitmqctl_ -q shutdown >/dev/null 2>&1 || true
    elif ! rabbitmqctl_ -q await_startup --timeout 30 >/dev/null 2>&1; then
      # The Erlang VM answers but RabbitMQ itself is not running (a boot that failed halfway).
      log "rabbitmq: node $RABBIT_NODE answers but has not booted; stopping it"
      rabbit_kill_node
    else
      log "rabbitmq: node $RABBIT_NODE is running"
    fi
  fi
  if ! rabbit_node_running; then
    # A node that dies while it boots (seen once in CI, cause not kept) gets one more try.
    rabbit_boot || {
      log "rabbitmq: boot failed; stopping what is left of the node and starting it once more"
      rabbit_kill_node
      rabbit_boot || {
        rabbit_kill_node
        die "rabbitmq did not boot twice; see $RABBIT_LOG and $RABBIT_NODE_LOG"
      }
    }
  fi
  wait_for 60 tcp_open "$RABBIT_MGMT_PORT" || die "rabbitmq management API not on 127.0.0.1:$RABBIT_MGMT_PORT"
  rabbit_ensure_user
  wait_for 30 rabbit_answers || die "rabbitmq: AMQP 127.0.0.1:$AMQP_PORT or management API not answering for $USER_NAME"
}

rabbit_stop() {
  if [ -x /usr/lib/rabbitmq/bin/rabbitmqctl ] && rabbit_node_running; then
    log "rabbitmq: stopping"
    rabbitmqctl_ -q shutdown >/dev/null
  else
    log "rabbitmq: not running"
  fi
  # epmd (Erlang's port mapper) outlives the node; stop it too when no other node uses it.
  if command -v epmd >/dev/null && epmd -names 2>/dev/null | grep -q '^epmd: up' &&
    ! epmd -names 2>/dev/null | grep -q '^name '; then
    epmd -kill >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------------------------------------

all_answer() { pg_answers && redis_answers && rabbit_answers; }

# Fast path: config files unchanged and everything answers means nothing to do.
configs_current() {
  [ -f "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/turnpike.conf" ] &&
    grep -q "^listen_addresses = '127.0.0.1'" "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/turnpike.conf" &&
    grep -q "^listeners.tcp.default = 127.0.0.1:$AMQP_PORT" /etc/rabbitmq/rabbitmq.conf 2>/dev/null
}

cmd_start() {
  if [ -z "$(missing_packages)" ] && configs_current && all_answer; then
    log "postgres, redis and rabbitmq already running on 127.0.0.1"
    return 0
  fi
  install_missing
  if pg_answers && grep -qs "^listen_addresses = '127.0.0.1'" \
    "/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/turnpike.conf"; then
    log "postgres: running"
  else
    pg_start
  fi
  if redis_answers; then log "redis: running"; else redis_start; fi
  rabbit_start
  all_answer || die "a service stopped answering right after start"
  log "ready: postgres 127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT, amqp 127.0.0.1:$AMQP_PORT, management 127.0.0.1:$RABBIT_MGMT_PORT"
}

cmd_status() {
  local rc=0
  if pg_answers; then log "postgres: up (127.0.0.1:$PG_PORT, db $USER_NAME)"; else log "postgres: DOWN"; rc=1; fi
  if command -v redis-cli >/dev/null && redis_answers; then log "redis: up (127.0.0.1:$REDIS_PORT)"; else log "redis: DOWN"; rc=1; fi
  if command -v curl >/dev/null && rabbit_answers; then
    log "rabbitmq: up (amqp 127.0.0.1:$AMQP_PORT, management 127.0.0.1:$RABBIT_MGMT_PORT)"
  else
    log "rabbitmq: DOWN"
    rc=1
  fi
  exit "$rc"
}

cmd_stop() {
  rabbit_stop
  if command -v redis-cli >/dev/null; then redis_stop; else log "redis: not installed"; fi
  pg_stop
}

# Restarts one service that runs now, optionally staying down for $2 seconds; the others are left alone.
cmd_restart() {
  local down="${2:-0}"
  [[ "$down" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "seconds-down must be a number, got '$down'"
  case "${1:-}" in
    postgres)
      pg_answers || die "postgres is not running; use: $0 start"
      log "postgres: restarting (down for ${down}s)"
      pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast
      sleep "$down"
      pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start ||
        die "postgres failed to start; see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log"
      wait_for 60 pg_answers || die "postgres does not answer on 127.0.0.1:$PG_PORT after the restart"
      ;;
    redis)
      redis_answers || die "redis is not running; use: $0 start"
      log "redis: restarting (down for ${down}s, dataset kept)"
      # SHUTDOWN SAVE writes one snapshot even with saving disabled; the new server loads it, then
      # the snapshot is removed so that a later plain start is empty, as before.
      redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown save >/dev/null 2>&1 || true
      wait_for 15 tcp_closed "$REDIS_PORT" || die "redis did not stop"
      sleep "$down"
      redis_start
      rm -f /var/lib/redis/dump.rdb
      ;;
    rabbitmq)
      [ -x /usr/lib/rabbitmq/bin/rabbitmqctl ] && rabbit_node_running || die "rabbitmq is not running; use: $0 start"
      log "rabbitmq: restarting (down for ${down}s)"
      rabbitmqctl_ -q shutdown >/dev/null
      sleep "$down"
      rabbit_start
      ;;
    *) die "usage: $0 restart postgres|redis|rabbitmq [seconds-down]" ;;
  esac
  log "$1: restarted"
}

case "${1:-start}" in
  start) cmd_start ;;
  status) cmd_status ;;
  stop) cmd_stop ;;
  restart) cmd_restart "${2:-}" "${3:-0}" ;;
  *) die "usage: $0 [start|status|stop|restart postgres|redis|rabbitmq [seconds-down]]" ;;
esac
