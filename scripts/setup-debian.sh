#!/usr/bin/env bash
# Installs the system packages Paddock builds and runs with (Debian 12). Sourced by
# .ci/run and scripts/try.sh; idempotent.
set -euo pipefail
need=()
for package in libsqlite3-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "${need[@]}"
fi
command -v swift >/dev/null || { echo "Swift 6 is needed: see https://www.swift.org/install/linux/" >&2; exit 1; }
