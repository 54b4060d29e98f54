#!/bin/sh
# Alertmanager entrypoint: turn secrets from the environment into files.
#
# Alertmanager never expands ${VAR} in alertmanager.yml, so secrets cannot be
# written there as placeholders. Compose passes them as environment variables;
# this script writes each one to its own file on a tmpfs (never on disk, never
# in the config volume) and alertmanager.yml reads them through its *_file
# settings (api_url_file, routing_key_file, auth_password_file).
#
# On Docker Swarm (`monctl --runtime swarm`) the secrets arrive as Swarm secrets,
# files under /run/secrets, not as environment variables: a secret file that exists
# is copied instead (docker-compose.swarm.yml).
#
# Then it execs the real binary with the arguments given as the compose
# `command:` (so Alertmanager runs as PID 1 and receives signals directly).
#
# Overridable for tests (the defaults are what the container uses):
#   ALERTMANAGER_SECRETS_DIR  where the secret files go (a tmpfs in compose)
#   ALERTMANAGER_BIN          the binary to exec
#   SWARM_SECRETS_DIR         where Swarm puts its secrets
set -eu

secrets_dir="${ALERTMANAGER_SECRETS_DIR:-/run/alertmanager-secrets}"
binary="${ALERTMANAGER_BIN:-/bin/alertmanager}"
swarm_dir="${SWARM_SECRETS_DIR:-/run/secrets}"

umask 077
mkdir -p "$secrets_dir"

# write_secret FILE VALUE VARIABLE: the file always exists (Alertmanager
# reads it when it sends); an empty value only earns a warning, so the stack
# still starts before the operator has filled in .env.
write_secret() {
    if [ -r "$swarm_dir/$1" ]; then
        cat "$swarm_dir/$1" > "$secrets_dir/$1"
        chmod 600 "$secrets_dir/$1"
        return 0
    fi
    printf '%s' "$2" > "$secrets_dir/$1"
    chmod 600 "$secrets_dir/$1"
    if [ -z "$2" ]; then
        echo "entrypoint: warning: $3 is empty; notifications that need it will fail (set it in .env)" >&2
    fi
}

write_secret slack_webhook_url "${SLACK_WEBHOOK_URL:-}" SLACK_WEBHOOK_URL
write_secret pagerduty_routing_key "${PAGERDUTY_ROUTING_KEY:-}" PAGERDUTY_ROUTING_KEY
write_secret smtp_password "${SMTP_PASSWORD:-}" SMTP_PASSWORD

# The secrets now live in files only: keep them out of Alertmanager's
# environment (and so out of /proc/<pid>/environ and crash dumps).
unset SLACK_WEBHOOK_URL PAGERDUTY_ROUTING_KEY SMTP_PASSWORD

exec "$binary" "$@"
