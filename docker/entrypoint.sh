#!/bin/sh
# docker/entrypoint.sh -- the image's entry point (see docker/Dockerfile).
#
#   (no arguments) or `serve [flags]`
#       minikora serve made for a container: bind $MINIKORA_HOST (0.0.0.0), tell clients
#       $MINIKORA_ADVERTISE_HOST (localhost), admin API on $MINIKORA_ADMIN_PORT (8080).  Flags
#       given after `serve` come last, so they win (e.g. `serve --ephemeral --brokers 3`).
#   anything else
#       minikora with exactly those arguments: `tui --admin URL`, `version`, `apis`, ...
#
# exec: minikora is PID 1 and gets docker stop's SIGTERM itself (clean shutdown).
set -e
if [ $# -eq 0 ] || [ "$1" = serve ]; then
    [ $# -gt 0 ] && shift
    exec minikora serve \
        --host "${MINIKORA_HOST:-0.0.0.0}" \
        --advertise-host "${MINIKORA_ADVERTISE_HOST:-localhost}" \
        --admin-port "${MINIKORA_ADMIN_PORT:-8080}" \
        "$@"
fi
exec minikora "$@"
