#!/bin/sh
# docker/entrypoint.sh -- the image's entry point (see docker/Dockerfile).
#
#   (no arguments) or `serve [flags]`
#       minikora serve made for a container: bind $MINIKORA_HOST (0.0.0.0), tell clients
#       $MINIKORA_ADVERTISE_HOST (localhost), admin API on $MINIKORA_ADMIN_PORT (8080), brokers
#       $MINIKORA_BROKERS (6) and, when set, $MINIKORA_ADVERTISE_PORTS (--advertise-ports: the
#       host ports the brokers are published on).  It writes the ready file
#       $MINIKORA_READY_FILE (/tmp/minikora-ready.json), which the HEALTHCHECK
#       (docker/healthcheck.sh) reads to find the admin port, so a `--admin-port` given after
#       `serve` is honoured.  Flags given after `serve` come last, so they win (e.g. `serve
#       --ephemeral --brokers 3`); a `--ready-file` of your own is linked to the one above.
#   anything else
#       minikora with exactly those arguments: `tui --admin URL`, `version`, `apis`, ...
#
# exec: minikora is PID 1 and gets docker stop's SIGTERM itself (clean shutdown).
set -e
if [ $# -eq 0 ] || [ "$1" = serve ]; then
    [ $# -gt 0 ] && shift
    ready=${MINIKORA_READY_FILE:-/tmp/minikora-ready.json}
    prev=
    for a in "$@"; do
        if [ "$prev" = --ready-file ] && [ "$a" != "$ready" ]; then
            rm -f "$ready"
            ln -s "$a" "$ready"   # the health check follows the user's ready file
        fi
        prev=$a
    done
    set -- --ready-file "$ready" "$@"
    [ -n "${MINIKORA_ADVERTISE_PORTS:-}" ] && set -- --advertise-ports "$MINIKORA_ADVERTISE_PORTS" "$@"
    [ -n "${MINIKORA_BROKERS:-}" ] && set -- --brokers "$MINIKORA_BROKERS" "$@"
    exec minikora serve \
        --host "${MINIKORA_HOST:-0.0.0.0}" \
        --advertise-host "${MINIKORA_ADVERTISE_HOST:-localhost}" \
        --admin-port "${MINIKORA_ADMIN_PORT:-8080}" \
        "$@"
fi
exec minikora "$@"
