#!/usr/bin/env bash
# Build the images monctl's end-to-end tests run (nothing can be pulled on the CI machine).
#
#   monctl-test/base:local               Debian root (debootstrap minbase + python3 + busybox-static)
#   monctl-test/busybox:local            a static busybox alone (like quay.io/prometheus/busybox)
#   monctl-test/prometheus:v3.15.0       the pinned upstream releases, built from their Go modules
#   monctl-test/alertmanager:v0.34.1     by go/build-go.sh (cached by version under $CACHE/go),
#   monctl-test/node-exporter:v1.12.1    laid out like upstream's images (go/*/Dockerfile)
#   monctl-test/loki:v3.7.8              (distroless like upstream's: no shell)
#   monctl-test/prometheus:local         Debian's real prometheus + promtool
#   monctl-test/alertmanager:local       Debian's real prometheus-alertmanager + amtool
#   monctl-test/node-exporter:local      Debian's real prometheus-node-exporter
#   monctl-test/postgres-exporter:local  Debian's real prometheus-postgres-exporter
#   monctl-test/socat:local              Debian's real socat (the Swarm runtime's loopback gateway)
#   monctl-test/{grafana,loki,promtail,cadvisor}-standin:local
#                                        STAND-INS: tests/images/standin/standin.py, not the real programs
#                                        (what each answers, and from which upstream code:
#                                        standin/UPSTREAM.md). The Loki one is distroless like
#                                        upstream: no shell; its /usr/bin/loki is a static C
#                                        launcher (loki-standin/launcher.c) compiled here.
#
# Idempotent: every image carries a label with the hash of its inputs (Dockerfile, files,
# binaries, base image) and is rebuilt only when that hash changed. The debootstrap result is
# cached under $MONCTL_TEST_CACHE (default /var/cache/monctl-test), keyed by suite + packages.
# Needs root (debootstrap), a Docker engine, debootstrap, the four Debian prometheus packages,
# Go 1.26.5+ (the Go module proxy for a cold build) and gcc with a static libc (libc6-dev)
# for the Loki stand-in's launcher.
# `--force` rebuilds everything (the debootstrap cache is kept).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${MONCTL_TEST_CACHE:-/var/cache/monctl-test}
BASE_IMAGE=monctl-test/base:local
BUSYBOX_IMAGE=monctl-test/busybox:local
BASE_PACKAGES="python3 busybox-static"
LABEL=org.monctl.test.inputs
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1
export DOCKER_BUILDKIT=0 # the legacy builder: no buildx plugin here

# The base must be the host's Debian release: the copied binaries link against its libc.
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

say() { printf '[build.sh] %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

for tool in docker sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running?)"

mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock" # one build at a time on this machine
flock 9

WORK=$(mktemp -d "${TMPDIR:-/tmp}/monctl-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The Debian mirror apt on this host uses (first non-security URI serving $SUITE), so
# debootstrap goes where this machine is allowed to go.
debian_mirror() {
	[[ -n ${MONCTL_TEST_MIRROR:-} ]] && { echo "$MONCTL_TEST_MIRROR"; return; }
	python3 - "$SUITE" <<'EOF'
import glob, re, sys
suite = sys.argv[1]
found = []
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for block in re.split(r"\n\s*\n", text):
            f = {}
            for line in block.splitlines():
                m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
                if m:
                    f[m.group(1).lower()] = m.group(2).split()
            if suite in f.get("suites", []) and "deb" in f.get("types", []):
                found += f.get("uris", [])
    else:
        for line in text.splitlines():
            m = re.match(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == suite:
                found.append(m.group(1))
found = [u for u in found if "security" not in u]
print(found[0] if found else "http://deb.debian.org/debian")
EOF
}

# Runs inside the fresh root: busybox supplies whatever the root lacks (wget above all),
# then the root is slimmed. Part of the base image's input hash.
base_postprocess() {
	local root=$1 applet
	for applet in $(chroot "$root" /bin/busybox --list); do
		case $applet in busybox | linuxrc | init | halt | poweroff | reboot) continue ;; esac
		if ! chroot "$root" /bin/sh -c "command -v $applet" >/dev/null 2>&1; then
			ln -s /bin/busybox "$root/usr/bin/$applet"
		fi
	done
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
		"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
		"$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
	: >"$root/etc/machine-id"
}

hash_text() { sha256sum | cut -c1-64; }

# Hash of a directory's files (names + contents) plus any extra words.
hash_dir() {
	local dir=$1
	shift
	{
		printf '%s\n' "$@"
		(cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
		(cd "$dir" && find . -printf '%p %m\n' | LC_ALL=C sort)
	} | hash_text
}

image_label() {
	docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

build_base() {
	local key tarball mirror root
	key=$({
		echo "$SUITE minbase $BASE_PACKAGES"
		declare -f base_postprocess
	} | hash_text)
	BASE_HASH=$key
	if [[ $FORCE == 0 && $(image_label "$BASE_IMAGE") == "$key" ]]; then
		say "$BASE_IMAGE is up to date"
		return
	fi
	tarball="$CACHE/base-$SUITE-${key:0:16}.tar.zst"
	if [[ ! -s $tarball ]]; then
		command -v debootstrap >/dev/null || die "debootstrap is not installed"
		command -v zstd >/dev/null || die "zstd is not installed"
		mirror=$(debian_mirror)
		root="$WORK/root"
		say "debootstrap $SUITE from $mirror (packages: $BASE_PACKAGES) ..."
		debootstrap --variant=minbase --include="${BASE_PACKAGES// /,}" \
			"$SUITE" "$root" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
			tail -n 30 "$WORK/debootstrap.log" >&2
			die "debootstrap failed"
		}
		chroot "$root" python3 -c 'import sqlite3, http.server' ||
			die "python3 in the base root lacks sqlite3/http.server"
		base_postprocess "$root"
		tar --numeric-owner -C "$root" -c . | zstd -q -T0 -3 -o "$tarball.tmp"
		mv "$tarball.tmp" "$tarball"
		rm -rf "$root"
	else
		say "using cached root $tarball"
	fi
	say "importing $BASE_IMAGE"
	zstd -q -dc "$tarball" | docker import \
		--change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		--change "ENV LANG=C.UTF-8" \
		--change 'CMD ["/bin/sh"]' \
		--change "LABEL $LABEL=$key" \
		--change "LABEL org.opencontainers.image.title=\"monctl test base ($SUITE minbase + $BASE_PACKAGES)\"" \
		- "$BASE_IMAGE" >/dev/null
}

# build_image NAME VERSION STANDIN STAGE_FUNCTION [TAG [SOURCE_DIR]]
# The build context is SOURCE_DIR (default $HERE/NAME) plus what STAGE_FUNCTION adds; both base
# images are passed as build arguments and their hashes are part of the input hash.
build_image() {
	local name=$1 version=$2 standin=$3 stage=$4 tag=${5:-monctl-test/$1:local} src=${6:-$HERE/$1}
	local ctx key title extra=()
	ctx="$WORK/${tag//[:\/]/_}"
	mkdir -p "$ctx"
	cp -a "$src/." "$ctx/"
	"$stage" "$ctx"
	grep -q BUSYBOX_IMAGE "$ctx/Dockerfile" && extra+=("busybox=$BUSYBOX_HASH")
	key=$(hash_dir "$ctx" "base=$BASE_HASH" "version=$version" "standin=$standin" ${extra[@]+"${extra[@]}"})
	if [[ $FORCE == 0 && $(image_label "$tag") == "$key" ]]; then
		say "$tag is up to date"
		return
	fi
	title="monctl test image: $name"
	[[ $standin == true ]] && title="monctl test STAND-IN (not the real program): $name"
	say "building $tag"
	docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "BUSYBOX_IMAGE=$BUSYBOX_IMAGE" \
		--label "$LABEL=$key" \
		--label "org.monctl.test.standin=$standin" \
		--label "org.opencontainers.image.title=$title" \
		--label "org.opencontainers.image.version=$version" \
		-t "$tag" "$ctx" >"$ctx.build.log" 2>&1 || {
		cat "$ctx.build.log" >&2
		die "docker build of $tag failed"
	}
}

need() { [[ -x $1 ]] || die "$1 is missing (apt-get install $2)"; }
deb_version() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null | sed -e 's/^[0-9]*://' -e 's/[+~-].*//'; }

stage_prometheus() {
	need /usr/bin/prometheus prometheus
	cp /usr/bin/prometheus /usr/bin/promtool "$1/"
	mkdir -p "$1/web"
	[[ -d /usr/share/prometheus/web ]] && cp -a /usr/share/prometheus/web/. "$1/web/"
	return 0
}
stage_alertmanager() {
	need /usr/bin/prometheus-alertmanager prometheus-alertmanager
	cp /usr/bin/prometheus-alertmanager "$1/alertmanager"
	cp /usr/bin/amtool "$1/"
	mkdir -p "$1/share"
	[[ -d /usr/share/prometheus/alertmanager ]] &&
		cp -a /usr/share/prometheus/alertmanager/. "$1/share/"
	return 0
}
stage_node_exporter() {
	need /usr/bin/prometheus-node-exporter prometheus-node-exporter
	cp /usr/bin/prometheus-node-exporter "$1/node_exporter"
}
stage_postgres_exporter() {
	need /usr/bin/prometheus-postgres-exporter prometheus-postgres-exporter
	cp /usr/bin/prometheus-postgres-exporter "$1/postgres_exporter"
}
# socat links a dozen libraries (libssl, libwrap, kerberos ...): the ones the base lacks
# are copied beside it, found with ldd.
stage_socat() {
	need /usr/bin/socat socat
	cp /usr/bin/socat "$1/"
	mkdir -p "$1/lib"
	ldd /usr/bin/socat | awk '$3 ~ /^\// {print $3}' | while read -r lib; do
		cp -L "$lib" "$1/lib/"
	done
}
stage_standin() { cp "$HERE/standin/standin.py" "$1/"; }
# The Loki image has no shell, so its entrypoint cannot be a script: a static launcher,
# built from the (hashed) source; gcc's output for it is reproducible, so the input hash
# stays stable and the image is not rebuilt needlessly.
stage_loki_standin() {
	stage_standin "$1"
	command -v gcc >/dev/null || die "gcc is not installed (apt-get install gcc libc6-dev)"
	gcc -static -O2 -s -Wall -Wextra -Werror -o "$1/loki-launcher" "$1/launcher.c" ||
		die "cannot build the static Loki launcher (is libc6-dev installed?)"
}

# The pinned upstream programs, built from their Go modules (go/build-go.sh: cached by version
# under $CACHE/go, reused when the inputs are the same); their images are tagged with the
# upstream version, beside the Debian ones.
stage_busybox() {
	mkdir -p "$1/etc/ssl/certs"
	# The CA bundle, as upstream's busybox images carry one (Alertmanager's receivers use TLS).
	[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"
	return 0
}
# go_binaries PROGRAM: the directory of its built (or cached) binaries.
go_binaries() { bash "$HERE/go/build-go.sh" "$1" | tail -n 1; }
stage_go() {
	local program=$1 ctx=$2 dir
	dir=$(go_binaries "$program") || die "building $program from its Go module failed"
	cp -a "$dir/." "$ctx/"
	rm -f "$ctx/.complete"
	# The binaries on the host too (promtool, amtool ... for the tests that run them there):
	# tests/conftest.py puts $CACHE/go/path first on PATH.
	mkdir -p "$CACHE/go/path"
	local bin
	for bin in "$dir"/*; do ln -sfn "$bin" "$CACHE/go/path/$(basename "$bin")"; done
}
stage_go_prometheus() { stage_go prometheus "$1"; }
stage_go_alertmanager() { stage_go alertmanager "$1"; }
stage_go_node_exporter() { stage_go node-exporter "$1"; }
# Loki's root has no shell to create directories with: they are staged here (git keeps no
# empty directory), /tmp with its sticky mode, as in distroless.
stage_go_loki() {
	stage_go loki "$1"
	mkdir -p "$1/rootfs/loki" "$1/rootfs/tmp" "$1/rootfs/etc/ssl/certs"
	chmod 1777 "$1/rootfs/tmp"
	[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$1/rootfs/etc/ssl/certs/"
	return 0
}
build_go_image() {
	local program=$1 version=$2 stage=$3
	build_image "$program" "$version" false "$stage" "monctl-test/$program:v$version" "$HERE/go/$program"
}

START=$(date +%s)
build_base
build_image busybox "$(deb_version busybox-static)" false stage_busybox
BUSYBOX_HASH=$(image_label "$BUSYBOX_IMAGE")
build_go_image prometheus 3.15.0 stage_go_prometheus
build_go_image alertmanager 0.34.1 stage_go_alertmanager
build_go_image node-exporter 1.12.1 stage_go_node_exporter
build_go_image loki 3.7.8 stage_go_loki
build_image prometheus "$(deb_version prometheus)" false stage_prometheus
build_image alertmanager "$(deb_version prometheus-alertmanager)" false stage_alertmanager
build_image node-exporter "$(deb_version prometheus-node-exporter)" false stage_node_exporter
build_image postgres-exporter "$(deb_version prometheus-postgres-exporter)" false stage_postgres_exporter
build_image socat "$(deb_version socat)" false stage_socat
STANDIN_VERSION=$(sed -n 's/^STANDIN_VERSION = os.environ.get("STANDIN_VERSION", "\(.*\)")$/\1/p' \
	"$HERE/standin/standin.py")
for role in grafana loki promtail cadvisor; do
	stage=stage_standin
	[[ $role == loki ]] && stage=stage_loki_standin
	build_image "$role-standin" "${STANDIN_VERSION:-standin}" true "$stage"
done
say "test images ready in $(($(date +%s) - START))s (image names: $HERE/images.env)"
