#!/usr/bin/env bash
# Make sure the tools of the real-SIP test (tests/sip) are installed: Kamailio with the modules
# the reference configuration (deploy/kamailio/kamailio.cfg) loads, and SIPp. Installs the
# Debian packages with apt-get when run as root; quiet when everything is there; fails loudly
# (exit 1, the reason on stderr) when they are missing and cannot be installed.
set -euo pipefail

PACKAGES=(kamailio kamailio-extra-modules kamailio-utils-modules kamailio-tls-modules sip-tester)
# One module per package: jansson (extra), http_client (utils), crypto (tls), dialog (core).
MODULES=(jansson http_client crypto dialog async)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]; }

module_dir() {
  local dir
  for dir in /usr/lib/*/kamailio/modules /usr/lib/kamailio/modules /usr/local/lib*/kamailio/modules; do
    [ -f "$dir/tm.so" ] && { echo "$dir"; return 0; }
  done
  return 1
}

missing() {
  local what=() dir module
  have kamailio || what+=("kamailio")
  have sipp || what+=("sipp")
  if dir=$(module_dir); then
    for module in "${MODULES[@]}"; do
      [ -f "$dir/$module.so" ] || what+=("kamailio module $module")
    done
  else
    what+=("kamailio modules")
  fi
  echo "${what[*]:-}"
}

gap=$(missing)
[ -z "$gap" ] && exit 0

if [ "$(id -u)" != 0 ] || ! have apt-get; then
  echo "ensure-sip-tools: missing: $gap; cannot install (needs root and apt-get):" \
       "apt-get install ${PACKAGES[*]}" >&2
  exit 1
fi

echo "ensure-sip-tools: installing ${PACKAGES[*]} (missing: $gap)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq "${PACKAGES[@]}" >/dev/null; }; then
  echo "ensure-sip-tools: apt-get could not install ${PACKAGES[*]}" >&2
  exit 1
fi
# The Debian package starts a system Kamailio on 5060 only when configured to; the tests run
# their own on free ports, so nothing else is needed here.
gap=$(missing)
if [ -n "$gap" ]; then
  echo "ensure-sip-tools: still missing after install: $gap" >&2
  exit 1
fi
echo "ensure-sip-tools: Kamailio and SIPp are installed"
