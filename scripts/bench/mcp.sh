#!/usr/bin/env bash
# mcp.sh — capacity figures of one mcp on this host, driven by `gvp call`:
#   1. concurrency: hold N announcement calls (repeat=forever) for HOLD, N stepping up through
#      STEPS, and stop at the first N where a call fails or gets no audio. For each N, over the
#      steady window when all N calls are up (from the end of the ramp plus 1 s to HOLD minus
#      1 s): CPU of the gvp mcp process per call (from /proc/PID/stat), the percentiles of the
#      send interval error (gvp_mcp_rtp_send_interval_error_seconds: how far from 20 ms each
#      send phase's interval was) and of the scheduler's wake-up lateness
#      (gvp_mcp_rtp_scheduler_lateness_seconds), as the bounds of their histogram buckets;
#   2. rate: RATE_CALLS announcement calls (the 2 s fixture, played once, BYE from the mcp) at
#      RATE calls/s; reports achieved calls/s, failures and setup percentiles.
# Everything runs on 127.0.0.1. Environment: STEPS ("250 500 1000 1500"), HOLD (20s; it must
# exceed the ramp, N/RAMP_RATE, by 4 s),
# RAMP_RATE (200), RATE (300), RATE_CALLS (3000), SIP_PORT (25070), ADMIN_PORT (28301),
# CALLER_NICE (0): the load generator shares the two cores with the mcp; CALLER_NICE=10 runs it
# at a lower priority so the figures describe the mcp rather than the contention.
# CALLER_SILENCE (true): callers send RTP silence all along, as phones do (the mcp receives as
# much as it sends); false makes them listen only, as sipp's callers do.
# BENCH_BIN: a gvp binary to use instead of building one.
set -euo pipefail
SERVICE=bench-mcp
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib.sh"

STEPS=${STEPS:-"250 500 1000 1500"}
HOLD=${HOLD:-20s}
RAMP_RATE=${RAMP_RATE:-200}
RATE=${RATE:-300}
RATE_CALLS=${RATE_CALLS:-3000}
CALLER_NICE=${CALLER_NICE:-0}
CALLER_SILENCE=${CALLER_SILENCE:-true}
SIP_PORT=${SIP_PORT:-25070}
ADMIN_PORT=${ADMIN_PORT:-28301}
WORK=$(mktemp -d /tmp/gvp-bench-mcp.XXXXXX)
command -v jq >/dev/null || die "jq is needed"

bench_binary "$ROOT" "$WORK/gvp"
cp "$ROOT/roles/mcp/testdata/one_two_three_8k_ulaw.wav" "$WORK/prompt.wav"
PROMPT="file://$WORK/prompt.wav"

"$WORK/gvp" mcp --data-dir "$WORK" --log-level warn \
  --set mcp.sip.listen=127.0.0.1:$SIP_PORT --set mcp.admin.listen=127.0.0.1:$ADMIN_PORT \
  --set mcp.max_sessions=10000 --set mcp.rtp.port_min=20000 --set mcp.rtp.port_max=45000 \
  --set mcp.vxml.allow_file=true \
  >"$WORK/mcp.log" 2>&1 &
MCP_PID=$!
cleanup() { kill "$MCP_PID" 2>/dev/null || true; wait "$MCP_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
wait_for 10 "mcp" curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz"
TCK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14+$15}' "/proc/$MCP_PID/stat"; }
# buckets METRIC: "le count" lines of a histogram of the mcp.
buckets() {
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk -F'[{}" ]+' -v m="$1_bucket" '$1 == m {print $3, $NF}'
}
# quantile Q of the difference of two bucket snapshots, as the upper bound of its bucket in ms
# (">50" when it is beyond the last finite bucket).
quantile_ms() {
  join <(sort -k1,1 "$2") <(sort -k1,1 "$3") | awk -v q="$1" '
    { le[NR]=$1; d[NR]=$3-$2 } END {
      n=NR; total=0; for (i=1;i<=n;i++) if (le[i]=="+Inf") total=d[i];
      if (total<=0) { print "n/a"; exit }
      bv=1e18; last=0;
      for (i=1;i<=n;i++) if (le[i]!="+Inf") { if (le[i]+0>last) last=le[i]+0; if (d[i]>=q*total && le[i]+0<bv) bv=le[i]+0 }
      if (bv==1e18) printf ">%g\n", last*1000; else printf "%g\n", bv*1000 }'
}
pcts() { echo "$(quantile_ms 0.5 "$1" "$2")/$(quantile_ms 0.9 "$1" "$2")/$(quantile_ms 0.99 "$1" "$2")"; }
SEND=gvp_mcp_rtp_send_interval_error_seconds
LATE=gvp_mcp_rtp_scheduler_lateness_seconds

echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
echo
echo "== concurrency (announcement repeat=forever, held $HOLD, ramp $RAMP_RATE calls/s, callers send silence: $CALLER_SILENCE)"
printf '%-7s %-6s %-10s %-8s %-7s %-14s %-22s %s\n' calls ok with_audio ramp_cps window cpu_%_per_call "send err p50/p90/p99 ms" "wake lateness p50/p90/p99 ms"
best=0
hold_s=$(awk -v h="$HOLD" 'BEGIN{sub(/s$/,"",h); print h}')
for n in $STEPS; do
  ramp=$(awk -v n="$n" -v r="$RAMP_RATE" 'BEGIN{printf "%d", n/r + 0.999}')
  window=$(( hold_s - ramp - 2 ))
  [ "$window" -ge 2 ] || die "HOLD $HOLD leaves no steady window after a ramp of ${ramp}s at $n calls"
  nice -n "$CALLER_NICE" "$WORK/gvp" call "sip:annc@127.0.0.1:$SIP_PORT;play=$PROMPT;repeat=forever" --calls "$n" --concurrency "$n" \
    --rate "$RAMP_RATE" --hangup-after "$HOLD" --rtp-ports 10000-19998 --send-silence="$CALLER_SILENCE" --json \
    >"$WORK/out.json" 2>/dev/null &
  caller=$!
  sleep $(( ramp + 1 ))
  buckets $SEND >"$WORK/s0"; buckets $LATE >"$WORK/l0"; t0=$(cpu_ticks)
  sleep "$window"
  buckets $SEND >"$WORK/s1"; buckets $LATE >"$WORK/l1"; t1=$(cpu_ticks)
  wait "$caller" || true
  out=$(cat "$WORK/out.json")
  ok=$(jq -r '.succeeded // 0' <<<"$out"); audio=$(jq -r '.with_audio // 0' <<<"$out"); cps=$(jq -r '.calls_per_second // 0' <<<"$out")
  cpu=$(awk -v t="$((t1-t0))" -v tck="$TCK" -v n="$n" -v w="$window" 'BEGIN{ printf "%.3f", 100*(t/tck)/(n*w) }')
  printf '%-7s %-6s %-10s %-8.1f %-7s %-14s %-22s %s\n' "$n" "$ok" "$audio" "$cps" "${window}s" "$cpu" \
    "$(pcts "$WORK/s0" "$WORK/s1")" "$(pcts "$WORK/l0" "$WORK/l1")"
  if [ "$audio" != "$n" ]; then
    echo "  (stopping: $((n-audio)) calls failed or got no audio)"; jq -c '.failures_by_code, .first_errors' <<<"$out" || true
    break
  fi
  best=$n
  sleep 3 # port hold-off and transaction timers
done
echo "highest step with every call receiving audio: $best"
echo
echo "== rate ($RATE_CALLS announcement calls of 2 s at $RATE calls/s)"
t0=$(cpu_ticks)
out=$(nice -n "$CALLER_NICE" "$WORK/gvp" call "sip:annc@127.0.0.1:$SIP_PORT;play=$PROMPT" --calls "$RATE_CALLS" --rate "$RATE" \
      --rtp-ports 10000-19998 --send-silence="$CALLER_SILENCE" --json 2>/dev/null || true)
t1=$(cpu_ticks)
jq -r '"calls \(.calls), succeeded \(.succeeded), with audio \(.with_audio), failed \(.failed), achieved \(.calls_per_second|floor) calls/s, setup p50/p95/p99 \(.setup_p50_ms)/\(.setup_p95_ms)/\(.setup_p99_ms) ms, peak concurrent \(.peak_concurrent)"' <<<"$out"
awk -v t="$((t1-t0))" -v tck="$TCK" -v n="$RATE_CALLS" 'BEGIN{printf "mcp CPU per call (setup + 2 s of audio + teardown): %.2f ms\n", 1000*(t/tck)/n}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
