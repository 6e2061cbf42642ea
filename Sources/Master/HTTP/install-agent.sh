#!/bin/sh
# Installs a Paddock agent on this host from the master that served this script:
#
#   curl -fsSL http://MASTER:8420/install-agent.sh | sudo sh -s -- --join-token-file FILE [--tags gpu,blender] [--name NAME]
#
# or, with the token on standard input (the script downloaded first):
#
#   curl -fsSLO http://MASTER:8420/install-agent.sh
#   paddock token create --name rack-4 --role join --ttl 1h --uses 20 | head -n 1 | sudo sh install-agent.sh --join-token-file -
#
# The join token is never taken from the command line: every user of the host sees
# the command lines of its processes (ps, /proc).
#
# It downloads the paddock package from that master, checks its SHA-256 against
# the one the master wrote in here (and refuses anything else), installs it,
# writes /etc/paddock/agent.yaml (the master's URL, the tags, the name) and
# /etc/paddock/join-token, then enables and starts paddock-agent.service (or,
# where systemd does not run, says how to start the agent).
#
# Options:
#   --join-token-file F  a file whose first line is a join token (required); - for
#                    standard input (when the script is not itself read from it)
#   --tags a,b       tags of this agent, comma-separated
#   --name N         name of this agent (default: the host name)
#   --master URL     reach the master at URL instead of the one below
#   --no-start       install and configure, but do not start the agent
set -eu

# Written in by the master that serves this script.
MASTER_URL='@MASTER_URL@'
PACKAGE_NAME='@PACKAGE_NAME@'
PACKAGE_SHA256='@PACKAGE_SHA256@'

say() { printf 'install-agent: %s\n' "$*"; }
die() { printf 'install-agent: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat <<EOF
usage: curl -fsSL $MASTER_URL/install-agent.sh | sudo sh -s -- --join-token-file FILE [options]
   or: sudo sh install-agent.sh --join-token-file - [options] <FILE
  --join-token-file F  a file whose first line is a join token (required); - for standard input
  --tags a,b       tags of this agent, comma-separated
  --name N         name of this agent (default: the host name)
  --master URL     reach the master at URL instead of $MASTER_URL
  --no-start       install and configure, but do not start the agent
EOF
}

join_token=""
token_file=""
tags=""
name=""
start=1
while [ $# -gt 0 ]; do
    case "$1" in
        --join-token|--join-token=*)
            die "the join token is not taken from the command line (every user of this host sees it there): put it in a file and give --join-token-file FILE, or - to read it from standard input" ;;
        --join-token-file) [ $# -ge 2 ] || die "--join-token-file needs a value"; token_file=$2; shift 2 ;;
        --join-token-file=*) token_file=${1#*=}; shift ;;
        --tags) [ $# -ge 2 ] || die "--tags needs a value"; tags=$2; shift 2 ;;
        --tags=*) tags=${1#*=}; shift ;;
        --name) [ $# -ge 2 ] || die "--name needs a value"; name=$2; shift 2 ;;
        --name=*) name=${1#*=}; shift ;;
        --master) [ $# -ge 2 ] || die "--master needs a value"; MASTER_URL=$2; shift 2 ;;
        --master=*) MASTER_URL=${1#*=}; shift ;;
        --no-start) start=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

# --- checks before anything changes -----------------------------------------
case "$MASTER_URL" in
    http://?*|https://?*) ;;
    *) die "the master's URL is not an http(s) URL: '$MASTER_URL' (give --master URL)" ;;
esac
MASTER_URL=${MASTER_URL%/}
case "$MASTER_URL" in *[!A-Za-z0-9._~:/?#@!\$\&\(\)*+,\;=%\[\]-]*) die "bad characters in the master's URL: '$MASTER_URL'" ;; esac
case "$PACKAGE_NAME" in
    ''|*/*|.*|*[!A-Za-z0-9._+~-]*) die "the master did not name a package to install (is it started with --agent-package?)" ;;
esac
case "$PACKAGE_SHA256" in
    *[!0-9a-f]*|'') die "the master did not give the package's SHA-256" ;;
esac
[ ${#PACKAGE_SHA256} -eq 64 ] || die "the master did not give the package's SHA-256"
[ -n "$token_file" ] || die "--join-token-file FILE is required (a file holding a join token; - for standard input)"
if [ "$token_file" = - ]; then
    # Piped into sh, the script itself is standard input: the token cannot come from there too.
    [ -f "$0" ] || die "this script is read from standard input, so the token cannot be: give --join-token-file FILE, or download the script and run sh install-agent.sh --join-token-file - <FILE"
    IFS= read -r join_token || [ -n "$join_token" ] || die "no join token on standard input"
else
    [ -r "$token_file" ] || die "cannot read the join token file $token_file"
    IFS= read -r join_token <"$token_file" || [ -n "$join_token" ] || die "the join token file $token_file is empty"
fi
join_token=$(printf '%s' "$join_token" | tr -d ' \t\r')
[ -n "$join_token" ] || die "the join token is empty"
case "$join_token" in *[!A-Za-z0-9._~+/=-]*) die "the join token has characters a token does not have" ;; esac
case "$tags" in *[!A-Za-z0-9._,-]*) die "--tags is a comma-separated list of names (letters, digits, . _ -)" ;; esac
case "$name" in *[!A-Za-z0-9._-]*) die "--name has letters, digits, . _ - only" ;; esac

[ "$(id -u)" -eq 0 ] || die "run as root (… | sudo sh -s -- --join-token-file FILE)"
command -v dpkg >/dev/null 2>&1 || die "this host has no dpkg: the agent package is for Debian and Ubuntu"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is needed (coreutils)"
arch=$(dpkg --print-architecture)
case "$PACKAGE_NAME" in
    *_"$arch".deb|*_all.deb) ;;
    *) die "the master serves $PACKAGE_NAME, which is not for this host's architecture ($arch)" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
chmod 0755 "$tmp"
deb="$tmp/$PACKAGE_NAME"

# --- download and verify -----------------------------------------------------
url="$MASTER_URL/packages/$PACKAGE_NAME"
say "downloading $url"
if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$deb" "$url" || die "could not download $url"
elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$deb" "$url" || die "could not download $url"
else
    die "curl or wget is needed to download the package"
fi
sum=$(sha256sum "$deb" | cut -d' ' -f1)
if [ "$sum" != "$PACKAGE_SHA256" ]; then
    die "checksum mismatch for $PACKAGE_NAME: expected $PACKAGE_SHA256, got $sum; refusing to install it (nothing was changed)"
fi
say "checksum verified: $sum"
chmod 0644 "$deb"

# --- install -------------------------------------------------------------------
if command -v apt-get >/dev/null 2>&1; then
    # apt-get installs the package's dependencies too; local changes to
    # /etc/paddock are kept on an upgrade.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold "$deb" \
        || die "apt-get could not install $PACKAGE_NAME"
else
    dpkg --force-confold -i "$deb" || die "dpkg could not install $PACKAGE_NAME (missing dependencies?)"
fi
[ -x /usr/bin/paddock ] || die "the package did not install /usr/bin/paddock"

# --- configure -----------------------------------------------------------------
umask 022
mkdir -p /etc/paddock
tokenfile=/etc/paddock/join-token
printf '%s\n' "$join_token" >"$tokenfile.new"
chmod 0640 "$tokenfile.new"
chgrp paddock "$tokenfile.new" 2>/dev/null || true
mv "$tokenfile.new" "$tokenfile"

config=/etc/paddock/agent.yaml
# Keep a copy of a config that someone edited (not the packaged one, nor ours).
packaged=$(dpkg-query -W -f='${Conffiles}\n' paddock 2>/dev/null | awk -v f="$config" '$1 == f { print $2 }')
if [ -f "$config" ] && ! grep -q '^# Written by install-agent.sh' "$config" \
    && [ "$(md5sum <"$config" | cut -d' ' -f1)" != "$packaged" ]; then
    cp -p "$config" "$config.paddock-old"
    say "kept the previous $config as $config.paddock-old"
fi
{
    echo "# Written by install-agent.sh from $MASTER_URL on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo "# Keys are the long options of \`paddock agent\` (see paddock(1)): cpus, ram,"
    echo "# disk, gpus, reserve-ram, slots, prefetch, on-stop, log-level, ..."
    echo "master: \"$MASTER_URL\""
    echo "join-token-file: $tokenfile"
    echo "work-dir: /var/lib/paddock/agent"
    echo "task-user: paddock-task"
    [ -z "$name" ] || echo "name: \"$name\""
    if [ -n "$tags" ]; then
        list=""
        old_ifs=$IFS
        IFS=,
        for tag in $tags; do
            [ -z "$tag" ] || list="${list:+$list, }\"$tag\""
        done
        IFS=$old_ifs
        echo "tags: [$list]"
    fi
} >"$config.new"
chmod 0644 "$config.new"
mv "$config.new" "$config"
say "wrote $config (master $MASTER_URL${name:+, name $name}${tags:+, tags $tags})"

# --- start ---------------------------------------------------------------------
if [ "$start" = 0 ]; then
    say "installed; start the agent with: systemctl enable --now paddock-agent.service"
elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl enable paddock-agent.service
    systemctl restart paddock-agent.service
    say "paddock-agent.service is enabled and started (journalctl -u paddock-agent -f to follow it)"
else
    say "systemd does not run on this host: start the agent with"
    say "  /usr/bin/paddock agent --config $config"
    say "(e.g. nohup /usr/bin/paddock agent --config $config >>/var/log/paddock-agent.log 2>&1 &)"
fi
