#!/usr/bin/env bash
# ci/docker-engine.sh -- make a Docker engine and the base image available for `make docker-test`,
# where that is possible, and say why not where it is not.
#
#   1. An engine: `docker info` answers, or (as root, with Debian's docker.io installed: ci/install.sh
#      test) dockerd is started in the background, its log and pid under build/docker/.  It runs
#      with --iptables=false: on a shared machine it must not rewrite the host's firewall (Docker's
#      own rules set the FORWARD policy to DROP).  Published ports still work (docker-proxy), and
#      image builds use the host's network (docker build --network host), so no NAT is needed.
#   2. The base image debian:bookworm-slim: when it is missing and the registry cannot give it, it
#      is built from the Debian archive -- `debootstrap --variant=minbase bookworm` from the mirror
#      of this machine's apt sources (never a hard-coded host), then `docker import`.
#
# Exit status: 0 ready; 3 skip (no engine can run here: the reason is the last line on stdout);
# 1 failure (an engine that ran but could not be used).  Every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/.."
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
STATE=$PWD/build/docker
mkdir -p "$STATE"

skip() { echo "docker-engine: skip: $*"; exit 3; }

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
  skip "no docker command (Debian package docker.io: ci/install.sh test)"
fi
if ! engine_up; then
  [ "$(id -u)" -eq 0 ] || skip "no Docker engine reachable and not root (cannot start dockerd)"
  command -v dockerd >/dev/null 2>&1 || skip "no Docker engine reachable and no dockerd (Debian package docker.io)"
  if [ -f "$STATE/dockerd.pid" ] && kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null; then
    echo "docker-engine: dockerd (pid $(cat "$STATE/dockerd.pid")) is starting"
  else
    echo "docker-engine: starting dockerd (log $STATE/dockerd.log)"
    # setsid: the daemon outlives this script and the test run (later runs reuse it).
    setsid dockerd --iptables=false --ip-masq=false --pidfile "$STATE/dockerd.pid" \
      >"$STATE/dockerd.log" 2>&1 < /dev/null &
  fi
  for _ in $(seq 60); do
    engine_up && break
    sleep 0.5  # bounded: 30 s
  done
  if ! engine_up; then
    echo "docker-engine: dockerd did not answer within 30 s; last lines of its log:"
    tail -n 15 "$STATE/dockerd.log" 2>/dev/null | sed 's/^/  /'
    skip "dockerd cannot run on this machine (see $STATE/dockerd.log)"
  fi
fi
echo "docker-engine: engine ready ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "docker-engine: $BASE_IMAGE present"
  exit 0
fi
echo "docker-engine: $BASE_IMAGE missing; trying the registry (20 s)"
if timeout 20 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || skip "$BASE_IMAGE missing, the registry unreachable, and no debootstrap to build it"
[ "$(id -u)" -eq 0 ] || skip "$BASE_IMAGE missing and debootstrap needs root"

# The mirror: the first Debian archive (not -security) of the apt sources, deb822 or one-line.
mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}';
           cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) {print $i; break}}') |
          grep -v -- '-security' | head -n 1)
[ -n "$mirror" ] || skip "$BASE_IMAGE missing and no Debian mirror in the apt sources"
root="$STATE/rootfs"
rm -rf "$root"
echo "docker-engine: debootstrap --variant=minbase bookworm from $mirror"
t0=$SECONDS
if ! timeout 400 debootstrap --variant=minbase bookworm "$root" "$mirror" >"$STATE/debootstrap.log" 2>&1; then
  tail -n 15 "$STATE/debootstrap.log" | sed 's/^/  /'
  rm -rf "$root"
  echo "docker-engine: FAIL: debootstrap failed (log $STATE/debootstrap.log)"
  exit 1
fi
# What -slim images leave out: apt caches and package lists.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
if ! tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null; then
  rm -rf "$root"
  echo "docker-engine: FAIL: docker import of the debootstrapped tree"
  exit 1
fi
rm -rf "$root"
echo "docker-engine: built $BASE_IMAGE from $mirror in $((SECONDS - t0)) s"
exit 0
