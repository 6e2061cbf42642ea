#!/usr/bin/env bash
# Builds paddock_VERSION_ARCH.deb (and its .sha256, in sha256sum format) with dpkg-deb.
#
#   packaging/build-deb.sh [--binary PATH] [--version V] [--out DIR] [--arch A]
#                          [--compress xz|gzip|none] [--maintainer "Name <mail>"]
#
# Without --binary it builds the release binary first:
#   swift build -c release --product paddock --static-swift-stdlib \
#       -Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic
# (the Swift runtime and Foundation linked in: the package then needs only libc,
# libsqlite3 and libcurl from Debian). A binary linked against the toolchain's
# shared Swift runtime (e.g. a debug build) still packages, with a warning: it
# runs only where that toolchain is installed (CI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

binary=""
version=""
out="$root/packaging/dist"
arch=""
compress="xz"
maintainer="${PADDOCK_MAINTAINER:-Paddock maintainers <maintainers@paddock.invalid>}"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "build-deb: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=${2:?--binary needs a path}; shift 2 ;;
        --binary=*) binary=${1#*=}; shift ;;
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --version=*) version=${1#*=}; shift ;;
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --out=*) out=${1#*=}; shift ;;
        --arch) arch=${2:?--arch needs a value}; shift 2 ;;
        --arch=*) arch=${1#*=}; shift ;;
        --compress) compress=${2:?--compress needs xz, gzip or none}; shift 2 ;;
        --compress=*) compress=${1#*=}; shift ;;
        --maintainer) maintainer=${2:?--maintainer needs a value}; shift 2 ;;
        --maintainer=*) maintainer=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

for tool in dpkg-deb dpkg gzip sha256sum md5sum readelf strip; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install dpkg-dev binutils)"
done
case "$compress" in xz|gzip|none) ;; *) die "--compress is xz, gzip or none" ;; esac

if [ -z "$binary" ]; then
    # Linking Foundation statically needs the development links of its C libraries.
    need=()
    dpkg -s libsqlite3-dev >/dev/null 2>&1 || need+=(libsqlite3-dev)
    dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || dpkg -s libcurl4-gnutls-dev >/dev/null 2>&1 || need+=(libcurl4-openssl-dev)
    if [ ${#need[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "the static build needs ${need[*]}: sudo apt-get install ${need[*]}"
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
    fi
    # Linked by the toolchain's lld, with packed relative relocations and no dynamic symbol table
    # of the binary's own. Measured on the idle agent (docs/BENCHMARKS.md, session 20): 41.3 MB
    # resident with the default linker (gold), 33.6 MB so (medians of 3). The static runtime's link
    # arguments export every symbol of the executable (`-export-dynamic`): 5 MB of symbols, names
    # and hash that the dynamic loader searches first for every symbol the C libraries bind. And
    # 156 000 relative relocations (3.6 MB of `.rela.dyn`, all read at each start) shrink to 30 kB
    # of `.relr.dyn` (glibc 2.36 reads it). Nothing looks up the executable's own symbols at run
    # time (no plugins, no dlsym of its own), and the package strips `.symtab` anyway.
    link=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic)
    if ! PATH="$(dirname "$(readlink -f "$(command -v swift)")"):$PATH" command -v ld.lld >/dev/null; then
        echo "build-deb: no ld.lld beside swift: linking with the default linker (a larger idle footprint)" >&2
        link=()
    fi
    echo "build-deb: building the release binary (swift build -c release --static-swift-stdlib ${link[*]})" >&2
    (cd "$root" && swift build -c release --product paddock --static-swift-stdlib "${link[@]}" >&2)
    binary="$(cd "$root" && swift build -c release --product paddock --static-swift-stdlib "${link[@]}" --show-bin-path)/paddock"
fi
[ -x "$binary" ] || die "no executable at $binary"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

[ -n "$version" ] || version=$("$binary" --version | head -n 1 | tr -d '[:space:]')
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "'$version' is not a Debian version"
[ -n "$arch" ] || arch=$(dpkg --print-architecture)

deb_name="paddock_${version}_${arch}.deb"
mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/paddock-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg="$stage/pkg"

# A fixed time for generated files: SOURCE_DATE_EPOCH, else the binary's.
epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$binary")}

# --- files -----------------------------------------------------------------
install -d -m 0755 "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/paddock" \
    "$pkg/usr/share/man/man1" "$pkg/usr/share/bash-completion/completions" \
    "$pkg/usr/share/zsh/vendor-completions" "$pkg/usr/share/doc/paddock" \
    "$pkg/usr/share/lintian/overrides" "$pkg/DEBIAN"

install -m 0755 "$binary" "$pkg/usr/bin/paddock"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/bin/paddock"

install -m 0644 "$here/paddock-master.service" "$here/paddock-agent.service" "$pkg/lib/systemd/system/"
install -m 0644 "$here/master.yaml" "$here/agent.yaml" "$pkg/etc/paddock/"

# Man page and completions, generated from the argument parser.
"$here/gen-manpage.sh" "$binary" "$version" >"$stage/paddock.1"
gzip -9n <"$stage/paddock.1" >"$pkg/usr/share/man/man1/paddock.1.gz"
# (A completion file is sourced, not run: no #! line.)
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' >"$pkg/usr/share/bash-completion/completions/paddock"
"$binary" --generate-completion-script zsh >"$pkg/usr/share/zsh/vendor-completions/_paddock"
chmod 0644 "$pkg/usr/share/bash-completion/completions/paddock" "$pkg/usr/share/zsh/vendor-completions/_paddock"
grep -q . "$pkg/usr/share/bash-completion/completions/paddock" || die "no bash completion from $binary"

# Documentation: copyright, changelog (gzipped), the packaging notes.
install -m 0644 "$here/debian/copyright" "$pkg/usr/share/doc/paddock/copyright"
changelog=changelog.gz
case "$version" in *-*) changelog=changelog.Debian.gz ;; esac
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || true)
{
    echo "paddock ($version) unstable; urgency=medium"
    echo
    echo "  * Release $version${commit:+ (built from commit $commit)}."
    echo "    See /usr/share/doc/paddock/README.md for what the package installs."
    echo
    echo " -- $maintainer  $(LC_ALL=C date -u -R -d "@$epoch")"
} | gzip -9n >"$pkg/usr/share/doc/paddock/$changelog"
install -m 0644 "$here/README.md" "$pkg/usr/share/doc/paddock/README.md"
# Example frontends for several masters on one PostgreSQL database (docs/OPERATIONS.md).
install -d -m 0755 "$pkg/usr/share/doc/paddock/examples"
install -m 0644 "$here/haproxy.cfg" "$here/nginx.conf" "$pkg/usr/share/doc/paddock/examples/"

# --- dependencies ------------------------------------------------------------
swift_runtime=0
if readelf -d "$binary" | grep -q 'NEEDED.*libswiftCore\.so'; then
    swift_runtime=1
    echo "build-deb: warning: $binary needs the shared Swift runtime" \
        "($(readelf -d "$binary" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p'));" \
        "this package runs only where that Swift toolchain is installed." \
        "Build with --static-swift-stdlib (the default without --binary) for other hosts." >&2
fi
depends=""
if command -v dpkg-shlibdeps >/dev/null; then
    shl="$stage/shlibdeps"
    mkdir -p "$shl/debian"
    printf 'Source: paddock\n\nPackage: paddock\nArchitecture: any\n' >"$shl/debian/control"
    libdirs=()
    for dir in $(readelf -d "$binary" | sed -n 's/.*R\(UN\)\{0,1\}PATH.*\[\(.*\)\]/\2/p' | tr ':' ' '); do
        [ -d "$dir" ] && libdirs+=("-l$dir")
    done
    if depends=$(cd "$shl" && dpkg-shlibdeps -O --ignore-missing-info "${libdirs[@]}" \
            "$pkg/usr/bin/paddock" 2>"$shl/err"); then
        depends=${depends#shlibs:Depends=}
    else
        echo "build-deb: dpkg-shlibdeps failed, listing dependencies by hand:" >&2
        sed 's/^/  /' "$shl/err" >&2
        depends=""
    fi
fi
if [ -z "$depends" ]; then
    # What a --static-swift-stdlib build links (checked with ldd/readelf).
    depends="libc6 (>= 2.34), libcurl4 (>= 7.16.2), libgcc-s1 (>= 3.0), libsqlite3-0 (>= 3.7.15), libstdc++6 (>= 12)"
fi
# Packed relative relocations (the release build's DT_RELR) load only with glibc 2.36 or later,
# and dpkg-shlibdeps does not know the GLIBC_ABI_DT_RELR version such a binary asks for: it would
# let the package install where the binary cannot start (glibc 2.35 says "version
# `GLIBC_ABI_DT_RELR' not found").
if readelf -V "$binary" 2>/dev/null | grep -q GLIBC_ABI_DT_RELR; then
    libc=$(grep -o 'libc6 (>= [^)]*)' <<<"$depends" | sed 's/.*>= //; s/)$//') || true
    if [ -z "$libc" ]; then
        depends="libc6 (>= 2.36)${depends:+, $depends}"
    elif dpkg --compare-versions "$libc" lt 2.36; then
        depends=$(sed "s/libc6 (>= [^)]*)/libc6 (>= 2.36)/" <<<"$depends")
    fi
fi
depends="adduser, $depends"

install -m 0644 "$here/debian/lintian-overrides" "$pkg/usr/share/lintian/overrides/paddock"
if [ "$swift_runtime" = 1 ]; then
    # The runtime's own dependencies (dpkg-shlibdeps sees only the binary's), each once:
    # a package named twice in Depends is a lintian error.
    for lib in libcurl4 libgcc-s1 libstdc++6; do
        case ", $depends" in *", $lib "* | *", $lib,"* | *", $lib") ;; *) depends="$depends, $lib" ;; esac
    done
    # The shared Swift runtime is found through the toolchain's RUNPATH, which
    # lintian reports; a release (static) build has neither.
    cat >>"$pkg/usr/share/lintian/overrides/paddock" <<'EOF'
# A development build, linked against the Swift toolchain's shared runtime at
# the path in its RUNPATH; release packages are built with --static-swift-stdlib.
paddock: custom-library-search-path *
EOF
fi

# --- control -------------------------------------------------------------------
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: paddock
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: utils
Priority: optional
Description: job farm for render and compute hosts
 Paddock runs a queue of jobs on a farm of Linux hosts. A small master (a
 REST service with an embedded SQLite database) holds the queue; an agent on
 every host claims the tasks that fit its free CPUs, RAM, disk, GPUs and tags,
 runs them as processes, streams their output and reports how they ended.
 Leases with epochs make sure a task killed with its agent is run again
 elsewhere and none is finished twice.
 .
 This package installs the paddock command, systemd units for the master
 (paddock-master.service, as the paddock system user) and the agent
 (paddock-agent.service), and their configuration in /etc/paddock.
EOF
printf '/etc/paddock/master.yaml\n/etc/paddock/agent.yaml\n' >"$pkg/DEBIAN/conffiles"
install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$pkg/DEBIAN/"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
    | LC_ALL=C sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

# Modes and times that do not depend on the umask or the checkout.
find "$pkg" -type d -exec chmod 0755 {} +
find "$pkg" -exec touch -h -d "@$epoch" {} +

rm -f "$out/$deb_name" "$out/$deb_name.sha256"
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Z"$compress" --build "$pkg" "$out/$deb_name" >/dev/null
(cd "$out" && sha256sum "$deb_name" >"$deb_name.sha256")
echo "$out/$deb_name"
