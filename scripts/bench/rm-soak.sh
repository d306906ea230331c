#!/usr/bin/env bash
# rm-soak.sh — rm's memory and goroutines over a long run and after it: sipp UAC → gvp rm → 2
# sipp UAS at RATE calls/s for DURATION seconds, each call held HOLD_MS (so about
# RATE × HOLD_MS / 1000 dialogs are up at once). Every INTERVAL seconds it prints, from rm's
# /metrics: active calls, transactions (live and retired), the live heap (what a collection run
# just before keeps: next GC goal / (1 + GOGC/100)), resident memory and goroutines. Then it stops
# the load, waits the 64×T1 (32 s) during which rm remembers answered transactions plus 5 s, and
# prints them again.
#
# It fails (exit 1) when a call failed; when the live heap or the goroutines grow over the
# steady part of the run (from the time the dialogs and the retired transactions have filled
# up: the largest sample above the first by more than GROWTH percent plus 4 MiB, or 10
# goroutines); or when, after the run, the goroutines are above their count before it plus 2
# (background goroutines come and go: a monitor's probe, the billing forwarder's reconnection;
# a goroutine left per call would be thousands) or the live heap above its size before it plus
# 8 MiB. On failure it prints how the goroutines' stacks differ.
#
# Env: RATE (1000), DURATION (120), HOLD_MS (10000), INTERVAL (10), GROWTH (20), BENCH_BIN
# (a gvp binary instead of building one).
set -euo pipefail
SERVICE=rm-soak
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. "$ROOT/scripts/lib.sh"

RATE=${RATE:-1000}
DURATION=${DURATION:-120}
HOLD_MS=${HOLD_MS:-10000}
INTERVAL=${INTERVAL:-10}
GROWTH=${GROWTH:-20}
UAS1=15171 UAS2=15172 RM=15160 ADMIN=18360
SC="$ROOT/roles/rm/testdata"
W=$(mktemp -d /tmp/gvp-soak-rm.XXXXXX)
PIDS=()
cleanup() {
  stop_pids "${PIDS[@]}"
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
command -v sipp >/dev/null || die "sipp is needed (scripts/sipp.sh start installs it)"

for p in "$UAS1:16300" "$UAS2:16400"; do
  ( cd "$W"; exec sipp -sf "$SC/uas_rr.xml" -i 127.0.0.1 -p "${p%:*}" -mi 127.0.0.1 -mp "${p#*:}" -aa -nostdin \
      -buff_size 4194304 >/dev/null 2>&1 ) &
  PIDS+=($!)
done
bench_binary "$ROOT" "$W/gvp"
sed -e "s/@UAS1@/$UAS1/" -e "s/@UAS2@/$UAS2/" scripts/bench/testdata/rm-objects.yaml >"$W/objects.yaml"
"$W/gvp" rm --set log.level=warn --set rm.sip.listen=127.0.0.1:$RM --set rm.sip.transports=udp \
  --set rm.admin.listen=127.0.0.1:$ADMIN --set rm.admin.pprof=true --set rm.static_config="$W/objects.yaml" --set data_dir="$W/data" \
  >"$W/rm.log" 2>&1 &
RMPID=$!
PIDS+=($RMPID)
wait_for 10 "rm" curl -sf "http://127.0.0.1:$ADMIN/readyz"

# sample LABEL: prints one line and appends "label calls live_heap goroutines" to $W/samples.
# A collection runs first (the heap profile's gc=1), so that the live heap is today's.
sample() {
  curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/heap?gc=1" >/dev/null || die "rm's pprof endpoint is gone"
  curl -sf "http://127.0.0.1:$ADMIN/debug/pprof/goroutine?debug=1" >"$W/goroutines-$1.txt" || true
  curl -sf "http://127.0.0.1:$ADMIN/metrics" >"$W/metrics" || die "rm's metrics are gone"
  awk -v label="$1" -v out="$W/samples" '
    /^gvp_rm_active_calls / {calls=$2}
    /^gvp_rm_transactions\{kind="retired"\}/ {retired=$2}
    /^gvp_rm_transactions\{kind="(server|client)"\}/ {live+=$2}
    /^go_memstats_next_gc_bytes / {goal=$2}
    /^go_gc_gogc_percent / {gogc=$2}
    /^process_resident_memory_bytes / {rss=$2}
    /^go_goroutines / {g=$2}
    END {
      heap = (gogc > 0) ? goal / (1 + gogc / 100) : goal
      printf "%-10s calls %6d  transactions %6d live %7d retired  live heap %7.1f MiB  RSS %7.1f MiB  goroutines %4d\n",
        label, calls, live, retired, heap / 1048576, rss / 1048576, g
      printf "%s %d %.0f %d\n", label, calls, heap, g >> out
    }' "$W/metrics"
}

log "rm at $RATE calls/s for ${DURATION}s, calls held ${HOLD_MS} ms"
sample before
N=$((RATE * DURATION))
( cd "$W"; exec sipp 127.0.0.1:$RM -sf "$SC/uac_rr.xml" -s 5551000 -i 127.0.0.1 -p 15190 -mi 127.0.0.1 -mp 16500 \
    -m "$N" -r "$RATE" -d "$HOLD_MS" -l $((RATE * (HOLD_MS / 1000 + 10))) -nostdin -timeout $((DURATION + HOLD_MS / 1000 + 60))s \
    -recv_timeout 10s -buff_size 4194304 -trace_stat -fd 1 >"$W/uac.out" 2>&1 ) &
UAC=$!
PIDS+=($UAC)
START=$(date +%s)
# The run is steady once the dialogs (HOLD_MS) and the retired transactions (32 s) have filled.
STEADY=$(( (HOLD_MS / 1000 > 32 ? HOLD_MS / 1000 : 32) + INTERVAL ))
while kill -0 "$UAC" 2>/dev/null; do
  sleep "$INTERVAL"
  kill -0 "$UAC" 2>/dev/null || break
  t=$(( $(date +%s) - START ))
  if [ "$t" -ge "$STEADY" ] && [ "$t" -le "$DURATION" ]; then sample "steady+${t}s"; else sample "+${t}s"; fi
done
wait "$UAC" || true
log "load ended; waiting 37 s for the retired transactions to expire"
sleep 37
sample after

ok=$(grep -E "Successful call" "$W/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
failed=$(grep -E "Failed call" "$W/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
echo "calls: ${ok:-0} successful, ${failed:-?} failed of $N"
status=0
[ "${failed:-1}" = 0 ] && [ "${ok:-0}" = "$N" ] || { echo "FAIL: calls failed"; status=1; }
awk -v growth="$GROWTH" '
  $1 == "before" {h0 = $3; g0 = $4}
  $1 ~ /^steady/ { if (!n++) {hs = $3; gs = $4}; if ($3 > hmax) hmax = $3; if ($4 > gmax) gmax = $4 }
  $1 == "after" {ha = $3; ga = $4}
  END {
    bad = 0
    if (n > 0 && hmax > hs * (1 + growth / 100) + 4 * 1048576) { printf "FAIL: live heap grew from %.1f to %.1f MiB while steady\n", hs / 1048576, hmax / 1048576; bad = 1 }
    if (n > 0 && gmax > gs + 10) { printf "FAIL: goroutines grew from %d to %d while steady\n", gs, gmax; bad = 1 }
    if (ga > g0 + 2) { printf "FAIL: %d goroutines after the run, %d before\n", ga, g0; bad = 1 }
    if (ha > h0 + 8 * 1048576) { printf "FAIL: live heap %.1f MiB after the run, %.1f before\n", ha / 1048576, h0 / 1048576; bad = 1 }
    if (n == 0) print "note: the run was too short for a steady window (DURATION must exceed max(HOLD, 32 s) + INTERVAL)"
    if (!bad && n == 0) printf "after the run: live heap %.1f MiB (%.1f before), %d goroutines (%d before)\n", ha / 1048576, h0 / 1048576, ga, g0
    if (!bad && n > 0) printf "flat: live heap %.1f -> max %.1f MiB while steady, %.1f after (%.1f before); goroutines %d -> max %d, %d after (%d before)\n",
      hs / 1048576, hmax / 1048576, ha / 1048576, h0 / 1048576, gs, gmax, ga, g0
    exit bad
  }' "$W/samples" || { status=1
  echo "goroutine stacks, before (<) and after (>):"
  diff <(sed -n 2,999p "$W/goroutines-before.txt" | grep -E '^[0-9]+ @|^#' ) \
       <(sed -n 2,999p "$W/goroutines-after.txt" | grep -E '^[0-9]+ @|^#') | head -40 || true; }
exit $status
