#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (tests/web, driven by
# Playwright). Playwright's own browser download is not used. Installs with apt-get when
# missing (CI runs as root on Debian) and fails loudly when that is not possible.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: Chromium is missing at $CHROMIUM and cannot be installed here" \
       "(needs root and apt-get). Install Debian's 'chromium' package, or set CHROMIUM_PATH." >&2
  exit 1
fi

echo "ensure-browser: installing chromium with apt-get"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-browser: apt-get finished but chromium is still not on PATH" >&2
  exit 1
fi
echo "ensure-browser: $(chromium --version 2>/dev/null || echo chromium installed)"
