#!/usr/bin/env bash
# clients/test.sh -- the packaged helpers' own tests (a layer of `make test`, tests/run_all.sh):
#   python  clients/python installed as a user installs it (`pip install`, into a venv under
#           build/ that sees Debian's confluent-kafka, kafka-python and pytest), then its tests
#           run from that venv: the pytest11 entry point must register the fixtures by itself.
#   js      clients/js with kafkajs (from tests/js/node_modules) under `node --test`; it also runs
#           the GitHub Action's main and post scripts (action.yml) as the runner would.
#   c       the embedding API's example, clients/c/embed.c (`make embed-test`: libminikora.a
#           through build/minikora.pc, a librdkafka produce and consume, stop from two threads).
# python and js use ./minikora (MINIKORA_BIN); no network beyond localhost.  Exit 0 when all pass.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
export MINIKORA_BIN=${MINIKORA_BIN:-$PWD/minikora}
[ -x "$MINIKORA_BIN" ] || { echo "clients: $MINIKORA_BIN is missing (make minikora)"; exit 1; }
rc=0

echo "clients: python: venv and pip install ./clients/python"
venv=build/clients-venv
rm -rf "$venv" build/clients-python-build
if ! "$PYTHON" -m venv --system-site-packages "$venv" >/dev/null; then
  echo "clients: python: cannot make a venv ($PYTHON -m venv; Debian package python3-venv)"; exit 1
fi
# --no-build-isolation --no-index: build with the machine's setuptools, fetch nothing.
if ! "$venv/bin/python" -m pip install -q --no-build-isolation --no-index --no-deps ./clients/python; then
  echo "clients: python: pip install ./clients/python FAILED"; rc=1
else
  rm -rf clients/python/build clients/python/*.egg-info
  # -P: the current directory does not go on sys.path, so the installed package is the one tested.
  (cd clients/python && "../../$venv/bin/python" -P -m pytest -q tests) || rc=1
fi

echo "clients: js: node --test clients/js/test/"
if ! command -v node >/dev/null 2>&1 || [ ! -d tests/js/node_modules/kafkajs ]; then
  echo "clients: js: node or tests/js/node_modules/kafkajs missing (ci/install.sh test)"; rc=1
else
  (cd clients/js && node --test test/) || rc=1
fi
echo "clients: c: make embed-test (clients/c/embed.c with librdkafka)"
if ! pkg-config --exists rdkafka 2>/dev/null && [ ! -f /usr/include/librdkafka/rdkafka.h ]; then
  echo "clients: c: librdkafka-dev missing (ci/install.sh test)"; rc=1
else
  ${MAKE:-make} -s embed-test || rc=1
fi
exit $rc
