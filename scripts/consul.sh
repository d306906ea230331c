#!/usr/bin/env bash
# consul.sh start|stop|status|build — a Consul v1.16.6 agent in dev mode on loopback for tests.
# Consul has no Debian package and later versions are not open source: v1.16.6 (MPL-2.0) is
# built from the Go module proxy once and cached in $GVP_CONSUL_CACHE (default
# ~/.cache/gvp/consul-1.16.6); later starts reuse the binary. HTTP on 127.0.0.1:${GVP_CONSUL_PORT:-8500}.
set -euo pipefail
SERVICE=consul
. "$(dirname "$0")/lib.sh"

VERSION=v1.16.6
CACHE=${GVP_CONSUL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gvp/consul-${VERSION#v}}
BIN=$CACHE/consul
PORT=${GVP_CONSUL_PORT:-8500}
DIR=$GVP_SERVICES_DIR/consul
PIDFILE=$DIR/pid
ADDR=127.0.0.1:$PORT

build() {
  [ -x "$BIN" ] && return 0
  log "building consul $VERSION (first time only; about 3 minutes on 2 cores)"
  local src dir
  dir=$(go mod download -json "github.com/hashicorp/consul@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || die "go mod download of consul $VERSION failed"
  src=$(mktemp -d)
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  (
    cd "$src"
    go mod edit -dropreplace=github.com/hashicorp/consul/api -dropreplace=github.com/hashicorp/consul/envoyextensions \
      -dropreplace=github.com/hashicorp/consul/proto-public -dropreplace=github.com/hashicorp/consul/sdk \
      -dropreplace=github.com/hashicorp/consul/troubleshoot
    sed -i -e '/command\/troubleshoot\/ports"/d' -e '/entry{"troubleshoot ports"/d' command/registry.go
    rm -rf command/troubleshoot/ports
    mkdir -p "$CACHE"
    GOFLAGS=-mod=mod GONOSUMDB=github.com/hashicorp/consul/envoyextensions \
      go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .
  ) || { rm -rf "$src"; die "consul build failed"; }
  mv "$BIN.tmp" "$BIN"
  rm -rf "$src"
  log "built $BIN"
}

ready() { curl -sf "http://$ADDR/v1/status/leader" | grep -q ':'; }

start() {
  if pid_alive "$PIDFILE" && ready; then log "already running on $ADDR"; echo "export GVP_TEST_CONSUL=$ADDR"; return 0; fi
  build
  mkdir -p "$DIR"
  "$BIN" agent -dev -bind 127.0.0.1 -client 127.0.0.1 -http-port "$PORT" \
    -grpc-port -1 -grpc-tls-port -1 -dns-port -1 -serf-lan-port $((PORT + 1)) -server-port $((PORT + 2)) -serf-wan-port $((PORT + 4)) \
    >"$DIR/consul.log" 2>&1 &
  echo $! >"$PIDFILE"
  wait_for 30 consul ready
  log "ready on $ADDR"
  echo "export GVP_TEST_CONSUL=$ADDR"
}

stop() { stop_pidfile "$PIDFILE" INT 20; log "stopped"; }

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) if ready; then echo "running $ADDR"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status|build" >&2; exit 2 ;;
esac
