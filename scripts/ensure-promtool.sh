#!/usr/bin/env bash
# Make sure `promtool` is installed for the alert-rules test (tests/metrics/test_alert_rules.py
# checks deploy/prometheus/alerts.yml with it). Debian's `prometheus` package ships it; installed
# with apt-get when run as root; quiet when it is there; fails loudly (exit 1, the reason on
# stderr) when it is missing and cannot be installed.
set -euo pipefail

command -v promtool >/dev/null 2>&1 && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-promtool: promtool missing; cannot install (needs root and apt-get):" \
       "apt-get install prometheus" >&2
  exit 1
fi

echo "ensure-promtool: installing prometheus (for promtool)"
export DEBIAN_FRONTEND=noninteractive
# The server itself is not started here (no init system in CI); only promtool is used.
if ! { apt-get update -qq >/dev/null \
       && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; then
  echo "ensure-promtool: apt-get could not install prometheus" >&2
  exit 1
fi
command -v promtool >/dev/null 2>&1 || { echo "ensure-promtool: still no promtool" >&2; exit 1; }
echo "ensure-promtool: promtool is installed"
