#!/usr/bin/env bash
# pg.sh - a throw-away PostgreSQL 15 server for tests (no mocks, no system service).
#
#   pg.sh start [--parent PID]   initdb in a new temp dir, start the server on
#                                127.0.0.1 at a random free port, print two lines:
#                                  url=postgresql://lightsout:PW@127.0.0.1:PORT/postgres?sslmode=disable
#                                  dir=/tmp/lightsout-pg.XXXX
#                                With --parent, the server is stopped and its dir
#                                removed when process PID exits (a killed test
#                                binary leaves nothing running).
#   pg.sh restart DIR            restart the server of DIR (fault tests: clients must reconnect).
#   pg.sh stop DIR               stop the server of DIR and remove DIR.
#
# As root the server runs as the unprivileged user nobody (PostgreSQL refuses
# to run as root). It listens on 127.0.0.1 only (its unix socket is in DIR);
# the superuser "lightsout" has a random password (scram-sha-256).
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
[ -x "$PGBIN/postgres" ] || { echo "pg.sh: $PGBIN/postgres not found (run testdata/tools/deps.sh: package postgresql)" >&2; exit 2; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

stop() {
  local dir=$1
  [ -d "$dir/data" ] && as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
start)
  parent=
  if [ "${2:-}" = --parent ]; then parent=${3:?pg.sh start --parent PID}; fi
  dir=$(mktemp -d /tmp/lightsout-pg.XXXXXX)
  chmod 700 "$dir"
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$pw" >"$dir/pw"
  [ "$(id -u)" = 0 ] && chown -R nobody: "$dir"
  as_owner "$PGBIN/initdb" -D "$dir/data" -U lightsout --pwfile="$dir/pw" --auth=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
  rm -f "$dir/pw"
  started=
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(( 20000 + RANDOM % 40000 ))
    ss -Htln "sport = :$port" | grep -q . && continue
    if as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1; then
      started=1
      break
    fi
  done
  if [ -z "$started" ]; then
    echo "pg.sh: the server did not start; its log:" >&2
    tail -20 "$dir/server.log" >&2 || true
    rm -rf "$dir"
    exit 1
  fi
  if [ -n "$parent" ]; then
    # Watchdog: stop the server when the test binary is gone, however it ended.
    nohup bash -c "while kill -0 $parent 2>/dev/null; do sleep 1; done; \"$0\" stop \"$dir\"" >/dev/null 2>&1 &
  fi
  echo "url=postgresql://lightsout:$pw@127.0.0.1:$port/postgres?sslmode=disable"
  echo "dir=$dir"
  ;;
restart)
  d=${2:?pg.sh restart DIR}
  as_owner "$PGBIN/pg_ctl" -D "$d/data" -l "$d/server.log" -m fast -w -t 60 restart >/dev/null
  ;;
stop)
  stop "${2:?pg.sh stop DIR}"
  ;;
*)
  echo "usage: pg.sh start [--parent PID] | pg.sh restart DIR | pg.sh stop DIR" >&2
  exit 2
  ;;
esac
