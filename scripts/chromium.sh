#!/usr/bin/env bash
# chromium.sh start|stop|status — make sure headless Chromium (Debian package chromium) is
# installed for the web page tests. Chromium runs per test (each test starts its own headless
# instance on loopback pages only); "start" only installs it and reports the binary as
# GVP_TEST_CHROMIUM.
set -euo pipefail
SERVICE=chromium
. "$(dirname "$0")/lib.sh"

chromium_bin() { command -v chromium || command -v chromium-browser; }

case "${1:-}" in
  start)
    chromium_bin >/dev/null || apt_install chromium fonts-dejavu-core
    bin=$(chromium_bin) || die "chromium not found after install"
    echo "export GVP_TEST_CHROMIUM=$bin"
    ;;
  stop) : ;;
  status) chromium_bin ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
