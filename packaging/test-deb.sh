#!/usr/bin/env bash
# CI test of the Debian package (run as root on Debian 12; systemd need not run):
#
#   packaging/test-deb.sh [--binary PATH] [--keep]
#
# --binary: the paddock binary to package (CI passes .build/debug/paddock; without
# it build-deb.sh makes the release build). --keep: leave the work directory.
#
# Builds the .deb, runs lintian (no E: allowed), installs it, checks its files,
# conffiles, user, tokens, man page and completions, the example frontends
# (packaging/test-frontends.sh --live, where haproxy and nginx are installed),
# verifies the systemd units,
# runs a master (as the paddock user) and an agent from the installed config
# files on loopback and runs a job through them, checks that dpkg -r keeps
# config and data and that dpkg -i finds them again, that dpkg --purge removes
# them; then serves the package from a master and installs an agent with
# `curl MASTER/install-agent.sh | sh`, which enrolls and runs a task, and checks
# that a tampered package is refused. Ends with "packaging: N passed, M failed".
#
# It installs and purges the paddock package on this machine: it refuses to run
# where paddock is already installed, unless CI=true.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
binary=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test-deb: unknown argument $1" >&2; exit 2 ;;
    esac
done

pass=0
fail=0
work=$(mktemp -d /tmp/paddock-test-deb.XXXXXX)
chmod 0755 "$work"
log="$work/test.log"
pids=()

ok() { pass=$((pass + 1)); printf 'ok   - %s  [%ss]\n' "$*" "$SECONDS"; }
bad() {
    fail=$((fail + 1)); printf 'FAIL - %s  [%ss]\n' "$*" "$SECONDS"
    [ -s "$log" ] && tail -n 15 "$log" | sed 's/^/       | /'
}
# check DESCRIPTION COMMAND...: passes when the command succeeds (its output goes to the log).
check() {
    local what=$1; shift
    : >"$log"
    if "$@" >>"$log" 2>&1; then ok "$what"; else bad "$what"; fi
}
finish() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    # The cgroup handed to the agent (emptied by now), deepest first.
    [ -z "${delegated:-}" ] || find "$delegated" -depth -type d -exec rmdir {} + 2>/dev/null
    if [ "${installed_by_us:-0}" = 1 ] && dpkg-query -W -f='${Status}' paddock 2>/dev/null | grep -qv not-installed; then
        dpkg --purge paddock >/dev/null 2>&1
    fi
    [ "$keep" = 1 ] && echo "test-deb: work directory kept: $work" || rm -rf "$work"
    echo "packaging: $pass passed, $fail failed"
    [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
}
trap 'finish; exit $?' EXIT
trap 'exit 1' INT TERM

# --- helpers ---------------------------------------------------------------------
# start NAME COMMAND...: starts a process in the background, its output in $work/NAME.log.
start() {
    local name=$1; shift
    (cd / && exec "$@") >"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "pid_$name=$!"
}
# stop NAME: SIGTERM, then waits up to 20 s for it to exit.
stop() {
    local pid
    eval "pid=\${pid_$1:-}"
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    echo "$1 did not stop within 20 s after SIGTERM"
    return 1
}
# master_url NAME: waits for "listening on URL" in $work/NAME.log and prints the URL.
master_url() {
    for _ in $(seq 1 150); do
        url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/$1.log" | head -n 1)
        [ -n "$url" ] && { echo "${url%/}"; return 0; }
        sleep 0.2
    done
    echo "no 'listening on' line from $1:" >&2
    tail -n 20 "$work/$1.log" >&2
    return 1
}
# wait_job BINARY URL TOKEN JOB: waits up to 60 s for the job to succeed.
wait_job() {
    local bin=$1 url=$2 token=$3 job=$4 out
    [ -n "$job" ] || { echo "no job was submitted"; return 1; }
    for _ in $(seq 1 300); do
        out=$("$bin" job "$job" --json --master "$url" --token "$token" 2>&1)
        if grep -Eq '"state" *: *"succeeded"' <<<"$out"; then return 0; fi
        if grep -Eq '"state" *: *"(failed|cancelled)"' <<<"$out"; then echo "$out"; return 1; fi
        sleep 0.2
    done
    echo "job $job did not succeed within 60 s:"; echo "$out"
    return 1
}
installed() { dpkg-query -W -f='${Status}' paddock 2>/dev/null | grep -q '^install ok installed$'; }
not_installed() { ! dpkg-query -W -f='${Status}' paddock 2>/dev/null | grep -q 'ok installed\|config-files'; }

# --- preconditions -----------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
    echo "test-deb: run as root (it installs and removes the package)"; fail=1; exit 1
fi
if dpkg-query -W -f='${Status}' paddock 2>/dev/null | grep -q 'ok installed\|config-files'; then
    if [ "${CI:-}" = true ]; then
        dpkg --purge paddock >/dev/null
    else
        echo "test-deb: paddock is installed on this machine; purge it first (or set CI=true)"; fail=1; exit 1
    fi
fi
installed_by_us=1
need=()
for tool in lintian:lintian curl:curl adduser:adduser man:man-db setpriv:util-linux \
        dpkg-shlibdeps:dpkg-dev strip:binutils systemd-analyze:systemd; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
for lib in libsqlite3-0 libcurl4; do dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib"); done
if [ ${#need[@]} -gt 0 ]; then
    echo "test-deb: installing ${need[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- build ---------------------------------------------------------------------------
args=(--out "$work/dist" --compress "${PADDOCK_DEB_COMPRESS:-gzip}")
[ -n "$binary" ] && args+=(--binary "$binary")
: >"$log"
if deb=$(bash "$here/build-deb.sh" "${args[@]}" 2>>"$log") && [ -f "$deb" ]; then
    ok "build-deb.sh built $(basename "$deb")"
else
    bad "build-deb.sh builds the package"; exit 1
fi
[ -n "$binary" ] && binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
[ -n "$binary" ] || binary="$(cd "$root" && swift build -c release --product paddock --static-swift-stdlib --show-bin-path)/paddock"
version=$("$binary" --version | head -n 1 | tr -d '[:space:]')
arch=$(dpkg --print-architecture)
deb_name=$(basename "$deb")
check "the file is named paddock_${version}_${arch}.deb" test "$deb_name" = "paddock_${version}_${arch}.deb"
check "the .sha256 beside it matches (sha256sum -c)" bash -c "cd '$work/dist' && sha256sum -c '$deb_name.sha256'"

check "control: Package, Version, Architecture, Depends on libsqlite3-0 and adduser" bash -c "
    f=\$(dpkg-deb -f '$deb' Package Version Architecture Depends)
    echo \"\$f\"
    grep -qx 'Package: paddock' <<<\"\$f\" && grep -qx 'Version: $version' <<<\"\$f\" &&
    grep -qx 'Architecture: $arch' <<<\"\$f\" && grep -q 'libsqlite3-0' <<<\"\$f\" && grep -q 'adduser' <<<\"\$f\""
# The release build's packed relative relocations load only with glibc 2.36, which dpkg-shlibdeps
# does not see: build-deb raises the floor. A stub linked the same way (lld, -z pack-relative-relocs)
# stands in for the 18-minute static release build: it execs the binary under test for --version,
# --help and the completions, and dpkg-shlibdeps sees its own ELF, which needs GLIBC_ABI_DT_RELR.
relr_stub() {
    local dir="$work/relr" cc
    cc="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
    mkdir -p "$dir/src" "$dir/dist"
    printf '%s\n' '#include <unistd.h>' \
        'static const char *names[] = {"a", "b", "c", "d"};  /* relative relocations to pack */' \
        "int main(int argc, char **argv) { (void)argc; (void)names; execv(\"$binary\", argv); return 127; }" \
        >"$dir/src/stub.c"
    "$cc" -O2 -fPIE -pie -fuse-ld=lld -Wl,-z,pack-relative-relocs -o "$dir/src/paddock" "$dir/src/stub.c" &&
        readelf -V "$dir/src/paddock" | grep -q GLIBC_ABI_DT_RELR &&
        bash "$here/build-deb.sh" --binary "$dir/src/paddock" --out "$dir/dist" --compress none >/dev/null &&
        dpkg-deb -f "$dir/dist"/paddock_*.deb Depends | tee /dev/stderr | grep -q 'libc6 (>= 2.36)'
}
check "a binary with packed relative relocations depends on libc6 (>= 2.36)" relr_stub
check "conffiles are /etc/paddock/master.yaml and agent.yaml" bash -c "
    dpkg-deb --ctrl-tarfile '$deb' | tar -xO ./conffiles | tee /dev/stderr | sort | tr '\n' ' ' |
        grep -qx '/etc/paddock/agent.yaml /etc/paddock/master.yaml '"
expected=(./usr/bin/paddock ./lib/systemd/system/paddock-master.service ./lib/systemd/system/paddock-agent.service
    ./etc/paddock/master.yaml ./etc/paddock/agent.yaml ./usr/share/man/man1/paddock.1.gz
    ./usr/share/bash-completion/completions/paddock ./usr/share/zsh/vendor-completions/_paddock
    ./usr/share/doc/paddock/copyright ./usr/share/doc/paddock/changelog.gz
    ./usr/share/doc/paddock/examples/haproxy.cfg ./usr/share/doc/paddock/examples/nginx.conf)
check "the package holds the binary, units, configs, man page, completions, copyright, changelog" bash -c "
    list=\$(dpkg-deb -c '$deb' | awk '{print \$6}')
    for f in ${expected[*]}; do grep -qx \"\$f\" <<<\"\$list\" || { echo \"missing \$f\"; exit 1; }; done
    dpkg-deb -c '$deb' | awk '\$2 != \"root/root\" { print \"not root-owned: \" \$0; bad = 1 } END { exit bad }'"

# --- lintian -------------------------------------------------------------------------
# (Every tag is printed; E: fails. Justified overrides: packaging/debian/lintian-overrides.)
lintian --fail-on error --suppress-tags spelling-error-in-binary "$deb" >"$work/lintian.txt" 2>&1
rc=$?
sed 's/^/  lintian: /' "$work/lintian.txt"
cp "$work/lintian.txt" "$log"
if [ $rc -eq 0 ] && ! grep -q '^E:' "$work/lintian.txt"; then ok "lintian reports no error"
else bad "lintian reports no error (exit $rc)"; fi

# --- install ---------------------------------------------------------------------------
check "dpkg -i installs it" dpkg -i "$deb"
check "/usr/bin/paddock --version prints $version" bash -c "/usr/bin/paddock --version | grep -qx '$version'"
check "paddock, paddock-agent and paddock-task system users and groups, no login shell" bash -c "
    for u in paddock paddock-agent paddock-task; do
        getent passwd \$u && uid=\$(id -u \$u) && [ \"\$uid\" -lt 1000 ] && getent group \$u &&
        getent passwd \$u | grep -q ':/usr/sbin/nologin$' || exit 1
    done"
check "/var/lib/paddock and its master/ belong to paddock, agent/ to paddock-agent, task/ to paddock-task" bash -c "
    stat -c '%U:%G %a %n' /var/lib/paddock /var/lib/paddock/master /var/lib/paddock/agent /var/lib/paddock/task
    [ \"\$(stat -c %U /var/lib/paddock)\" = paddock ] && [ \"\$(stat -c %U:%a /var/lib/paddock/master)\" = paddock:750 ] &&
    [ \"\$(stat -c %U:%a /var/lib/paddock/agent)\" = paddock-agent:755 ] &&
    [ \"\$(stat -c %U:%a /var/lib/paddock/task)\" = paddock-task:700 ]"
check "join and admin tokens generated: mode 0640, root:paddock, 64 hex digits, different" bash -c "
    for t in /etc/paddock/join-token /etc/paddock/admin-token; do
        stat -c '%a %U:%G %n' \$t; [ \"\$(stat -c '%a %U:%G' \$t)\" = '640 root:paddock' ] || exit 1
        grep -Eqx '[0-9a-f]{64}' \$t || exit 1
    done
    ! cmp -s /etc/paddock/join-token /etc/paddock/admin-token"
check "dpkg lists both conffiles" bash -c "
    c=\$(dpkg-query -W -f='\${Conffiles}' paddock); echo \"\$c\"
    grep -q '/etc/paddock/master.yaml' <<<\"\$c\" && grep -q '/etc/paddock/agent.yaml' <<<\"\$c\""
check "the man page renders without warnings and documents every subcommand" bash -c "
    warnings=\$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l /usr/share/man/man1/paddock.1.gz 2>&1 >'$work/man.txt')
    [ -z \"\$warnings\" ] || { echo \"\$warnings\"; exit 1; }
    for sub in master agent submit jobs logs agents; do grep -q \"paddock \$sub\" '$work/man.txt' || { echo \"no \$sub\"; exit 1; }; done"
check "the bash completion loads and completes paddock" bash -c "
    source /usr/share/bash-completion/completions/paddock && complete -p paddock"
check "the zsh completion is a #compdef paddock file" bash -c "head -n 1 /usr/share/zsh/vendor-completions/_paddock | grep -q '^#compdef paddock'"
check "the services were not started by the install" bash -c "! pgrep -f '^/usr/bin/paddock (master|agent)'"
check "units: restart on failure, paddock and paddock-agent users, the agent's capabilities and credential, KillMode=mixed, journal" bash -c "
    m=/lib/systemd/system/paddock-master.service a=/lib/systemd/system/paddock-agent.service
    grep -qx 'Restart=on-failure' \$m && grep -qx 'Restart=on-failure' \$a &&
    grep -qx 'User=paddock' \$m && grep -qx 'User=paddock-agent' \$a && grep -qx 'KillMode=mixed' \$a &&
    grep -qx 'Delegate=yes' \$a && grep -qx 'NoNewPrivileges=yes' \$a &&
    grep -qx 'AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_CHOWN CAP_KILL CAP_DAC_OVERRIDE CAP_FOWNER' \$a &&
    grep -qx 'LoadCredential=join-token:/etc/paddock/join-token' \$a &&
    grep -qx 'StandardOutput=journal' \$m && grep -qx 'StandardOutput=journal' \$a &&
    ! grep -Eq '^(ProtectSystem|ProtectHome|PrivateTmp)=' \$a &&
    grep -qx 'task-user: paddock-task' /etc/paddock/agent.yaml &&
    grep -qx 'ExecStart=/usr/bin/paddock master --config /etc/paddock/master.yaml' \$m &&
    grep -qx 'ExecStart=/usr/bin/paddock agent --config /etc/paddock/agent.yaml' \$a"
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify accepts both units" \
        systemd-analyze verify --man=no /lib/systemd/system/paddock-master.service /lib/systemd/system/paddock-agent.service
else
    echo "skip - systemd-analyze is not installed"
fi

# --- the example frontends (several masters behind HAProxy or nginx) --------------------
check "the example frontends are installed as in packaging/" bash -c "
    cmp '$here/haproxy.cfg' /usr/share/doc/paddock/examples/haproxy.cfg &&
    cmp '$here/nginx.conf' /usr/share/doc/paddock/examples/nginx.conf"
if [ -x /usr/sbin/haproxy ] && [ -x /usr/sbin/nginx ] && command -v python3 >/dev/null; then
    check "haproxy -c accepts haproxy.cfg, nginx -t nginx.conf, and both proxy to two local backends" \
        bash "$here/test-frontends.sh" --live
else
    echo "skip - haproxy, nginx or python3 is not installed (PADDOCK_TEST_DEPS=1 scripts/setup-debian.sh)"
fi

# --- run a master and an agent from the installed config files --------------------------
admin=$(cat /etc/paddock/admin-token)
# A free loopback port for the test; the rest as installed.
sed -i 's/^listen: .*/listen: 127.0.0.1:0/' /etc/paddock/master.yaml
start master setpriv --reuid=paddock --regid=paddock --init-groups \
    /usr/bin/paddock master --config /etc/paddock/master.yaml
if url=$(master_url master 2>"$log"); then
    ok "paddock master --config /etc/paddock/master.yaml runs as paddock ($url)"
else
    bad "paddock master --config /etc/paddock/master.yaml runs as paddock"
    url=http://127.0.0.1:1
fi
sed -i "s|^master: .*|master: $url|" /etc/paddock/agent.yaml
printf 'name: deb-test-agent\n' >>/etc/paddock/agent.yaml
# As paddock-agent.service runs it, without systemd: as paddock-agent with the unit's ambient
# capabilities, in a cgroup handed to that user (Delegate=yes), with the join token as a credential
# only it reads (LoadCredential=, PADDOCK_JOIN_TOKEN_FILE).
caps=$(sed -n 's/^AmbientCapabilities=//p' /lib/systemd/system/paddock-agent.service | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
mkdir -p "$work/credentials"
install -o paddock-agent -g paddock-agent -m 0400 /etc/paddock/join-token "$work/credentials/join-token"
chown paddock-agent:paddock-agent "$work/credentials"; chmod 0500 "$work/credentials"
cgroup2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
delegated=""
if [ -n "$cgroup2" ] && mkdir "$cgroup2/paddock-test-deb-$$" 2>/dev/null; then
    delegated="$cgroup2/paddock-test-deb-$$"
    chown paddock-agent:paddock-agent "$delegated" "$delegated/cgroup.procs" "$delegated/cgroup.subtree_control" "$delegated/cgroup.threads"
fi
start agent sh -c 'if [ -n "$0" ]; then echo $$ >"$0/cgroup.procs"; fi; exec "$@"' "$delegated" \
    setpriv --reuid=paddock-agent --regid=paddock-agent --init-groups --inh-caps="$caps" --ambient-caps="$caps" \
    env PADDOCK_JOIN_TOKEN_FILE="$work/credentials/join-token" /usr/bin/paddock agent --config /etc/paddock/agent.yaml
cat >"$work/job.yaml" <<'EOF'
name: deb-test
tasks:
  - name: marker
    command: ["sh", "-c", "echo paddock-deb-ok from $PADDOCK_AGENT_NAME as $(id -un); grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status; cat /var/lib/paddock/agent/agent-enrollment.json || echo credential refused"]
EOF
job=""
: >"$log"
if out=$(/usr/bin/paddock submit "$work/job.yaml" --master "$url" --token "$admin" 2>&1); then
    job=$(awk '/^submitted job/ {print $3; exit}' <<<"$out")
fi
echo "$out" >>"$log"
check "paddock submit: the job $job runs on the installed agent and succeeds" \
    wait_job /usr/bin/paddock "$url" "$admin" "$job"
check "the agent enrolled from agent.yaml (paddock agents lists deb-test-agent)" bash -c \
    "/usr/bin/paddock agents --master '$url' --token '$admin' | tee /dev/stderr | grep -q deb-test-agent"
check "the task printed its output (paddock logs)" bash -c "
    t=\$(/usr/bin/paddock tasks --job '$job' --master '$url' --token '$admin' --json | grep -Eo '\"id\" *: *\"t[0-9]+\"' | head -n 1 | grep -Eo 't[0-9]+')
    /usr/bin/paddock logs \"\$t\" --master '$url' --token '$admin' | tee '$work/marker.log' >&2
    grep -q 'paddock-deb-ok from deb-test-agent as paddock-task' '$work/marker.log'"
check "the agent ran as paddock-agent and its task as paddock-task, with no capability, refused the credential" bash -c "
    [ \"\$(ps -o uid= -p $pid_agent | tr -d ' ')\" = \"\$(id -u paddock-agent)\" ] &&
    [ \"\$(stat -c %U:%a /var/lib/paddock/agent/agent-enrollment.json)\" = paddock-agent:600 ] &&
    [ \"\$(grep -c '^Cap...:[[:space:]]*0000000000000000\$' '$work/marker.log')\" = 3 ] &&
    grep -q 'credential refused' '$work/marker.log'"
check "the agent stops on SIGTERM" stop agent
check "the master stops on SIGTERM" stop master
check "the master's store is in /var/lib/paddock/master, owned by paddock" bash -c "
    ls -la /var/lib/paddock/master; [ \"\$(stat -c %U /var/lib/paddock/master/paddock.sqlite)\" = paddock ]"

# --- dpkg -r keeps config and data; dpkg -i finds them again ------------------------------
sums() { sha256sum /etc/paddock/master.yaml /etc/paddock/agent.yaml /etc/paddock/join-token /etc/paddock/admin-token; }
before=$(sums)
check "dpkg -r paddock" dpkg -r paddock
kept_after_remove() {
    [ ! -e /usr/bin/paddock ] || { echo "/usr/bin/paddock is still there"; return 1; }
    [ "$(sums)" = "$before" ] || { echo "config or tokens changed:"; sums; return 1; }
    [ -s /var/lib/paddock/master/paddock.sqlite ] || { echo "the store is gone"; return 1; }
    getent passwd paddock >/dev/null || { echo "the paddock user is gone"; return 1; }
    dpkg-query -W -f='${Status}' paddock | grep -q config-files
}
kept_after_install() {
    [ "$(sums)" = "$before" ] || { echo "config or tokens changed:"; sums; return 1; }
    grep -qx 'listen: 127.0.0.1:0' /etc/paddock/master.yaml && [ -s /var/lib/paddock/master/paddock.sqlite ]
}
check "after dpkg -r: binary gone, config (as edited), tokens, data and user kept" kept_after_remove
check "dpkg -i again" dpkg -i "$deb" </dev/null
check "after dpkg -i: config (as edited) and tokens unchanged, data there" kept_after_install
start master setpriv --reuid=paddock --regid=paddock --init-groups \
    /usr/bin/paddock master --config /etc/paddock/master.yaml
if url=$(master_url master 2>"$log"); then
    check "the reinstalled master still has job $job" bash -c \
        "/usr/bin/paddock jobs --master '$url' --token '$admin' | tee /dev/stderr | grep -qw '$job'"
else
    bad "the reinstalled master starts from the kept config"
fi
check "the master stops on SIGTERM" stop master

check "dpkg --purge paddock" dpkg --purge paddock
check "after --purge: /etc/paddock, /var/lib/paddock and the paddock users are gone" bash -c "
    [ ! -e /etc/paddock ] && [ ! -e /var/lib/paddock ] && ! getent passwd paddock && ! getent group paddock &&
    ! getent passwd paddock-agent && ! getent passwd paddock-task &&
    [ ! -e /usr/bin/paddock ]"

# --- install an agent from a master: curl MASTER/install-agent.sh | sh -------------------
mkdir -p "$work/served" "$work/master2"
cp "$deb" "$deb.sha256" "$work/served/"
join="join-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
admin2="admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
start master2 "$binary" master --listen 127.0.0.1:0 --data "$work/master2" --join-token "$join" \
    --admin-token "$admin2" --agent-package "$work/served/$deb_name"
url2=$(master_url master2 2>"$log") || url2=http://127.0.0.1:1
sha=$(cut -d' ' -f1 "$deb.sha256")
check "the master serves /install-agent.sh with its URL, the package name and checksum written in" bash -c "
    curl -fsS '$url2/install-agent.sh' >'$work/install-agent.sh' && head -n 3 '$work/install-agent.sh' &&
    grep -q \"MASTER_URL='$url2'\" '$work/install-agent.sh' && grep -q \"PACKAGE_NAME='$deb_name'\" '$work/install-agent.sh' &&
    grep -q \"PACKAGE_SHA256='$sha'\" '$work/install-agent.sh' && ! grep -q '@[A-Z0-9_]*@' '$work/install-agent.sh'"
check "the served script is packaging/install-agent.sh with those three written in (the binary embeds the current one)" bash -c "
    sed -e 's|@MASTER_URL@|$url2|g' -e 's|@PACKAGE_NAME@|$deb_name|g' -e 's|@PACKAGE_SHA256@|$sha|g' \
        '$here/install-agent.sh' | diff - '$work/install-agent.sh'"
check "the master serves the package it names" bash -c "
    curl -fsS -o '$work/fetched.deb' '$url2/packages/$deb_name' && cmp '$work/fetched.deb' '$deb'"
: >"$log"
printf '%s\n' "$join" >"$work/join-token"
chmod 0600 "$work/join-token"
check "the install script refuses a join token on the command line" bash -c "
    curl -fsSL '$url2/install-agent.sh' | sh -s -- --join-token '$join' 2>&1 | grep -q 'not taken from the command line'"
curl -fsSL "$url2/install-agent.sh" | sh -s -- --join-token-file "$work/join-token" --tags pkgtest,gpu --name pkg-agent >"$work/install.out" 2>&1
rc=$?
cp "$work/install.out" "$log"
if [ $rc -eq 0 ] && installed; then ok "curl .../install-agent.sh | sh -s -- --join-token-file F --tags ... installs the package"
else bad "curl .../install-agent.sh | sh -s -- --join-token-file F --tags ... installs the package (exit $rc)"; fi
check "it wrote /etc/paddock/agent.yaml (master URL, name, tags) and the join token" bash -c "
    cat /etc/paddock/agent.yaml
    grep -qx 'master: \"$url2\"' /etc/paddock/agent.yaml && grep -qx 'name: \"pkg-agent\"' /etc/paddock/agent.yaml &&
    grep -qx 'tags: \[\"pkgtest\", \"gpu\"\]' /etc/paddock/agent.yaml &&
    grep -qx 'join-token-file: /etc/paddock/join-token' /etc/paddock/agent.yaml &&
    [ \"\$(cat /etc/paddock/join-token)\" = '$join' ] && [ \"\$(stat -c '%a %G' /etc/paddock/join-token)\" = '640 paddock' ]"
if ! installed; then
    bad "the installed agent enrolls and runs a task (skipped: nothing was installed)"
else
    if [ -d /run/systemd/system ]; then
        check "it enabled and started paddock-agent.service" systemctl is-active paddock-agent.service
    else
        check "without systemd it says how to start the agent" \
            grep -q 'paddock agent --config /etc/paddock/agent.yaml' "$work/install.out"
        start agent2 /usr/bin/paddock agent --config /etc/paddock/agent.yaml
    fi
    printf '%s\n' 'name: installed-agent' 'tasks:' '  - name: tagged' \
        '    command: ["sh", "-c", "echo ran on $PADDOCK_AGENT_NAME"]' \
        '    requirements: {tags: [pkgtest]}' >"$work/job2.yaml"
    job2=""
    : >"$log"
    if out=$("$binary" submit "$work/job2.yaml" --master "$url2" --token "$admin2" 2>&1); then
        job2=$(awk '/^submitted job/ {print $3; exit}' <<<"$out")
    fi
    echo "$out" >>"$log"
    check "the installed agent enrolls and runs a task that needs its tag ($job2)" \
        wait_job "$binary" "$url2" "$admin2" "$job2"
    check "the master lists pkg-agent" bash -c \
        "'$binary' agents --master '$url2' --token '$admin2' | tee /dev/stderr | grep -q pkg-agent"
    if [ -d /run/systemd/system ]; then systemctl stop paddock-agent.service; else check "the agent stops on SIGTERM" stop agent2; fi
fi
dpkg --purge paddock >/dev/null 2>&1

# A package that is not the one the master vouches for is refused.
printf 'x' >>"$work/served/$deb_name"
: >"$log"
curl -fsSL "$url2/install-agent.sh" | sh -s -- --join-token-file "$work/join-token" --tags pkgtest >"$work/tampered.out" 2>&1
rc=$?
cp "$work/tampered.out" "$log"
if [ $rc -ne 0 ] && grep -qi 'checksum mismatch' "$work/tampered.out" && not_installed && [ ! -e /etc/paddock/agent.yaml ]; then
    ok "a tampered package is refused (exit $rc, nothing installed)"
else
    bad "a tampered package is refused (exit $rc, nothing installed)"
fi
check "the master stops on SIGTERM" stop master2
