#!/usr/bin/env bash
# PostgreSQL and Redis on loopback for the scale-out tests (tests/scale, tests/store,
# tests/live/test_redis_bus.py). Uses them if they already answer; otherwise installs them from
# Debian packages and starts them. The embedded defaults (SQLite, in-memory bus) never need them.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_answers() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! command -v pg_isready >/dev/null || ! command -v redis-cli >/dev/null; then
    need=1
else
    need=0
    pg_answers || need=1
    redis_answers || need=1
fi
if [ "$need" = 1 ] && { ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null; }; then
    apt-get update
    apt-get install -y --no-install-recommends postgresql redis-server
fi

if ! pg_answers; then
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    conf="/etc/postgresql/$version/main"
    # Trust on loopback only: a throwaway CI database, never a deployment.
    if ! grep -q "coach-ci" "$conf/pg_hba.conf"; then
        sed -i '1i host all all 127.0.0.1/32 trust # coach-ci\nhost all all ::1/128 trust # coach-ci' \
            "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 50); do pg_answers && break; sleep 0.2; done
fi
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test"

if ! redis_answers; then
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
    for _ in $(seq 50); do redis_answers && break; sleep 0.1; done
fi

pg_answers && redis_answers && echo "services: PostgreSQL and Redis answer on 127.0.0.1"
