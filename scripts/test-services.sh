#!/usr/bin/env bash
# test-services.sh up|down — start (installing when missing) every external service the tests
# use, and write their addresses to $GVP_SERVICES_DIR/env for `make test` to source:
#   GVP_TEST_POSTGRES_DSN, GVP_TEST_ACTIVEMQ_STOMP, GVP_TEST_CONSUL, GVP_TEST_SIPP,
#   GVP_TEST_CHROMIUM.
# `down` stops only what these scripts started.
set -euo pipefail
SERVICE=services
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mkdir -p "$GVP_SERVICES_DIR"
ENV_FILE=$GVP_SERVICES_DIR/env

up() {
  : >"$ENV_FILE.tmp"
  dsn=$("$here/postgres.sh" start)
  echo "GVP_TEST_POSTGRES_DSN=$dsn" >>"$ENV_FILE.tmp"
  # ActiveMQ on ports of its own: 61613 is the default of gvp local's embedded broker.
  stomp=$(GVP_ACTIVEMQ_STOMP_PORT=${GVP_ACTIVEMQ_STOMP_PORT:-61713} GVP_ACTIVEMQ_PORT=${GVP_ACTIVEMQ_PORT:-61716} "$here/activemq.sh" start)
  echo "GVP_TEST_ACTIVEMQ_STOMP=$stomp" >>"$ENV_FILE.tmp"
  for s in consul sipp chromium; do
    "$here/$s.sh" start | sed -n 's/^export //p' >>"$ENV_FILE.tmp"
  done
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  log "services up; environment in $ENV_FILE:"
  sed 's/^/  /' "$ENV_FILE" >&2
}

down() {
  for s in chromium sipp consul activemq postgres; do
    [ -x "$here/$s.sh" ] && "$here/$s.sh" stop || true
  done
  rm -f "$ENV_FILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
