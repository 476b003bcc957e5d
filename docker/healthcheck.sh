#!/bin/sh
# docker/healthcheck.sh -- the image's HEALTHCHECK: healthy once minikora's ready file exists
# and its admin API answers /readyz.  The admin port is read from the ready file that
# docker/entrypoint.sh has minikora write ($MINIKORA_READY_FILE), so it is the port minikora
# really serves, whatever `--admin-port` was given; without an admin API (--admin-port -1)
# the ready file alone means ready.  Exit 0 healthy, 1 not (yet).
f=${MINIKORA_READY_FILE:-/tmp/minikora-ready.json}
[ -s "$f" ] || exit 1
if grep -q '"admin": null' "$f"; then
    exit 0
fi
port=$(sed -n 's/.*"admin": "http:\/\/[^"]*:\([0-9][0-9]*\)".*/\1/p' "$f")
[ -n "$port" ] || exit 1
exec curl -fsS --max-time 2 "http://127.0.0.1:$port/readyz" >/dev/null
