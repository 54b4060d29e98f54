#!/bin/sh
# Runs in the builder stage of tests/images/loki-standin/Dockerfile (the Debian base,
# which has a shell) and lays out everything the distroless final stage COPYs:
#
#   /rootfs  python3 (the interpreter binary), its stdlib, the shared libraries the
#            interpreter and its extension modules link (found with ldd), the stand-in,
#            the static launcher as /usr/bin/loki, /etc/passwd + /etc/group, /tmp
#   /owned   trees the final stage copies with --chown=10001:10001 (/etc/loki, /loki)
#
# No shell, busybox or coreutils end up in /rootfs: like grafana/loki 3.x (distroless
# since 3.6), `docker exec <c> sh`, `rm`, `mv`, `chown` must not exist in the image.
set -eu
R=/rootfs
O=/owned
PY=$(readlink -f /usr/bin/python3)  # /usr/bin/python3.11
VER=$(basename "$PY")               # python3.11
STDLIB=/usr/lib/$VER

mkdir -p "$R/usr/bin" "$R/usr/lib" "$R/usr/share/standin" "$R/etc" "$R/tmp" "$O/etc-loki" "$O/loki"
chmod 1777 "$R/tmp"
cp "$PY" "$R/usr/bin/$VER"
ln -s "$VER" "$R/usr/bin/python3"
cp -a "$STDLIB" "$R/usr/lib/"

# Parts of the stdlib nothing here imports (tests, GUI, installers, the static libpython).
cd "$R$STDLIB"
rm -rf test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data __phello__ \
	config-3*-linux-gnu sitecustomize.py
rm -f lib-dynload/_test*.so lib-dynload/_ctypes_test*.so lib-dynload/_xxtestfuzz*.so \
	lib-dynload/xxlimited*.so
cd /

# The loader and every library the interpreter or an extension module links.
for f in "$R/usr/bin/$VER" "$R$STDLIB"/lib-dynload/*.so; do
	ldd "$f" || true
done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
	while read -r lib; do
		cp -L --parents "$lib" "$R/"
	done

install -m 0644 /build/standin.py "$R/usr/share/standin/standin.py"
install -m 0755 /build/loki-launcher "$R/usr/bin/loki"
# uid/gid 10001 as in the upstream image (addgroup -g 10001 loki; adduser -u 10001 loki).
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
	'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
	'loki:x:10001:10001:loki:/loki:/sbin/nologin' >"$R/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'loki:x:10001:' >"$R/etc/group"

install -m 0644 /build/local-config.yaml "$O/etc-loki/local-config.yaml"

# The interpreter must start from this tree alone (no /usr/lib/python3 dist-packages, no
# Debian sitecustomize): import what standin.py imports with only /rootfs visible.
chroot "$R" /usr/bin/python3 -c 'import argparse, base64, calendar, glob, hashlib, hmac
import http.client, http.server, json, os, re, secrets, signal, socket, sqlite3, threading
import time, urllib.parse, pathlib'
chroot "$R" /usr/bin/loki -version >/dev/null
