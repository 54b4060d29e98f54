#!/usr/bin/env bash
# Build one pinned upstream program from its published Go module, or reuse the cached build.
#
#   build-go.sh PROGRAM   ->  prints the directory holding its binaries
#
# Each program has a small module of our own here (tests/images/go/PROGRAM/go.mod + go.sum) that
# requires the upstream module at the pinned version, repeats upstream's replace/exclude lines
# (`go install` refuses a module that has them) and lists its commands as `tool` lines.
# The binaries are cached outside the clone under $MONCTL_TEST_CACHE/go/bin/, keyed by program,
# version and the hash of the build's inputs (go.mod, go.sum, this script, `go version`), and so
# are the module and build caches ($MONCTL_TEST_CACHE/go/{mod,build}): a second CI run, or a later
# session, reuses them. Every compile runs under `nice -n 19` (the machine is shared).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${MONCTL_TEST_CACHE:-/var/cache/monctl-test}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

say() { printf '[build-go.sh] %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

[[ $# == 1 ]] || die "usage: build-go.sh PROGRAM"
PROGRAM=$1
[[ -x $GO ]] || die "no Go toolchain (looked for 'go' on PATH and $GO; see .ci/run)"

export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build"
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local GOTELEMETRY=off

# Per program: VERSION (the upstream release), the commands (output name=package), build tags,
# CGO and the -X flags that give the binary its version (what /api/v1/status/buildinfo, --version
# and the build_info metrics report).
CGO=0
TAGS=netgo
MODFLAG=-mod=readonly
case $PROGRAM in
prometheus)
	VERSION=3.15.0
	# Without the builtinassets tag: the web UI pages are not embedded, the API works.
	CMDS="prometheus=github.com/prometheus/prometheus/cmd/prometheus promtool=github.com/prometheus/prometheus/cmd/promtool"
	VERSION_PKG=github.com/prometheus/common/version
	;;
alertmanager)
	VERSION=0.34.1
	CMDS="alertmanager=github.com/prometheus/alertmanager/cmd/alertmanager amtool=github.com/prometheus/alertmanager/cmd/amtool"
	VERSION_PKG=github.com/prometheus/common/version
	# The web UI is built by npm and is not in the module zip, but ui/web.go embeds app/dist:
	# PATCH gives that directory one placeholder page. The API, /-/ready, /-/reload and
	# /metrics are unaffected; the UI pages are not there.
	PATCH="github.com/prometheus/alertmanager v$VERSION ui/app/dist/index.html=alertmanager/ui-not-built.html"
	;;
node-exporter)
	VERSION=1.12.1
	CMDS="node_exporter=github.com/prometheus/node_exporter"
	VERSION_PKG=github.com/prometheus/common/version
	;;
loki)
	VERSION=3.7.8
	# noasm: without it the link needs an Arrow AVX2 assembly object the module zip lacks.
	CMDS="loki=github.com/grafana/loki/v3/cmd/loki"
	TAGS="netgo noasm"
	VERSION_PKG=github.com/grafana/loki/v3/pkg/util/build
	;;
*) die "unknown program '$PROGRAM'" ;;
esac

MODDIR="$HERE/$PROGRAM"
[[ -f $MODDIR/go.mod && -f $MODDIR/go.sum ]] || die "$MODDIR/go.mod or go.sum is missing"
KEY=$({
	echo "$PROGRAM $VERSION $CMDS $TAGS $CGO $MODFLAG"
	cat "$MODDIR/go.mod" "$MODDIR/go.sum" "${BASH_SOURCE[0]}"
	echo "${PATCH:-}"
	for f in ${PATCH:-}; do if [[ $f == *=* ]]; then cat "$HERE/${f#*=}"; fi; done
	"$GO" version
} | sha256sum | cut -c1-16)
OUT="$CACHE/go/bin/$PROGRAM-$VERSION-$KEY"
if [[ -f $OUT/.complete ]]; then
	say "$PROGRAM $VERSION: cached in $OUT"
	echo "$OUT"
	exit 0
fi

mkdir -p "$CACHE/go/bin"
TMP=$(mktemp -d "$CACHE/go/bin/.$PROGRAM.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LDFLAGS="-s -w"
if [[ -n ${VERSION_PKG:-} ]]; then
	LDFLAGS+=" -X $VERSION_PKG.Version=$VERSION -X $VERSION_PKG.Revision=v$VERSION"
	LDFLAGS+=" -X $VERSION_PKG.Branch=HEAD -X $VERSION_PKG.BuildUser=monctl-test"
	LDFLAGS+=" -X $VERSION_PKG.BuildDate=19700101-00:00:00"
fi
# PATCH "MODULE VERSION FILE=OURS": a file the module zip lacks (generated upstream by a
# front-end build) is added to a copy of the module, which a go.mod of this build only (the
# committed one plus a replace line) points at. The module cache stays as downloaded
# (`go build -overlay` may not touch it).
BUILDFLAGS=()
if [[ -n ${PATCH:-} ]]; then
	read -r pmod pver pfiles <<<"$PATCH"
	pdir=$(cd "$MODDIR" && "$GO" mod download -json "$pmod@$pver" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[[ -d $pdir ]] || die "cannot download $pmod@$pver"
	mkdir -p "$TMP/src" "$TMP/mod"
	cp -a "$pdir/." "$TMP/src/"
	chmod -R u+w "$TMP/src"
	for f in $pfiles; do
		mkdir -p "$(dirname "$TMP/src/${f%%=*}")"
		cp "$HERE/${f#*=}" "$TMP/src/${f%%=*}"
	done
	cp "$MODDIR/go.mod" "$MODDIR/go.sum" "$TMP/mod/"
	printf '\nreplace %s => %s\n' "$pmod" "$TMP/src" >>"$TMP/mod/go.mod"
	BUILDFLAGS+=("-modfile=$TMP/mod/go.mod")
fi
START=$(date +%s)
for cmd in $CMDS; do
	name=${cmd%%=*} pkg=${cmd#*=}
	say "building $name $VERSION ($pkg) ..."
	(cd "$MODDIR" && CGO_ENABLED=$CGO nice -n 19 "$GO" build "$MODFLAG" -trimpath -tags "$TAGS" ${BUILDFLAGS[@]+"${BUILDFLAGS[@]}"} \
		-ldflags "$LDFLAGS" -o "$TMP/$name" "$pkg") || die "go build of $pkg failed"
done
rm -rf "$TMP/src" "$TMP/mod"
echo "$PROGRAM $VERSION built in $(($(date +%s) - START))s with $("$GO" version)" >"$TMP/.complete"
rm -rf "$OUT"
chmod 755 "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
# Older builds of this program and version (other inputs) are not used any more.
for old in "$CACHE/go/bin/$PROGRAM-$VERSION-"*; do
	[[ $old == "$OUT" ]] || rm -rf "$old"
done
say "$PROGRAM $VERSION: built in $(($(date +%s) - START))s -> $OUT"
echo "$OUT"
