#!/usr/bin/env bash
# Browser tests in headless Chromium: Debian's chromium driven by Python Playwright.
# Usage: bash tests/browser/run.sh [pytest args...]
# Installs what it needs: Debian's chromium (apt, when missing) and a venv at
# $PORTCULLIS_BROWSER_VENV (default /tmp/portcullis-browser-venv) from requirements.txt.
# Never downloads a browser of Playwright's own. Screenshots: target/browser-artifacts/.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${PORTCULLIS_BROWSER_VENV:-/tmp/portcullis-browser-venv}"
export PORTCULLIS_CHROMIUM="${PORTCULLIS_CHROMIUM:-/usr/bin/chromium}"
export PORTCULLIS_BROWSER_ARTIFACTS="${PORTCULLIS_BROWSER_ARTIFACTS:-$ROOT/target/browser-artifacts}"
# The server under test (tests of /demo/ and /admin/). Built here when missing, and always in
# CI (so CI never tests a stale binary); otherwise whatever is there is used: build it first.
export PORTCULLIS_BIN="${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/portcullis}"
export PYTHONDONTWRITEBYTECODE=1          # no __pycache__ in the work tree
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 # belt and braces: never fetch a browser

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium </dev/null
fi

# Fail loudly, before pytest, if the browser cannot start at all.
if ! dom="$(timeout 60 "$PORTCULLIS_CHROMIUM" --headless=new --no-sandbox --disable-gpu \
      --disable-background-networking --disable-component-update --no-first-run --disable-sync \
      --user-data-dir="$(mktemp -d)" --dump-dom 'data:text/html,<p id=ok>chromium-ok</p>' 2>/tmp/portcullis-chromium-preflight.log)" \
   || [[ "$dom" != *chromium-ok* ]]; then
  echo "FATAL: headless Chromium ($PORTCULLIS_CHROMIUM) did not start; its log:" >&2
  tail -n 30 /tmp/portcullis-chromium-preflight.log >&2
  exit 1
fi
echo "== $("$PORTCULLIS_CHROMIUM" --version 2>/dev/null)"

if [ "${CI:-}" = true ] || [ ! -x "$PORTCULLIS_BIN" ]; then
  echo "== cargo build -p portcullis"
  (cd "$ROOT" && cargo build -p portcullis)
  if [ ! -x "$PORTCULLIS_BIN" ]; then
    echo "FATAL: no portcullis binary at $PORTCULLIS_BIN after the build (set PORTCULLIS_BIN)" >&2
    exit 1
  fi
fi
echo "== server under test: $PORTCULLIS_BIN"

stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== venv $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$want" >"$stamp"
fi

mkdir -p "$PORTCULLIS_BROWSER_ARTIFACTS"
cd "$HERE"
exec timeout 900 "$VENV/bin/python" -m pytest -c "$HERE/pytest.ini" "$@"
