#!/usr/bin/env bash
# Benchmark setup, idempotent: redis-server and wrk from Debian if missing, BullMQ from npm.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v wrk >/dev/null || missing+=(wrk)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bench/setup.sh: installing ${missing[*]} from Debian"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# The BullMQ peer: exact versions from package-lock.json; reinstalled only when it changed.
if [ ! -d bullmq/node_modules/bullmq ] \
  || [ bullmq/package-lock.json -nt bullmq/node_modules/.package-lock.json ]; then
  (cd bullmq && npm ci --no-audit --no-fund --loglevel=error)
fi
