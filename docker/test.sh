#!/usr/bin/env bash
# docker/test.sh -- the body of `make docker-test` (a layer of `make test`): build the image,
# run it, and smoke-test it from the host with kcat (metadata of all 6 brokers, a produce and a
# consume) and curl (the admin API); then the Testcontainers test (docker/testcontainers.test.js:
# random host ports, the advertised mapping, a kafkajs round trip).
# ci/docker-engine.sh first makes an engine available where one can run (it starts dockerd as
# root) and builds the base image from the Debian archive when it is missing.  Where no engine
# can run it says why and exits 0: the test is skipped, not failed; the reason is also written to
# build/test-logs/docker-skip for the summary of `make test`.
#
# The container serves on host ports BASE..BASE+5 (DOCKER_TEST_PORT, default 29092) mapped
# one to one, so that the advertised addresses work from the host without touching 9092-9097;
# the admin port is published on a free host port.  Every wait is bounded.
# Exit status: 0 on pass or skip, 1 on failure.  Knobs: IMAGE, DOCKER_TEST_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/test-logs
rm -f build/test-logs/docker-skip

skip() {
  echo "docker-test: skipped ($*)"
  echo "$*" > build/test-logs/docker-skip
  exit 0
}
rc=0
out=$(ci/docker-engine.sh 2>&1) || rc=$?
echo "$out"
case $rc in
  0) ;;
  3) skip "$(echo "$out" | sed -n 's/^docker-engine: skip: //p' | tail -n 1)" ;;
  *) echo "docker-test: FAIL: ci/docker-engine.sh exit $rc"; exit 1 ;;
esac
for tool in kcat curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "docker-test: FAIL: $tool is missing (ci/install.sh test)"; exit 1; }
done

IMAGE=${IMAGE:-minikora:test}
base=${DOCKER_TEST_PORT:-29092}
last=$((base + 5))
name="minikora-docker-test-$$"
fail() { echo "docker-test: FAIL: $*"; docker logs --tail 50 "$name" 2>&1 | sed 's/^/  container: /' || true; exit 1; }
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT

echo "docker-test: building $IMAGE"
# --network host: the build's apt-get needs no NAT from the engine (ci/docker-engine.sh starts it
# without iptables rules).
docker build --network host -f docker/Dockerfile -t "$IMAGE" .

echo "docker-test: starting $name (brokers on 127.0.0.1:$base-$last)"
token="docker-test-$$-$RANDOM$RANDOM"
docker run -d --name "$name" \
  -e MINIKORA_ADVERTISE_HOST=127.0.0.1 -e MINIKORA_ADMIN_TOKEN="$token" \
  -p "127.0.0.1:$base-$last:$base-$last" -p "127.0.0.1::8080" \
  "$IMAGE" serve --ephemeral --port "$base" >/dev/null

# Healthy = the image's HEALTHCHECK (/readyz) passed.
deadline=$((SECONDS + 120))
while :; do
  state=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$name")
  case $state in
    "running healthy") break ;;
    running*) ;;
    *) fail "container is $state" ;;
  esac
  [ $SECONDS -lt $deadline ] || fail "not healthy within 120 s ($state)"
  sleep 1
done

boot="127.0.0.1:$base"
meta=$(timeout 30 kcat -b "$boot" -L -m 10) || fail "kcat -L failed"
echo "$meta" | sed -n '1,8p'
brokers=$(echo "$meta" | grep -c '^  broker ' || true)
[ "$brokers" -eq 6 ] || fail "kcat -L saw $brokers brokers, expected 6"
echo "$meta" | grep -q "at 127.0.0.1:$last" || fail "broker 6 not advertised as 127.0.0.1:$last"

admin="http://$(docker port "$name" 8080/tcp | head -n 1)"
curl -fsS "$admin/readyz" >/dev/null || fail "GET $admin/readyz"
curl -fsS "$admin/v1/cluster" | grep -q '"brokers_running":6' || fail "GET /v1/cluster: not 6 brokers running"
# Acting routes need the token (MINIKORA_ADMIN_TOKEN above): 401 without it, 200 with it.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$admin/v1/reset")
[ "$code" = 401 ] || fail "POST /v1/reset without the admin token answered $code, expected 401"
curl -fsS -X POST -H "Authorization: Bearer $token" "$admin/v1/reset" >/dev/null || fail "POST /v1/reset with the token"

msg="hello from docker-test $$"
echo "$msg" | timeout 30 kcat -b "$boot" -P -t docker-smoke -m 10 || fail "kcat produce"
got=$(timeout 30 kcat -b "$boot" -C -t docker-smoke -o beginning -c 1 -e -q -m 10) || fail "kcat consume"
[ "$got" = "$msg" ] || fail "consumed '$got', expected '$msg'"

docker stop -t 10 "$name" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after docker stop (expected 0)"

# Testcontainers for Node.js: the README's recipe, with random host ports.
if ! command -v node >/dev/null 2>&1 || [ ! -d tests/js/node_modules/testcontainers ]; then
  echo "docker-test: FAIL: node or tests/js/node_modules/testcontainers missing (ci/install.sh test)"
  exit 1
fi
echo "docker-test: Testcontainers (node --test docker/testcontainers.test.js)"
IMAGE="$IMAGE" timeout 240 node --test docker/testcontainers.test.js || { echo "docker-test: FAIL: Testcontainers test"; exit 1; }
# Images the rebuild left untagged (the previous $IMAGE) take disk space and nothing else.
docker image prune -f >/dev/null 2>&1 || true
echo "docker-test: PASS (image $IMAGE: 6 brokers, produce/consume, admin API and its token, clean stop;"
echo "  Testcontainers: random host ports, PUT /v1/advertised, kafkajs round trip)"
