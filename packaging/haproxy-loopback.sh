#!/usr/bin/env bash
# Prints packaging/haproxy.cfg rewritten to run unprivileged in the foreground on loopback, for
# tests (packaging/test-frontends.sh, Tests/browser/run.sh, Tests/Support/HAProxyServer.swift):
#   haproxy-loopback.sh CFG LISTEN_PORT CERT_PEM BACKEND_PORT...
# The frontend binds 127.0.0.1:LISTEN_PORT with the shipped TLS options and CERT_PEM (certificate
# and key in one file) as its crt, or in plain HTTP with no option when CERT_PEM is -; one `server`
# line per backend on 127.0.0.1 with the shipped line's options; `global` loses what needs root
# (user, group, chroot, daemon, pidfile, the stats socket) and logs to stdout. Everything else is
# as shipped. A config without a frontend bind line (with a crt, for TLS) or a backend server line
# is refused (exit 1).
set -euo pipefail
cfg=$1 listen=$2 crt=$3
shift 3
awk -v bind="127.0.0.1:$listen" -v crt="$crt" -v servers="$*" '
    /^[a-z]/ { section = $1 }
    section == "global" && $1 ~ /^(user|group|chroot|daemon|pidfile)$/ { next }
    section == "global" && $1 == "log" { if (!logged) print "    log stdout format raw local0"; logged = 1; next }
    section == "global" && $1 == "stats" && $2 == "socket" { next }
    section == "frontend" && $1 == "bind" {
        if (bound++) next
        if (crt == "-") { print "    bind " bind; next }
        $2 = bind
        for (i = 3; i < NF; i++) if ($i == "crt") { $(i + 1) = crt; hascrt = 1 }
        print "    " $0; next
    }
    $1 == "bind" { next }
    section == "backend" && $1 == "server" {
        if (!done) {
            options = ""; for (i = 4; i <= NF; i++) options = options " " $i
            n = split(servers, ports, " ")
            for (i = 1; i <= n; i++) print "    server master" i " 127.0.0.1:" ports[i] options
            done = 1
        }
        next
    }
    { print }
    END {
        if (!bound || (crt != "-" && !hascrt) || !done) {
            print "haproxy-loopback.sh: " FILENAME ": expected a frontend bind line (with crt FILE) and a backend server line" > "/dev/stderr"
            exit 1
        }
    }' "$cfg"
