#!/usr/bin/env bash
# The README's first command: set up, build, run a master and an agent on the
# embedded SQLite default (`paddock dev`), submit a sample job and show it run.
# The farm keeps running until Ctrl-C (or exits at once with --once).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-debian.sh

swift build -c release --product paddock
bin="$(swift build -c release --show-bin-path)/paddock"
port="${PADDOCK_PORT:-8420}"
data="$(mktemp -d -t paddock-try.XXXXXX)"
admin="try-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

"$bin" dev --listen "127.0.0.1:$port" --data "$data" --admin-token "$admin" > "$data/dev.log" 2>&1 &
dev=$!
trap 'kill $dev 2>/dev/null; wait $dev 2>/dev/null || true' EXIT
export PADDOCK_MASTER="http://127.0.0.1:$port" PADDOCK_TOKEN="$admin"
for _ in $(seq 100); do
    "$bin" jobs >/dev/null 2>&1 && break
    kill -0 $dev 2>/dev/null || { cat "$data/dev.log"; exit 1; }
    sleep 0.1
done

submitted=$("$bin" submit examples/hello.yaml)
echo "$submitted"
job=$(echo "$submitted" | awk '/^submitted job/ {print $3}')
for _ in $(seq 150); do
    "$bin" job "$job" | grep -qE 'state (succeeded|failed)' && break
    sleep 0.2
done
echo; "$bin" agents; echo; "$bin" tasks --job "$job"
for task in $("$bin" tasks --job "$job" | awk 'NR > 1 {print $1}'); do
    echo; echo "--- logs of $task"; "$bin" logs "$task"
done
echo
echo "The farm is running: master on $PADDOCK_MASTER, data in $data"
echo "  Dashboard: $PADDOCK_MASTER/  (sign in with the admin token $admin)"
echo "  export PADDOCK_MASTER=$PADDOCK_MASTER PADDOCK_TOKEN=$admin"
echo "  $bin submit examples/frames.yaml && $bin jobs"
[ "${1:-}" = "--once" ] && exit 0
echo "Ctrl-C stops it."
wait $dev
