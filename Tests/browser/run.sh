#!/usr/bin/env bash
# The dashboard's browser tests (issue 17): a real master and a real agent from
# .build/debug/paddock on loopback (temp data dir, admin token in a file), Debian's
# chromium driven by Playwright for Python (Tests/browser/test_dashboard.py).
# Screenshots land in Tests/browser/artifacts/ (git-ignored; kept as CI artifacts).
# Needs: `swift build`, and `PADDOCK_TEST_DEPS=1 source scripts/setup-debian.sh` (chromium, .venv-browser).
#
# `run.sh --frontend`: the same tests through HAProxy (the shipped packaging/haproxy.cfg) terminating
# TLS with the test certificate in front of the master, as a studio deploys it; the agent and the
# tests' own calls trust the test CA, the browser is told to accept the certificate. Screenshots
# then go to Tests/browser/artifacts/frontend/.
set -euo pipefail
cd "$(dirname "$0")/../.."
frontend=0
case "${1:-}" in
    --frontend) frontend=1 ;;
    "") ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
esac
bin="${PADDOCK_BIN:-.build/debug/paddock}"
python="${PADDOCK_BROWSER_PYTHON:-.venv-browser/bin/python}"
[ -x "$bin" ] || { echo "run.sh: $bin is missing: swift build first" >&2; exit 1; }
[ -x "$python" ] || { echo "run.sh: $python is missing: PADDOCK_TEST_DEPS=1 source scripts/setup-debian.sh" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "run.sh: /usr/bin/chromium is missing: apt-get install chromium" >&2; exit 1; }

work="$(mktemp -d -t paddock-browser.XXXXXX)"
artifacts="Tests/browser/artifacts"
[ "$frontend" = 0 ] || artifacts="Tests/browser/artifacts/frontend"
mkdir -p "$artifacts"
source Tests/master-fixture.sh
new_tokens "$work"
port="$(free_port "$python")"
url="http://127.0.0.1:$port"
fixtures="Tests/ClientTests/Fixtures"
ca_file=""

pids=()
cleanup() {
    status=$?
    # The test may have restarted the master (its pid is then in master.pid).
    [ -f "$work/master.pid" ] && pids+=("$(cat "$work/master.pid")")
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
        # A master the test restarted is no child of this shell: wait for it to be gone (at most 10 s).
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    cp "$work"/*.log "$artifacts/" 2>/dev/null || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT

# Waits (polling, at most $2 seconds) until the URL $1 answers 200 with the admin token and,
# when $3 is given, its body contains $3.
wait_for() {
    "$python" - "$1" "$2" "${3:-}" "$work/admin-token" <<'PY'
import os, ssl, sys, time, urllib.request
url, bound, needle, token_file = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
token = open(token_file).read().strip()
tls = ssl.create_default_context(cafile=os.environ["PADDOCK_CA_FILE"]) if os.environ.get("PADDOCK_CA_FILE") else None
deadline = time.monotonic() + bound
while time.monotonic() < deadline:
    try:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=2, context=tls) as response:
            if response.status == 200 and needle.encode() in response.read():
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(f"run.sh: {url} not ready after {bound:.0f} s")
PY
}

master=("$bin" master --listen "127.0.0.1:$port" --data "$work/master" --lease-timeout 15s
        --admin-token-file "$work/admin-token" --join-token-file "$work/join-token")
"${master[@]}" > "$work/master.log" 2>&1 &
echo $! > "$work/master.pid"
wait_for "$url/healthz" 30 || { cat "$work/master.log" >&2; exit 1; }

if [ "$frontend" = 1 ]; then
    haproxy=/usr/sbin/haproxy
    [ -x "$haproxy" ] || { echo "run.sh --frontend: $haproxy is missing: apt-get install haproxy" >&2; exit 1; }
    cat "$fixtures/server.pem" "$fixtures/server-key.pem" > "$work/frontend.pem"
    hport="$(free_port "$python")"
    bash packaging/haproxy-loopback.sh packaging/haproxy.cfg "$hport" "$work/frontend.pem" "$port" > "$work/haproxy.cfg"
    "$haproxy" -db -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 &
    pids+=($!)
    url="https://127.0.0.1:$hport"
    ca_file="$fixtures/ca.pem"
    export PADDOCK_CA_FILE="$ca_file"
    wait_for "$url/healthz" 30 || { cat "$work/haproxy.log" >&2; exit 1; }
    echo "run.sh: through HAProxy (packaging/haproxy.cfg, TLS) at $url"
fi

"$bin" agent --master "$url" --join-token-file "$work/join-token" --work-dir "$work/agent" \
    ${ca_file:+--ca-file "$ca_file"} --name browser-agent --cpus 4 --ram 2GiB --disk 10GiB > "$work/agent.log" 2>&1 &
pids+=($!)
wait_for "$url/v1/agents" 30 '"state":"online"' || { cat "$work/agent.log" >&2; exit 1; }

# The test stops the master once and starts it again (the banner while it is away): it gets the
# command line and the file that holds the running master's pid.
PADDOCK_URL="$url" PADDOCK_ADMIN_TOKEN_FILE="$work/admin-token" PADDOCK_JOIN_TOKEN_FILE="$work/join-token" \
    PADDOCK_ARTIFACTS="$artifacts" \
    PADDOCK_MASTER_PIDFILE="$work/master.pid" PADDOCK_MASTER_LOG="$work/master-restarted.log" \
    PADDOCK_MASTER_COMMAND="$("$python" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${master[@]}")" \
    "$python" Tests/browser/test_dashboard.py
