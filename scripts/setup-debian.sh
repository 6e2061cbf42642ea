#!/usr/bin/env bash
# Installs the system packages Paddock builds and runs with (Debian 12). Sourced by
# .ci/run and scripts/try.sh; idempotent.
set -euo pipefail
need=()
packages=(libsqlite3-dev)
# Tests: python3 (a strict Prometheus parser, trivial HTTP backends); PostgreSQL's server
# binaries (the tests initdb and run their own throwaway server from
# /usr/lib/postgresql/<major>/bin: the cluster Debian's package may create and start is
# not used); HAProxy and nginx (packaging/test-frontends.sh, the several-masters tests).
# Chromium and python3-venv: the dashboard's browser tests (Tests/browser/run.sh) drive Debian's
# own chromium with Playwright, pinned below, in a venv of the checkout (no browser download).
[ "${PADDOCK_TEST_DEPS:-0}" = 1 ] && packages+=(python3 python3-pip python3-venv postgresql haproxy nginx-light chromium)
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "${need[@]}"
fi
# The tests check /metrics with a strict Prometheus text parser.
if [ "${PADDOCK_TEST_DEPS:-0}" = 1 ] && ! python3 -c 'import prometheus_client' 2>/dev/null; then
    python3 -m pip install --quiet prometheus-client
fi
# pinned_venv NAME PACKAGE VERSION: a venv of the checkout's own (.venv-NAME, git-ignored) holding
# PACKAGE at exactly VERSION, made or remade only when it does not.
pinned_venv() {
    local venv root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv-$1"
    if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$2') != '$3')" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet "$2==$3"
    fi
}
if [ "${PADDOCK_TEST_DEPS:-0}" = 1 ]; then
    # The dashboard's browser tests (Tests/browser/run.sh).
    pinned_venv browser playwright 1.65.0
    # The OpenJD tests compare expansions with the reference implementation, openjd-model; the
    # tests find it through PADDOCK_OPENJD_PYTHON.
    pinned_venv openjd openjd-model 0.14.0
    export PADDOCK_OPENJD_PYTHON="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-openjd/bin/python"
    # The API's fuzzing suite (Tests/fuzz/run.sh) runs Schemathesis.
    pinned_venv fuzz schemathesis 4.32.5
fi
command -v swift >/dev/null || { echo "Swift 6 is needed: see https://www.swift.org/install/linux/" >&2; exit 1; }
