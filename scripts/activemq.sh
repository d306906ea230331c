#!/usr/bin/env bash
# activemq.sh start|stop|kill|status|addr — a private ActiveMQ 5.17 broker for gvp's tests.
# Persistent (kahaDB), no JMX, transport connectors auto://127.0.0.1:$GVP_ACTIVEMQ_PORT (default 61616,
# OpenWire and STOMP) and stomp://127.0.0.1:$GVP_ACTIVEMQ_STOMP_PORT (default 61613; gvp local's embedded
# broker defaults to 61613 too, so run tests with other ports). Config, data, log and PID under
# $GVP_SERVICES_DIR/activemq (default /tmp/gvp-services/activemq). `kill` sends SIGKILL (crash tests);
# `stop` stops cleanly. Both touch only the process whose PID this script wrote. Idempotent.
# `start` prints the STOMP address, to export as GVP_TEST_ACTIVEMQ_STOMP.
set -euo pipefail
SERVICE=activemq
. "$(dirname "$0")/lib.sh"

B=${GVP_ACTIVEMQ_DIR:-$GVP_SERVICES_DIR/activemq}
PIDFILE=$B/pid
# The ports of the last start are remembered, so stop/kill/status need no env.
if [ -f "$B/ports" ]; then . "$B/ports"; fi
PORT=${GVP_ACTIVEMQ_PORT:-${SAVED_PORT:-61616}}
STOMP_PORT=${GVP_ACTIVEMQ_STOMP_PORT:-${SAVED_STOMP_PORT:-61613}}
HOME_DIR=/usr/share/activemq

ready() { tcp_open 127.0.0.1 "$STOMP_PORT"; }

# wait_install: apt may be installing activemq in the background already.
wait_install() {
  local deadline=$(( $(date +%s) + 300 ))
  while ! { dpkg -s activemq 2>/dev/null | grep -q '^Status: install ok installed' && [ -f "$HOME_DIR/bin/activemq.jar" ]; }; do
    if ! pgrep -x apt-get >/dev/null && ! pgrep -x dpkg >/dev/null; then
      apt_install activemq
      continue
    fi
    [ "$(date +%s)" -lt "$deadline" ] || die "activemq package not installed after 300s"
    log "waiting for a running apt/dpkg to finish"
    sleep 2
  done
}

# write_config writes absolute paths: without a property placeholder bean,
# xbean leaves ${activemq.data} unexpanded (a folder relative to the cwd).
write_config() {
  mkdir -p "$B/conf" "$B/data"
  cat >"$B/conf/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
                           http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="gvp-test" persistent="true" useJmx="false"
          dataDirectory="$B/data" schedulerSupport="false" advisorySupport="false">
    <persistenceAdapter>
      <kahaDB directory="$B/data/kahadb"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage percentOfJvmHeap="70"/></memoryUsage>
        <storeUsage><storeUsage limit="2 gb"/></storeUsage>
        <tempUsage><tempUsage limit="1 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="auto" uri="auto://127.0.0.1:$PORT"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:$STOMP_PORT"/>
    </transportConnectors>
  </broker>
</beans>
XML
  cat >"$B/conf/log4j.properties" <<LOG
log4j.rootLogger=WARN, logfile
log4j.logger.org.apache.activemq=INFO
log4j.appender.logfile=org.apache.log4j.FileAppender
log4j.appender.logfile.file=$B/data/activemq.log
log4j.appender.logfile.layout=org.apache.log4j.PatternLayout
log4j.appender.logfile.layout.ConversionPattern=%d | %-5p | %m | %c | %t%n
LOG
}

start() {
  if pid_alive "$PIDFILE" && ready; then log "already running (pid $(cat "$PIDFILE"))"; echo "127.0.0.1:$STOMP_PORT"; return 0; fi
  if ready; then die "something else listens on 127.0.0.1:$STOMP_PORT; set GVP_ACTIVEMQ_STOMP_PORT"; fi
  wait_install
  write_config
  log "starting in $B (stomp 127.0.0.1:$STOMP_PORT, auto 127.0.0.1:$PORT)"
  ( cd "$B" && exec java -Xms128M -Xmx512M --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
      --add-opens java.base/java.net=ALL-UNNAMED --add-opens java.base/java.security=ALL-UNNAMED \
      --add-opens java.naming/javax.naming.spi=ALL-UNNAMED --add-opens java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED \
      --add-opens java.base/java.util.concurrent=ALL-UNNAMED --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
      --add-reads=java.xml=java.logging -Dactivemq.home=$HOME_DIR -Dactivemq.base="$B" -Dactivemq.conf="$B/conf" \
      -Dactivemq.data="$B/data" -Dactivemq.classpath="$B/conf" -jar $HOME_DIR/bin/activemq.jar start \
      "xbean:file:$B/conf/activemq.xml" ) >"$B/stdout.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  printf 'SAVED_PORT=%s\nSAVED_STOMP_PORT=%s\n' "$PORT" "$STOMP_PORT" >"$B/ports"
  local deadline=$(( $(date +%s) + 60 ))
  until ready; do
    if ! pid_alive "$PIDFILE"; then tail -30 "$B/stdout.log" "$B/data/activemq.log" >&2 2>/dev/null || true; die "broker exited during start"; fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -30 "$B/stdout.log" >&2; die "not ready after 60s"; }
    sleep 0.2
  done
  log "ready (pid $(cat "$PIDFILE"))"
  echo "127.0.0.1:$STOMP_PORT"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pidfile "$PIDFILE" TERM 30; log "stopped" ;;
  kill) stop_pidfile "$PIDFILE" KILL 10; log "killed" ;;
  status) if pid_alive "$PIDFILE" && ready; then echo "running pid $(cat "$PIDFILE") stomp 127.0.0.1:$STOMP_PORT"; else echo "stopped"; exit 1; fi ;;
  addr) echo "127.0.0.1:$STOMP_PORT" ;;
  *) echo "usage: $0 start|stop|kill|status|addr" >&2; exit 2 ;;
esac
