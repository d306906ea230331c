#!/usr/bin/env bash
# rm.sh — call-rate benchmark of gvp's rm against Kamailio 5.6 on the same load:
# sipp UAC -> proxy -> 2 sipp UAS (round robin), at increasing rates. For each proxy it prints
# the highest calls/s completed with 0 failed calls and the p99 INVITE->200 time at that rate,
# then the ratio gvp/Kamailio. The same load sent straight to one UAS ("direct") is the
# baseline of the latency a proxy adds: p99 through each proxy minus p99 direct, per rate.
#
# Usage: scripts/bench/rm.sh [rates...]     (default rates: 1000 2000 3000 4000 5000 6000 8000)
# Env:   STEP_SECONDS (default 4): duration of each rate step.
#        PROXIES (default "gvp kamailio direct"): the proxies to measure (direct: no proxy);
#          at each rate they take turns, the first rotating from one rate to the next.
#        BENCH_BIN: a gvp binary to use instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
. "$ROOT/scripts/lib.sh"
RATES=${*:-1000 2000 3000 4000 5000 6000 8000}
STEP=${STEP_SECONDS:-4}
PROXIES=${PROXIES:-gvp kamailio direct}
W=$(mktemp -d /tmp/gvp-bench-rm.XXXXXX)
PIDS=()
cleanup() {
  stop_pids "${PIDS[@]}"
  wait 2>/dev/null || true
  rm -rf "$W/data"
}
trap cleanup EXIT

command -v sipp >/dev/null || apt_install sip-tester
command -v kamailio >/dev/null || apt_install kamailio

UAS1=15071 UAS2=15072 RM=15060 KAM=15062
SC="$ROOT/roles/rm/testdata"

start_uas() { # port media-port
  ( cd "$W"; exec sipp -sf "$SC/uas_rr.xml" -i 127.0.0.1 -p "$1" -mi 127.0.0.1 -mp "$2" -aa -nostdin \
      -buff_size 4194304 >/dev/null 2>&1 ) &
  PIDS+=($!)
}
start_uas $UAS1 16000
start_uas $UAS2 16100

bench_binary "$ROOT" "$W/gvp"
sed -e "s/@UAS1@/$UAS1/" -e "s/@UAS2@/$UAS2/" scripts/bench/testdata/rm-objects.yaml >"$W/objects.yaml"
# No broker runs here: rm's billing records go to its disk spool under $W/data, as they would
# while the broker is away (part of rm's cost per call; Kamailio writes no accounting).
"$W/gvp" rm --set log.level=warn --set rm.sip.listen=127.0.0.1:$RM --set rm.sip.transports=udp \
  --set rm.admin.listen=127.0.0.1:0 --set rm.static_config="$W/objects.yaml" --set data_dir="$W/data" \
  >"$W/rm.log" 2>&1 &
RMPID=$!
PIDS+=($RMPID)

printf '1 sip:127.0.0.1:%s 0 0\n1 sip:127.0.0.1:%s 0 0\n' $UAS1 $UAS2 >"$W/dispatcher.list"
sed -e "s|@PORT@|$KAM|" -e "s|@DISPATCHER@|$W/dispatcher.list|" scripts/kamailio/kamailio.cfg >"$W/kamailio.cfg"
kamailio -f "$W/kamailio.cfg" -DD -E -x tlsf -m 2048 -M 16 -Y "$W" >"$W/kamailio.log" 2>&1 &
KAMPID=$!
PIDS+=($KAMPID)
sleep 1.5
kill -0 $RMPID 2>/dev/null || { cat "$W/rm.log"; exit 1; }
kill -0 $KAMPID 2>/dev/null || { cat "$W/kamailio.log"; exit 1; }

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks (1/100 s) of a proxy: the process and its children (Kamailio forks workers).
group_ticks() { local s=0 p; [ -n "$1" ] || { echo 0; return; }
  for p in "$1" $(pgrep -P "$1" 2>/dev/null); do
  s=$((s + $(cpu_ticks "$p"))); done; echo $s; }

# The bench caller has no pause between ACK and BYE. A 180 that a multi-process proxy relays
# after the 200 is taken by the scenario's optional="global" 180 wherever it arrives.
sed '/<pause\/>/d' "$SC/uac_rr.xml" >"$W/uac_bench.xml"

# run_step TARGET-PORT RATE -> prints "failed p99ms"
run_step() {
  local port=$1 rate=$2 n=$(( $2 * STEP ))
  rm -f "$W"/uac_bench_*_rtt.csv
  ( cd "$W"; timeout $((STEP + 40)) sipp 127.0.0.1:"$port" -sf "$W/uac_bench.xml" -s 5551000 -i 127.0.0.1 -p 15090 \
      -mi 127.0.0.1 -mp 16200 -m "$n" -r "$rate" -l 20000 -nostdin -timeout $((STEP + 30))s -recv_timeout 5s \
      -buff_size 4194304 -trace_rtt -rtt_freq 1 -trace_stat -fd 1 -trace_err >"$W/uac.out" 2>&1 ) || true
  local failed ok
  failed=$(grep -E "Failed call" "$W/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  ok=$(grep -E "Successful call" "$W/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
  [ -n "$ok" ] || ok=0
  [ -n "$failed" ] || failed=$n
  [ "$ok" -lt "$n" ] && failed=$(( n - ok > failed ? n - ok : failed ))
  local p99
  p99=$(cat "$W"/uac_bench_*_rtt.csv 2>/dev/null | awk -F';' 'NR>1 && $2 ~ /^[0-9.]+$/ {print $2}' | sort -n |
        awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]}}')
  echo "$failed $p99"
}

# step NAME RATE: one rate step through proxy NAME; prints the line and records the result.
declare -A BEST=() BESTP99=() DONE=() P99=() PORT=([gvp]=$RM [kamailio]=$KAM [direct]=$UAS1)
declare -A PID=([gvp]=$RMPID [kamailio]=$KAMPID [direct]=) LABEL=([gvp]=gvp-rm [kamailio]=kamailio [direct]=direct)
step() {
  local name=$1 r=$2 t0 t1 res failed p99 cpu=-
  t0=$(group_ticks "${PID[$name]}")
  res=$(run_step "${PORT[$name]}" "$r"); failed=${res% *}; p99=${res#* }
  t1=$(group_ticks "${PID[$name]}")
  [ -n "${PID[$name]}" ] && cpu=$(( (t1 - t0) * 10000 / (r * STEP) ))
  printf '%-9s %6d calls/s: failed=%-6s p99=%s ms  cpu/call=%s us\n' "${LABEL[$name]}" "$r" "$failed" "$p99" "$cpu" >&2
  if [ "$failed" = 0 ]; then BEST[$name]=$r; BESTP99[$name]=$p99; P99[$name,$r]=$p99; else DONE[$name]=1; fi
  sleep 2
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The proxies take turns at each rate, the first one alternating, so that the machine's drift
# (other work, temperature) does not favour one of them; a proxy stops at its first failure.
order=($PROXIES)
for r in $RATES; do
  for p in "${order[@]}"; do
    [ -z "${DONE[$p]:-}" ] && step "$p" "$r"
  done
  order=("${order[@]:1}" "${order[0]}")
  all=1; for p in $PROXIES; do [ "$p" != direct ] && [ -z "${DONE[$p]:-}" ] && all=0; done
  [ $all = 1 ] && break
done
gvp="${BEST[gvp]:-0} ${BESTP99[gvp]:-n/a}" kam="${BEST[kamailio]:-0} ${BESTP99[kamailio]:-n/a}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo
printf 'gvp rm:   %s calls/s with 0 failures, p99 %s ms\n' "${gvp% *}" "${gvp#* }"
printf 'kamailio: %s calls/s with 0 failures, p99 %s ms\n' "${kam% *}" "${kam#* }"
awk -v g="${gvp% *}" -v k="${kam% *}" 'BEGIN { if (k > 0) printf "ratio gvp/kamailio: %.2f\n", g / k }'
# Latency added by each proxy: its p99 minus the direct p99 at the same rate (rates where both
# completed without failures).
for r in $RATES; do
  d=${P99[direct,$r]:-}
  [ -n "$d" ] && [ "$d" != n/a ] || continue
  line=""
  for p in gvp kamailio; do
    v=${P99[$p,$r]:-}
    [ -n "$v" ] && [ "$v" != n/a ] && line+=$(awk -v n="${LABEL[$p]}" -v a="$v" -v b="$d" 'BEGIN { printf "  %s %+.2f ms", n, a - b }')
  done
  [ -n "$line" ] && printf 'added p99 at %d calls/s (direct %s ms):%s\n' "$r" "$d" "$line"
done
