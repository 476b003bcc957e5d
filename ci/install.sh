#!/usr/bin/env bash
# Installs what minikora needs to build and test, and only what is missing.
# One script for `make run`, `make test`, .ci/run and the Docker image, so they cannot drift.
# Idempotent: a second run installs nothing.  Usage: ci/install.sh [build|test|bench]
set -euo pipefail
mode=${1:-test}
cd "$(dirname "$0")/.."

# Build: what the modules link against (docs/DEPENDENCIES.md).  Test: the clients and tools the
# tests drive, and what the packaged helpers' tests need (a venv to pip-install clients/python into);
# Debian's docker.io and debootstrap for `make docker-test` (ci/docker-engine.sh starts the engine
# and builds the base image where they can run).
build_pkgs="make gcc pkg-config libuv1-dev libsqlite3-dev libzstd-dev liblz4-dev libsnappy-dev
  zlib1g-dev libssl-dev libncurses-dev libhttp-parser-dev libexpat1-dev libjansson-dev libcurl4-openssl-dev
  libs3-dev"
test_pkgs="clang libclang-rt-14-dev kcat python3 python3-confluent-kafka python3-kafka python3-pytest
  python3-prometheus-client python3-snappy python3-lz4 python3-zstandard
  librdkafka-dev nodejs npm tmux prometheus python3-venv python3-pip python3-setuptools
  awscli python3-boto3 s3cmd libs3-2 docker.io debootstrap"
# Bench: `make bench` (librdkafka's tool) and its curve's picture (BENCH_ONLY=curve, gnuplot).
bench_pkgs="librdkafka-dev gnuplot-nox"

want=$build_pkgs
[ "$mode" = test ] && want="$build_pkgs $test_pkgs"
[ "$mode" = bench ] && want="$build_pkgs $bench_pkgs"

missing=()
for p in $want; do
  # nodejs/npm may come from elsewhere (nvm, nodesource): a working binary is enough.
  case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ] && [ -f tests/js/package.json ] &&
   { [ ! -d tests/js/node_modules/kafkajs ] || [ ! -d tests/js/node_modules/testcontainers ]; }; then
  echo "install: npm packages for tests/js"
  (cd tests/js && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
exit 0
