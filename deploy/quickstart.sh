#!/usr/bin/env bash
# Quick start: installs dependencies, builds, starts rauhad (if it is not running yet) and runs
# one real sandbox task on this repository. rauhad keeps running afterwards; the script prints
# how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bash deploy/build.sh

socket=${RAUHA_SOCKET:-/run/rauha/rauhad.sock}
if ! ./build/rauha-cli/rauha --socket "$socket" zone list >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup ./build/rauhad/rauhad --socket "$socket" >>/var/log/rauhad.log 2>&1 &
  echo "started rauhad (pid $!), log in /var/log/rauhad.log" >&2
  for _ in $(seq 1 100); do
    [ -S "$socket" ] && ./build/rauha-cli/rauha --socket "$socket" zone list >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

./build/rauha-cli/rauha --socket "$socket" sandbox --repo-path . -- /bin/sh -c 'ls /workspace; echo done'
echo "rauhad is still running; stop it with: kill \$(pidof rauhad)" >&2
