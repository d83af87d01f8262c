#!/usr/bin/env bash
# Installs what Renkei needs on a fresh Debian machine: Java 17+ and Maven for the Kafka
# broker (only if missing), then a Python virtual environment with the project in it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# the portal's browser test (tests/integration/test_portal.py) drives headless Chromium
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# its screenshots must show Japanese, not empty boxes: a CJK font (tests/integration/test_portal_fonts.py)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || fc-list :lang=ja 2>/dev/null | grep -q . || need_apt+=(fonts-noto-cjk)
# `renkei ops up` runs Debian's Prometheus; its promtool checks and unit-tests the alert rules
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
# `renkei top` is tested in a tmux pane (tests/integration/test_top.py)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "Renkei needs ${need_apt[*]}: install them and run again" >&2
    exit 1
  fi
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Renkei needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
echo "Renkei installed in .venv"
