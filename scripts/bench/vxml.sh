#!/usr/bin/env bash
# vxml.sh — capacity of one mcp running a DTMF-only VoiceXML application end to end (GVP
# publishes about 1,300 such calls per MCP host at 99.99% success; our target is 1,500 on a
# 2-core host).
#
# The application (scripts/bench/testdata/vxml-dtmf) is 18 pages, each collecting 2 or 3
# digits with a barge-in prompt and checking them; 50 digits in all. A call that receives every
# digit in order reaches done.vxml and the mcp hangs up; anything else (a lost, late or wrong
# digit, a noinput) ends in fail.vxml. The pages are served by a local HTTP server (python3) on
# 127.0.0.1 as cacheable documents; done.vxml and fail.vxml are not cacheable, so the server's
# log counts the completed and the failed calls exactly.
#
# For each N of STEPS a fresh `gvp mcp` (tts_engine none: prompts are rendered as silence and
# still sent as RTP) takes N calls from `gvp call --calls N --concurrency N --rate N/RAMP`,
# each sending the 50 digits (RFC 4733) DIGIT_GAP apart, about a minute per call. Reported per
# step: concurrent calls reached (peak of gvp_mcp_sessions), calls answered, calls completed
# (done.vxml) and the success ratio, mcp CPU per call (from /proc/PID/stat: % of one core per
# call while calls are up, and CPU ms per whole call), resident memory of the mcp (idle, peak)
# and the RSS delta per call. The caller (`gvp call`) and the HTTP server run on the same host
# and share its cores with the mcp: the figures are for that setup.
#
# Environment: STEPS ("250 500 1000 1500"), RAMP (20: seconds to start the N calls),
# DIGIT_GAP (1.2: seconds between digits), FIRST_DIGIT (2), SIP_PORT (26070), ADMIN_PORT
# (28311), HTTP_PORT (28380), GVP (a built gvp binary; default: build one).
set -euo pipefail
SERVICE=bench-vxml
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

STEPS=${STEPS:-"250 500 1000 1500"}
RAMP=${RAMP:-20}
DIGIT_GAP=${DIGIT_GAP:-1.2}
FIRST_DIGIT=${FIRST_DIGIT:-2}
SIP_PORT=${SIP_PORT:-26070}
ADMIN_PORT=${ADMIN_PORT:-28311}
HTTP_PORT=${HTTP_PORT:-28380}
APP="$ROOT/scripts/bench/testdata/vxml-dtmf"
# DIGITS is what the 18 pages expect, in order (see the pages' comments).
DIGITS=12345678901234567890123456789012345678901234567890
WORK=$(mktemp -d /tmp/gvp-bench-vxml.XXXXXX)
command -v jq >/dev/null || die "jq is needed"
command -v python3 >/dev/null || die "python3 is needed"

GVP=${GVP:-}
if [ -z "$GVP" ]; then
  log "building gvp"
  ( cd "$ROOT" && go build -o "$WORK/gvp" . )
  GVP="$WORK/gvp"
fi

# The application server: the pages cacheable for an hour, done/fail never cached; one log
# line per request.
cat >"$WORK/server.py" <<'EOF'
import http.server, sys, functools
class H(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".vxml": "application/voicexml+xml"}
    def end_headers(self):
        if self.path.split("?")[0] in ("/done.vxml", "/fail.vxml"):
            self.send_header("Cache-Control", "no-store")
        else:
            self.send_header("Cache-Control", "max-age=3600")
        super().end_headers()
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer.request_queue_size = 1024
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), functools.partial(H, directory=sys.argv[2]))
srv.serve_forever()
EOF
python3 "$WORK/server.py" "$HTTP_PORT" "$APP" 2>"$WORK/http.log" &
HTTP_PID=$!
MCP_PID=
cleanup() {
  [ -n "$MCP_PID" ] && { kill "$MCP_PID" 2>/dev/null || true; wait "$MCP_PID" 2>/dev/null || true; }
  kill "$HTTP_PID" 2>/dev/null || true; wait "$HTTP_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_for 10 "application server" curl -sf "http://127.0.0.1:$HTTP_PORT/p01.vxml"

# The caller's digit schedule: 50 digits, DIGIT_GAP apart from FIRST_DIGIT.
SCHEDULE=$(awk -v d="$DIGITS" -v f="$FIRST_DIGIT" -v g="$DIGIT_GAP" 'BEGIN{
  for (i=1;i<=length(d);i++) printf "%s%s@%.3fs", (i>1?",":""), substr(d,i,1), f+(i-1)*g }')
CALL_SECONDS=$(awk -v f="$FIRST_DIGIT" -v g="$DIGIT_GAP" -v n="${#DIGITS}" 'BEGIN{printf "%.1f", f+(n-1)*g+1}')
TARGET="sip:dialog@127.0.0.1:$SIP_PORT;voicexml=http%3A%2F%2F127.0.0.1%3A$HTTP_PORT%2Fp01.vxml"
TCK=$(getconf CLK_TCK)
PAGE_KB=$(( $(getconf PAGESIZE) / 1024 ))

start_mcp() {
  "$GVP" mcp --data-dir "$WORK" --log-level warn \
    --set mcp.sip.listen=127.0.0.1:$SIP_PORT --set mcp.admin.listen=127.0.0.1:$ADMIN_PORT \
    --set mcp.max_sessions=10000 --set mcp.rtp.port_min=20000 --set mcp.rtp.port_max=45000 \
    --set mcp.vxml.tts_engine=none >"$WORK/mcp.log" 2>&1 &
  MCP_PID=$!
  wait_for 10 "mcp" curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz"
}
stop_mcp() { kill "$MCP_PID" 2>/dev/null || true; wait "$MCP_PID" 2>/dev/null || true; MCP_PID=; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$MCP_PID/stat"; }
rss_kb() { awk -v p="$PAGE_KB" '{print $2*p}' "/proc/$MCP_PID/statm"; }
sessions() {
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^gvp_mcp_sessions[{ ]/ {s+=$NF} END {print s+0}'
}
count() { grep -c "\"GET /$1" "$WORK/http.log" || true; }

echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo "application: 18 pages, 50 digits ${DIGIT_GAP}s apart, about ${CALL_SECONDS}s per call; calls started over ${RAMP}s"
echo "caller (gvp call) and application server on the same host as the mcp"
echo
printf '%-6s %-9s %-9s %-10s %-9s %-9s %-13s %-13s %-10s %-10s %s\n' \
  calls peak_conc answered completed failed success cpu_%core/call cpu_ms/call rss_idle_MB rss_peak_MB rss_KiB/call
for n in $STEPS; do
  start_mcp
  sleep 1
  rss0=$(rss_kb); t0=$(cpu_ticks); done0=$(count done.vxml); fail0=$(count fail.vxml)
  rate=$(awk -v n="$n" -v r="$RAMP" 'BEGIN{printf "%.2f", n/r}')
  "$GVP" call "$TARGET" --calls "$n" --concurrency "$n" --rate "$rate" --dtmf "$SCHEDULE" \
    --max-duration "$(awk -v c="$CALL_SECONDS" 'BEGIN{printf "%ds", c+60}')" --rtp-ports 10000-19998 --json \
    >"$WORK/call.json" 2>"$WORK/call.err" &
  CALL_PID=$!
  peak=0; rss_peak=$rss0
  while kill -0 "$CALL_PID" 2>/dev/null; do
    s=$(sessions || echo 0); r=$(rss_kb)
    [ "$s" -gt "$peak" ] && peak=$s
    [ "$r" -gt "$rss_peak" ] && rss_peak=$r
    sleep 1
  done
  wait "$CALL_PID" || true
  t1=$(cpu_ticks)
  done1=$(count done.vxml); fail1=$(count fail.vxml)
  completed=$((done1-done0)); failed=$((fail1-fail0))
  answered=$(jq -r '.succeeded // 0' "$WORK/call.json" 2>/dev/null || echo 0)
  success=$(awk -v c="$completed" -v n="$n" 'BEGIN{printf "%.4f", c/n}')
  # CPU: the mcp's CPU time over the step, per call-second carried (% of one core per call
  # while calls are up) and per whole call (setup, 50 digits, 19 pages, teardown).
  cpu_pct=$(awk -v t="$((t1-t0))" -v k="$TCK" -v n="$n" -v c="$CALL_SECONDS" 'BEGIN{printf "%.3f", 100*(t/k)/(n*c)}')
  cpu_ms=$(awk -v t="$((t1-t0))" -v k="$TCK" -v n="$n" 'BEGIN{printf "%.1f", 1000*(t/k)/n}')
  per_call=$(awk -v a="$rss0" -v b="$rss_peak" -v n="$n" 'BEGIN{printf "%.0f", (b-a)/n}')
  printf '%-6s %-9s %-9s %-10s %-9s %-9s %-13s %-13s %-10s %-10s %s\n' "$n" "$peak" "$answered" "$completed" "$failed" \
    "$success" "$cpu_pct" "$cpu_ms" "$((rss0/1024))" "$((rss_peak/1024))" "$per_call"
  if [ "$completed" != "$n" ]; then
    jq -c '{failures_by_code, first_errors}' "$WORK/call.json" 2>/dev/null || cat "$WORK/call.err"
  fi
  stop_mcp
  sleep 3 # caller ports and transaction timers
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
