#!/usr/bin/env bash
# swift-aio.sh - single-replica OpenStack Swift "all in one" on 127.0.0.1,
# no systemd, no root-only paths (everything lives under $SWIFT_AIO_DIR).
# lightsout's copy: Go tests (bindings/swift/swiftaio) run `start` with free
# ports in a temporary SWIFT_AIO_DIR and `stop` when they finish.
#
#   swift-aio.sh deps     apt-get install the Debian packages it needs
#   swift-aio.sh start    build config + rings in a fresh dir, start
#                         memcached + account/container/object/proxy servers,
#                         wait until auth works, print the connection info
#   swift-aio.sh stop     kill only the PIDs recorded in $SWIFT_AIO_DIR/run/pids
#   swift-aio.sh status   show the recorded PIDs and whether they are alive
#   swift-aio.sh env      print shell exports (eval "$(swift-aio.sh env)")
#   swift-aio.sh selftest auth, upload, temp URL (ok/expired/wrong key), X-Delete-After, delete
#
# Tunables (environment):
#   SWIFT_AIO_DIR        state dir (config, rings, data, logs)  [/tmp/swift-aio]
#   SWIFT_PORT           proxy port                              [18080]
#   SWIFT_OBJECT_PORT    object server port                      [16200]
#   SWIFT_CONTAINER_PORT container server port                   [16201]
#   SWIFT_ACCOUNT_PORT   account server port                     [16202]
#   SWIFT_MEMCACHE_PORT  memcached port (tempauth needs it)      [11311]
#   SWIFT_ACCOUNT / SWIFT_USER / SWIFT_KEY   tempauth creds  [test / tester / testing]
#   SWIFT_READY_TIMEOUT  seconds to wait for readiness           [60]
#
# Needs: swift swift-proxy swift-account swift-container swift-object
#        python3-swiftclient memcached curl  (see `deps`)
set -euo pipefail

DIR="${SWIFT_AIO_DIR:-/tmp/swift-aio}"
PORT="${SWIFT_PORT:-18080}"
OBJ_PORT="${SWIFT_OBJECT_PORT:-16200}"
CONT_PORT="${SWIFT_CONTAINER_PORT:-16201}"
ACCT_PORT="${SWIFT_ACCOUNT_PORT:-16202}"
MC_PORT="${SWIFT_MEMCACHE_PORT:-11311}"
S_ACCOUNT="${SWIFT_ACCOUNT:-test}"
S_USER="${SWIFT_USER:-tester}"
S_KEY="${SWIFT_KEY:-testing}"
READY_TIMEOUT="${SWIFT_READY_TIMEOUT:-60}"

ETC="$DIR/etc"
NODE="$DIR/srv/node"
RUN="$DIR/run"
LOG="$DIR/log"
PIDFILE="$RUN/pids"
# Debian's swift scripts use /usr/bin/python3; never rely on a pyenv python on PATH.
PY=/usr/bin/python3
AUTH_URL="http://127.0.0.1:$PORT/auth/v1.0"

die() { echo "swift-aio: $*" >&2; exit 1; }

cmd_deps() {
  # the project's package list (swift, swift-*, python3-swiftclient, memcached, ...)
  exec "$(dirname "$0")/deps.sh"
}

check_deps() {
  local m=()
  for b in swift-proxy-server swift-account-server swift-container-server \
           swift-object-server swift-ring-builder swift memcached curl; do
    command -v "$b" >/dev/null 2>&1 || m+=("$b")
  done
  [ ${#m[@]} -eq 0 ] || die "missing: ${m[*]} (run: $0 deps)"
}

check_xattr() {
  # Swift stores object metadata in user.* xattrs, split in 254-byte chunks.
  # ext4 (inline, one 4 KiB block) and tmpfs (kernel >= 6.6) both work.
  local f="$1/.xattr-probe.$$"
  : >"$f"
  if ! "$PY" - "$f" <<'EOF'
import os, sys
f = sys.argv[1]
for i in range(8):
    os.setxattr(f, 'user.swift.metadata%s' % (i or ''), b'x' * 254)
assert os.getxattr(f, 'user.swift.metadata7') == b'x' * 254
EOF
  then
    rm -f "$f"
    die "filesystem under $1 lacks user xattrs; set SWIFT_AIO_DIR to ext4/xfs/tmpfs (or loop-mount an ext4 image there)"
  fi
  rm -f "$f"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive_pid() { # running and not a zombie waiting to be reaped by PID 1
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

is_ours() { # pid -> true when alive and its cmdline mentions our DIR
  local pid="$1"
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR"
}

write_configs() {
  local me; me="$(id -un)"
  cat >"$ETC/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = swift-aio-suffix
swift_hash_path_prefix = swift-aio-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
EOF

  # workers = 0: each server is ONE process (no fork), so one PID to stop.
  local common="swift_dir = $ETC
devices = $NODE
mount_check = false
bind_ip = 127.0.0.1
workers = 0
user = $me
log_level = INFO
# no /dev/log here; keep syslog fallback quiet-ish and use -v (stderr) for logs
log_udp_host = 127.0.0.1
log_udp_port = 9"

  cat >"$ETC/account-server.conf" <<EOF
[DEFAULT]
bind_port = $ACCT_PORT
$common

[pipeline:main]
pipeline = healthcheck account-server

[app:account-server]
use = egg:swift#account

[filter:healthcheck]
use = egg:swift#healthcheck
EOF

  cat >"$ETC/container-server.conf" <<EOF
[DEFAULT]
bind_port = $CONT_PORT
$common

[pipeline:main]
pipeline = healthcheck container-server

[app:container-server]
use = egg:swift#container
allow_versions = true

[filter:healthcheck]
use = egg:swift#healthcheck
EOF

  cat >"$ETC/object-server.conf" <<EOF
[DEFAULT]
bind_port = $OBJ_PORT
$common

[pipeline:main]
pipeline = healthcheck object-server

[app:object-server]
use = egg:swift#object

[filter:healthcheck]
use = egg:swift#healthcheck
EOF

  cat >"$ETC/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 0
user = $me
swift_dir = $ETC
log_level = INFO
log_udp_host = 127.0.0.1
log_udp_port = 9

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
allow_account_management = true
account_autocreate = true

[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_${S_ACCOUNT}_${S_USER} = ${S_KEY} .admin
# default token life is 86400 s
token_life = 86400

[filter:tempurl]
use = egg:swift#tempurl
# defaults: methods = GET HEAD PUT POST DELETE ; allowed_digests = sha1 sha256 sha512

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MC_PORT

[filter:healthcheck]
use = egg:swift#healthcheck
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
[filter:symlink]
use = egg:swift#symlink
EOF
}

build_rings() {
  # Same result as 3x (swift-ring-builder X.builder create 10 1 1; add
  # r1z1-127.0.0.1:PORT/d1 1; rebalance) but in one python start (~0.3 s vs ~3 s).
  "$PY" - "$ETC" "$ACCT_PORT" "$CONT_PORT" "$OBJ_PORT" <<'EOF'
import sys, os
from swift.common.ring import RingBuilder
etc = sys.argv[1]
ports = {'account': int(sys.argv[2]), 'container': int(sys.argv[3]),
         'object': int(sys.argv[4])}
for name, port in ports.items():
    b = RingBuilder(10, 1, 1)   # part_power=10, replicas=1, min_part_hours=1
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
               'device': 'd1', 'weight': 1.0, 'meta': ''})
    b.rebalance()
    b.save(os.path.join(etc, name + '.builder'))
    b.get_ring().save(os.path.join(etc, name + '.ring.gz'))
EOF
}

all_alive() { # fail fast when a server died during start-up (bad config...)
  local name pid
  while read -r name pid; do
    alive_pid "$pid" || { echo "swift-aio: $name (pid $pid) exited" >&2; return 1; }
  done <"$PIDFILE"
}

wait_http() { # url deadline
  local url="$1" deadline="$2"
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    all_alive || return 1
    sleep 0.2
  done
}

ensure_etc_swift_conf() {
  # Every swift server validates /etc/swift/swift.conf (hash prefix/suffix)
  # BEFORE it honours swift_dir, so that file must exist even though our own
  # copy in $ETC is the one used afterwards. The swift package ships it.
  [ -r /etc/swift/swift.conf ] && return 0
  if [ -w /etc ] || [ -w /etc/swift ]; then
    mkdir -p /etc/swift
    printf '[swift-hash]\nswift_hash_path_suffix = swift-aio-suffix\nswift_hash_path_prefix = swift-aio-prefix\n' >/etc/swift/swift.conf
  else
    die "/etc/swift/swift.conf missing (install package swift, or create it as root)"
  fi
}

cmd_start() {
  check_deps
  ensure_etc_swift_conf
  if [ -s "$PIDFILE" ]; then
    while read -r _ pid; do
      is_ours "$pid" && die "already running (pid $pid); run: $0 stop"
    done <"$PIDFILE"
  fi
  for p in "$PORT" "$OBJ_PORT" "$CONT_PORT" "$ACCT_PORT" "$MC_PORT"; do
    port_free "$p" || die "port $p on 127.0.0.1 is already in use"
  done
  local t0=$EPOCHREALTIME
  # only ever wipe a dir this script created (marker file) or an empty one
  if [ -e "$DIR" ] && [ ! -e "$DIR/.swift-aio" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    die "$DIR exists and was not created by this script; refusing to wipe it"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR" && touch "$DIR/.swift-aio"
  mkdir -p "$ETC" "$NODE/d1" "$RUN" "$LOG"
  check_xattr "$NODE/d1"
  write_configs
  build_rings
  : >"$PIDFILE"

  setsid memcached -u "$(id -un)" -l 127.0.0.1 -p "$MC_PORT" -U 0 -m 16 -c 256 \
    -P "$RUN/memcached.pid" >"$LOG/memcached.log" 2>&1 </dev/null &
  # the -P path lies under $DIR, so is_ours() recognises this memcached by cmdline
  echo "memcached $!" >>"$PIDFILE"
  local s
  for s in account container object proxy; do
    setsid "swift-$s-server" "$ETC/$s-server.conf" -v \
      >"$LOG/$s.log" 2>&1 </dev/null &
    echo "$s $!" >>"$PIDFILE"
  done

  local deadline=$(( $(date +%s) + READY_TIMEOUT ))
  for url in "http://127.0.0.1:$ACCT_PORT/healthcheck" \
             "http://127.0.0.1:$CONT_PORT/healthcheck" \
             "http://127.0.0.1:$OBJ_PORT/healthcheck" \
             "http://127.0.0.1:$PORT/healthcheck"; do
    if ! wait_http "$url" "$deadline"; then
      echo "swift-aio: $url not ready; logs in $LOG" >&2
      tail -n 20 "$LOG"/*.log >&2 || true
      cmd_stop >&2
      exit 1
    fi
  done
  # auth round trip (needs memcached) = real readiness
  until curl -fsS -o /dev/null --max-time 2 -H "X-Auth-User: $S_ACCOUNT:$S_USER" \
          -H "X-Auth-Key: $S_KEY" "$AUTH_URL" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ] || ! all_alive; then
      echo "swift-aio: auth not working; logs in $LOG" >&2; cmd_stop >&2; exit 1
    fi
    sleep 0.2
  done
  awk -v a="$t0" -v b="$EPOCHREALTIME" -v d="$DIR" \
    'BEGIN{printf "swift-aio: ready in %.1fs (dir %s)\n", b-a, d}' 
  cmd_env
}

cmd_env() {
  cat <<EOF
export ST_AUTH=$AUTH_URL
export ST_USER=$S_ACCOUNT:$S_USER
export ST_KEY=$S_KEY
export SWIFT_STORAGE_URL=http://127.0.0.1:$PORT/v1/AUTH_$S_ACCOUNT
EOF
}

cmd_stop() {
  [ -s "$PIDFILE" ] || { echo "swift-aio: nothing recorded in $PIDFILE"; return 0; }
  local name pid killed=()
  while read -r name pid; do
    if is_ours "$pid"; then kill -TERM "$pid" 2>/dev/null && killed+=("$pid"); fi
  done <"$PIDFILE"
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${killed[@]}"; do alive_pid "$pid" && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${killed[@]}"; do
    is_ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$PIDFILE"
  echo "swift-aio: stopped ${#killed[@]} process(es) (data kept in $DIR)"
}

cmd_status() {
  [ -s "$PIDFILE" ] || { echo "not running"; return 1; }
  local name pid rc=0
  while read -r name pid; do
    if is_ours "$pid"; then
      echo "$name $pid up $(awk '/VmRSS/{print $2" kB"}' /proc/$pid/status)"
    else echo "$name $pid DOWN"; rc=1; fi
  done <"$PIDFILE"
  return $rc
}

cmd_selftest() { # needs a running instance; exits non-zero on the first failure
  local A=(-A "$AUTH_URL" -U "$S_ACCOUNT:$S_USER" -K "$S_KEY") base="http://127.0.0.1:$PORT"
  local path="/v1/AUTH_$S_ACCOUNT/selftest/obj" f code url
  f=$(mktemp); echo "swift-aio selftest $$" >"$f"
  ck() { if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got $2 want $3"; rm -f "$f"; exit 1; fi; }
  ok() { local n="$1"; shift; if "$@" >/dev/null; then ck "$n" 0 0; else ck "$n" "$?" 0; fi; }
  ok "auth + account stat" swift "${A[@]}" stat
  ok "upload" swift "${A[@]}" upload selftest "$f" --object-name obj
  ok "set account Temp-URL-Key" swift "${A[@]}" post -m "Temp-URL-Key:selftest-key"
  url=$(swift tempurl GET 600 "$path" selftest-key)
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$url"); ck "tempurl GET" "$code" 200
  url=$(swift tempurl --absolute GET 1000000000 "$path" selftest-key)
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$url"); ck "expired tempurl rejected" "$code" 401
  url=$(swift tempurl GET 600 "$path" wrong-key)
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$url"); ck "wrong-key tempurl rejected" "$code" 401
  ok "upload with X-Delete-After: 2" swift "${A[@]}" upload selftest "$f" --object-name ephemeral -H "X-Delete-After: 2"
  sleep 3
  code=$(swift "${A[@]}" stat selftest ephemeral >/dev/null 2>&1; echo $?); ck "object gone after X-Delete-After" "$code" 1
  ok "delete" swift "${A[@]}" delete selftest obj
  url=$(swift tempurl GET 600 "$path" selftest-key)
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base$url"); ck "tempurl after delete" "$code" 404
  swift "${A[@]}" delete selftest >/dev/null 2>&1 || true   # container listing may still hold 'ephemeral' (no expirer)
  swift "${A[@]}" post -m "Temp-URL-Key:" >/dev/null || true
  rm -f "$f"
  echo "swift-aio selftest: all ok"
}

case "${1:-}" in
  deps) cmd_deps ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  selftest) cmd_selftest ;;
  *) echo "usage: $0 {deps|start|stop|status|env|selftest}" >&2; exit 2 ;;
esac
