#!/bin/sh
# Container healthcheck of Prometheus and Alertmanager, which answer only to the
# stack's credentials: GET http://127.0.0.1:PORT/PATH with basic auth, healthy on 200.
#
#   sh /etc/monitoring-auth/probe.sh PORT PATH
#
# The password is read from its secret file and reaches the request through the
# shell's printf builtin and a pipe: it never appears in a command line (ps), the
# healthcheck's definition or its log (`docker inspect`). Needs busybox's base64
# and nc, as in the upstream images.
set -eu
port="$1"
path="$2"
password_file="${MONITORING_AUTH_PASSWORD_FILE:-/run/secrets/monitoring_auth_password}"
token="$(printf 'monctl:%s' "$(cat "$password_file")" | base64 | tr -d '\n')"
status="$(printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n\r\n' \
    "$path" "$token" | nc 127.0.0.1 "$port" | head -n 1)"
case "$status" in
    "HTTP/1."?" 200 "*) exit 0 ;;
    *) echo "probe: ${status:-no answer}" >&2; exit 1 ;;
esac
