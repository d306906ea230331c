#!/usr/bin/env bash
# sipp.sh start|stop|status — make sure SIPp (Debian sip-tester), sox and espeak-ng are installed.
# SIPp runs per test (the tests start their own instances); "start" only installs and reports
# the binary as GVP_TEST_SIPP.
set -euo pipefail
SERVICE=sipp
. "$(dirname "$0")/lib.sh"

case "${1:-}" in
  start)
    command -v sipp >/dev/null || apt_install sip-tester
    command -v sox >/dev/null || apt_install sox libsox-fmt-all
    command -v espeak-ng >/dev/null || apt_install espeak-ng
    echo "export GVP_TEST_SIPP=$(command -v sipp)"
    ;;
  stop) : ;;
  status) command -v sipp ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
