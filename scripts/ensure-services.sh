#!/usr/bin/env bash
# Make sure the servers the tests talk to are up: PostgreSQL on 127.0.0.1:5432 and Redis on
# 127.0.0.1:6379. Starts locally installed ones that are down, installs missing ones where apt
# can (CI runs as root on Debian), and fails loudly when that is not possible.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 REDIS_PORT=6379

have() { command -v "$1" >/dev/null 2>&1; }
pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
wait_for() { for _ in $(seq 1 60); do "$@" && return 0; sleep 0.5; done; return 1; }

apt_install() {
  if [ "$(id -u)" = 0 ] && have apt-get; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "ensure-services: cannot install $* (not root or no apt-get)" >&2
    return 1
  fi
}

if ! have pg_isready || ! ls /etc/postgresql >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
fi
if ! pg_up; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  wait_for pg_up || { echo "ensure-services: PostgreSQL did not start" >&2; exit 1; }
fi

if ! have redis-server; then
  apt_install redis-server
fi
if ! redis_up; then
  echo "ensure-services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis_up || { echo "ensure-services: Redis did not start" >&2; exit 1; }
fi

echo "ensure-services: PostgreSQL and Redis are up"
