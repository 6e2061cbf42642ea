#!/usr/bin/env bash
# Fuzzing of the HTTP API (issue 16): Schemathesis (pinned in scripts/setup-debian.sh, .venv-fuzz)
# reads the document a live master serves at /openapi.yaml and calls every operation in it with
# data made from it, valid and not. It fails on any answer that is a 5xx
# (not_a_server_error), whose status the document does not list for the operation
# (status_code_conformance), whose content type or headers it does not describe
# (content_type_conformance, response_headers_conformance), or whose body does not match the
# schema given for that status (response_schema_conformance); and on a method a path is not served
# with that is answered otherwise than 405 (unsupported_method).
#
# The master is .build/debug/paddock on loopback (temp SQLite data dir, admin and join tokens in
# files, an agent package to serve, the default rate limits: a 429 is a status it may answer, and
# the document lists it on every operation). Tests/fuzz/seed.py first puts it in a state worth
# fuzzing through the API (agents, jobs with tasks in every state, a log, a token) and writes the
# two passes' configs:
#   1. the agent-only routes (heartbeat, claim, exchange, task start/progress/finish/logs upload,
#      exception reports) with an enrolled agent's credential;
#   2. every other route with the admin token.
# Seeded ids are offered for half of the generated path ids. Long-polls are bounded by
# Tests/fuzz/hooks.py (a `wait` the master would hold is lowered to 0.1 s; a log read's
# `follow=true`, held until 50 s of silence, is sent as `follow=false`).
# Reports (JUnit, NDJSON with every request) and the master's log land in Tests/fuzz/artifacts/.
#
# Needs: `swift build`, and `PADDOCK_TEST_DEPS=1 source scripts/setup-debian.sh` (.venv-fuzz).
# PADDOCK_FUZZ_EXAMPLES (default 12) test cases per operation and phase, PADDOCK_FUZZ_SEED
# (default 16) the seed: a failure is replayed with the same seed.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${PADDOCK_BIN:-.build/debug/paddock}"
venv="${PADDOCK_FUZZ_VENV:-.venv-fuzz}"
examples="${PADDOCK_FUZZ_EXAMPLES:-12}"
seed="${PADDOCK_FUZZ_SEED:-16}"
[ -x "$bin" ] || { echo "fuzz: $bin is missing: swift build first" >&2; exit 1; }
[ -x "$venv/bin/st" ] || { echo "fuzz: $venv/bin/st is missing: PADDOCK_TEST_DEPS=1 source scripts/setup-debian.sh" >&2; exit 1; }
python="$venv/bin/python"

work="$(mktemp -d -t paddock-fuzz.XXXXXX)"
artifacts="${PADDOCK_FUZZ_ARTIFACTS:-Tests/fuzz/artifacts}"
rm -rf "$artifacts"
mkdir -p "$artifacts"
source Tests/master-fixture.sh
new_tokens "$work"
port="$(free_port "$python")"
url="http://127.0.0.1:$port"

master_pid=""
cleanup() {
    status=$?
    if [ -n "$master_pid" ]; then
        kill "$master_pid" 2>/dev/null || true
        wait "$master_pid" 2>/dev/null || true
    fi
    # Not the configs: they hold the tokens.
    cp "$work"/*.log "$work"/seed.json "$artifacts/" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT

# An agent package to serve, so that /install-agent.sh and /packages/{name} answer more than 404
# (a few bytes: the master checks its name and its .sha256, never its content).
mkdir -p "$work/package"
package="$work/package/paddock_0.0.0-fuzz_amd64.deb"
head -c 4096 /dev/urandom > "$package"
(cd "$work/package" && sha256sum "$(basename "$package")" > "$(basename "$package").sha256")
"$bin" master --listen "127.0.0.1:$port" --data "$work/master" --agent-package "$package" \
    --admin-token-file "$work/admin-token" --join-token-file "$work/join-token" > "$work/master.log" 2>&1 &
master_pid=$!
"$python" - "$url/healthz" <<'PY' || { cat "$work/master.log" >&2; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
            if response.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit("fuzz: the master did not answer /healthz within 30 s")
PY

"$python" Tests/fuzz/seed.py "$url" "$work/admin-token" "$work/join-token" "$work"

checks="${PADDOCK_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method}"
# st run's options shared by both passes: every phase that generates from the document
# (its examples, the coverage of its boundaries and of what it forbids, then random cases),
# a fixed seed and no example database, so that a run is repeatable.
common=(--checks "$checks" --phases examples,coverage,fuzzing --max-examples "$examples" --seed "$seed"
        --generation-database none --workers 2 --request-timeout 20 --no-color --suppress-health-check all)
agent_only=()
while read -r operation; do agent_only+=("$operation"); done < "$work/agent-only"

failed=0
echo "fuzz: pass 1, the agent-only routes with an agent's credential"
include=(); for operation in "${agent_only[@]}"; do include+=(--include-operation-id "$operation"); done
SCHEMATHESIS_HOOKS=Tests/fuzz/hooks.py "$venv/bin/st" --config-file "$work/agent.toml" run "$url/openapi.yaml" \
    "${common[@]}" "${include[@]}" --report junit,ndjson --report-dir "$artifacts/agent" || failed=1
"$python" Tests/fuzz/statuses.py "$artifacts"/agent/*.ndjson || true

echo "fuzz: pass 2, every other route with the admin token"
exclude=(); for operation in "${agent_only[@]}"; do exclude+=(--exclude-operation-id "$operation"); done
SCHEMATHESIS_HOOKS=Tests/fuzz/hooks.py "$venv/bin/st" --config-file "$work/admin.toml" run "$url/openapi.yaml" \
    "${common[@]}" "${exclude[@]}" --report junit,ndjson --report-dir "$artifacts/admin" || failed=1
"$python" Tests/fuzz/statuses.py "$artifacts"/admin/*.ndjson || true

kill -0 "$master_pid" 2>/dev/null || { echo "fuzz: the master died" >&2; failed=1; }
if grep -n "unhandled error" "$work/master.log" >&2; then
    echo "fuzz: the master logged unhandled errors (above)" >&2
    failed=1
fi
[ "$failed" = 0 ] && echo "fuzz: every operation answered as the document says"
exit "$failed"
