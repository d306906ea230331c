#!/usr/bin/env bash
# postgres.sh start|stop|status|dsn — a throwaway PostgreSQL 15 cluster for gvp's tests.
# Listens on 127.0.0.1:${GVP_PG_PORT:-55432}, user postgres, trust auth, fsync off.
# State (data, socket, log, PID) under $GVP_SERVICES_DIR/postgres. Idempotent.
set -euo pipefail
SERVICE=postgres
. "$(dirname "$0")/lib.sh"

PORT=${GVP_PG_PORT:-55432}
DIR=$GVP_SERVICES_DIR/postgres
DATA=$DIR/data
DSN="postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"

pgbin() {
  local v
  for v in 17 16 15; do
    [ -x "/usr/lib/postgresql/$v/bin/initdb" ] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  done
  return 1
}

ready() { pg_isready -q -h 127.0.0.1 -p "$PORT"; }

start() {
  if ready; then log "already running on 127.0.0.1:$PORT"; echo "$DSN"; return 0; fi
  pgbin >/dev/null || apt_install postgresql
  local P; P=$(pgbin) || die "PostgreSQL binaries not found after install"
  mkdir -p "$DIR"
  chown postgres:postgres "$DIR"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initdb in $DATA"
    su postgres -c "$P/initdb -D $DATA -U postgres --auth-local=trust --auth-host=trust -E UTF8 --locale=C.UTF-8 -N" >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
  fi
  su postgres -c "$P/pg_ctl -D $DATA -l $DIR/pg.log -w -o '-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200' start" >/dev/null \
    || { tail -20 "$DIR/pg.log" >&2; die "pg_ctl start failed"; }
  wait_for 30 "postgres" ready
  head -1 "$DATA/postmaster.pid" >"$DIR/pid"
  log "ready on 127.0.0.1:$PORT"
  echo "$DSN"
}

stop() {
  local P
  if [ -f "$DATA/postmaster.pid" ] && P=$(pgbin); then
    su postgres -c "$P/pg_ctl -D $DATA -m fast -w stop" >/dev/null 2>&1 || true
  fi
  rm -f "$DIR/pid"
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if ready; then echo "running $DSN"; else echo "stopped"; exit 1; fi ;;
  dsn) echo "$DSN" ;;
  *) echo "usage: $0 start|stop|status|dsn" >&2; exit 2 ;;
esac
