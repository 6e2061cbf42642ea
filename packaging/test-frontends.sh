#!/usr/bin/env bash
# Checks the example frontends packaging/haproxy.cfg and packaging/nginx.conf:
#
#   packaging/test-frontends.sh [--live]
#
# Always: `haproxy -c -f` on haproxy.cfg as shipped, and `nginx -t` on nginx.conf
# (a site file) included in a minimal main config. With --live it also runs each
# one, its listen address and masters rewritten to loopback, in front of two
# `python3 -m http.server` backends that answer /healthz, and fetches through
# it until both backends have answered. Needs haproxy, nginx and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
live=0
case "${1:-}" in
    --live) live=1 ;;
    "") ;;
    *) echo "test-frontends: unknown argument $1" >&2; exit 2 ;;
esac
for tool in haproxy nginx; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "test-frontends: $tool is not installed" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"

work=$(mktemp -d /tmp/paddock-frontends.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# nginx_main SITE PORT_LINE...: a minimal main config that includes SITE, with its
# pid, logs and temp files in $work (nothing of /etc/nginx or /var is used).
nginx_main() {
    cat <<EOF
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 256; }
http {
    access_log $work/nginx-access.log;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $1;
}
EOF
}

# Both frontends terminate TLS as shipped: the test certificate (127.0.0.1 and localhost, signed by
# the test CA) stands in for /etc/haproxy/paddock.pem and /etc/nginx/paddock{,-key}.pem.
fixtures="$here/../Tests/ClientTests/Fixtures"
cat "$fixtures/server.pem" "$fixtures/server-key.pem" >"$work/frontend.pem"
with_test_certificate() {
    sed -e "s#/etc/haproxy/paddock.pem#$work/frontend.pem#" \
        -e "s#/etc/nginx/paddock.pem#$fixtures/server.pem#" \
        -e "s#/etc/nginx/paddock-key.pem#$fixtures/server-key.pem#" "$1"
}
with_test_certificate "$here/haproxy.cfg" >"$work/haproxy-shipped.cfg"
with_test_certificate "$here/nginx.conf" >"$work/nginx-shipped-site.conf"
echo "haproxy -c -f packaging/haproxy.cfg (its certificate path replaced)"
haproxy -c -f "$work/haproxy-shipped.cfg"
echo "nginx -t: packaging/nginx.conf in a minimal main config (its certificate paths replaced)"
nginx_main "$work/nginx-shipped-site.conf" >"$work/nginx-shipped.conf"
nginx -t -q -e "$work/nginx-error.log" -c "$work/nginx-shipped.conf"
[ "$live" = 1 ] || { echo "test-frontends: both files are valid"; exit 0; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# Two backends, each serving a /healthz file and an /id file naming it.
backends=()
for name in a b; do
    mkdir -p "$work/$name"
    echo ok >"$work/$name/healthz"
    echo "backend-$name" >"$work/$name/id"
    port=$(free_port)
    (cd "$work/$name" && exec python3 -m http.server --bind 127.0.0.1 "$port") >"$work/$name.log" 2>&1 &
    pids+=($!)
    backends+=("$port")
done
for port in "${backends[@]}"; do wait_port "$port"; done

# fetch_both URL: fetches URL/id until both backends have answered (leastconn and
# least_conn with idle backends may pick either; 40 tries are plenty).
fetch_both() {
    local seen=""
    for _ in $(seq 1 40); do
        body=$(curl -fsS --max-time 5 --cacert "$fixtures/ca.pem" "$1/id") || { echo "GET $1/id failed" >&2; return 1; }
        case " $seen " in *" $body "*) ;; *) seen="$seen $body" ;; esac
        [[ "$seen" == *backend-a* && "$seen" == *backend-b* ]] && { echo "  both backends answered through $1"; return 0; }
    done
    echo "only$seen answered through $1" >&2; return 1
}

# HAProxy: the shipped file with the same rewrites as Tests/Support/HAProxyServer.swift.
hport=$(free_port)
"$here/haproxy-loopback.sh" "$here/haproxy.cfg" "$hport" "$work/frontend.pem" "${backends[@]}" >"$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
wait_port "$hport"
sleep 2.5   # two health checks (inter 1s) before both backends are surely up
echo "haproxy (packaging/haproxy.cfg, rewritten for loopback) on 127.0.0.1:$hport"
fetch_both "https://127.0.0.1:$hport"
curl -fsS --cacert "$fixtures/ca.pem" -o /dev/null -w '  /healthz through haproxy: %{http_code}\n' "https://127.0.0.1:$hport/healthz"

# nginx: the shipped site file with its listen and upstream servers rewritten.
nport=$(free_port)
awk -v listen="127.0.0.1:$nport" -v servers="${backends[*]}" '
    $1 == "upstream" { inside = 1 }
    inside && $1 == "server" {
        if (!done) {
            options = ""; for (i = 3; i <= NF; i++) options = options " " $i
            n = split(servers, ports, " ")
            for (i = 1; i <= n; i++) print "    server 127.0.0.1:" ports[i] options
            done = 1
        }
        next
    }
    inside && $1 == "}" { inside = 0 }
    $1 == "listen" { print "    listen " listen " ssl;"; next }
    { print }' "$work/nginx-shipped-site.conf" >"$work/nginx-site.conf"
nginx_main "$work/nginx-site.conf" >"$work/nginx-live.conf"
nginx -e "$work/nginx-error.log" -c "$work/nginx-live.conf" -g 'daemon off; master_process off;' &
pids+=($!)
wait_port "$nport"
echo "nginx (packaging/nginx.conf, rewritten for loopback) on 127.0.0.1:$nport"
fetch_both "https://127.0.0.1:$nport"
echo "test-frontends: both files are valid and proxy"
