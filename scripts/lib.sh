# shellcheck shell=bash
# Shared helpers for the service scripts: state folder, PID files, readiness waits.
# Every service script keeps its state under $GVP_SERVICES_DIR/<name> (default /tmp/gvp-services)
# and stops only the process whose PID it wrote.

GVP_SERVICES_DIR=${GVP_SERVICES_DIR:-/tmp/gvp-services}

log() { printf '[%s] %s\n' "${SERVICE:-scripts}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid_alive FILE: true when FILE names a running process.
pid_alive() {
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# wait_for SECONDS DESCRIPTION CMD...: retry CMD every 0.2 s until it succeeds or time runs out.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "$what not ready after ${secs}s"
    fi
    sleep 0.2
  done
}

# stop_pids PID...: SIGTERM, up to 5 s for the processes to exit, then SIGKILL.
stop_pids() {
  local p alive i
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq 50); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
}

# bench_binary ROOT DEST: the gvp a benchmark runs: a copy of $BENCH_BIN when set, else one
# built from the checkout at ROOT.
bench_binary() {
  if [ -n "${BENCH_BIN:-}" ]; then
    cp "$BENCH_BIN" "$2"
  else
    log "building gvp"
    ( cd "$1" && go build -o "$2" . )
  fi
}

# tcp_open HOST PORT: true when a TCP connect succeeds.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# apt_install PKG...: install Debian packages that are missing (runs apt-get update once).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ ! -f "$GVP_SERVICES_DIR/.apt-updated" ]; then
    mkdir -p "$GVP_SERVICES_DIR"
    apt-get update -qq && touch "$GVP_SERVICES_DIR/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# stop_pidfile FILE SIGNAL TIMEOUT: stop the process in FILE (only that one) and wait for it.
stop_pidfile() {
  local file=$1 sig=${2:-TERM} secs=${3:-20}
  if ! pid_alive "$file"; then rm -f "$file"; return 0; fi
  local pid; pid=$(cat "$file")
  kill "-$sig" "$pid" 2>/dev/null || true
  local deadline=$(( $(date +%s) + secs ))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$file"
}
