#!/usr/bin/env bash
# The test command (README "Run the tests"): on a fresh clone it creates .venv,
# installs runtime + dev requirements, makes sure the machine services the tests
# use are there (Debian chromium for the browser tests, the local MariaDB), lints,
# and runs the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt

# Headless Chromium for the Playwright tests (Debian's build; no browser download).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Browser tests need Debian's chromium: sudo apt-get install chromium" >&2
  fi
fi

# The local MariaDB (127.0.0.1:3306, root, no password) unless TEST_MYSQL_HOST points elsewhere.
if [ -z "${TEST_MYSQL_HOST:-}" ] && ! mysqladmin -h127.0.0.1 -uroot status >/dev/null 2>&1; then
  if [ -x /usr/sbin/mariadbd ] && [ "$(id -u)" = 0 ]; then
    echo "starting the local MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    for _ in $(seq 1 60); do mysqladmin -h127.0.0.1 -uroot status >/dev/null 2>&1 && break; sleep 1; done
  fi
fi

.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
