#!/usr/bin/env bash
# The body of `make test` (ci/install.sh has already run).  Layers, in order:
#   unit   make WERROR=1 minikora unit
#   asan   make asan                  (unit tests under ASan+UBSan)
#   fuzz   make fuzz, then every build-fuzz/bin/* for ~FUZZ_SECONDS in total (-max_total_time),
#          seeded from testdata/ (copied: libFuzzer writes new inputs into its corpus dir)
#   compat make check-compat
#   asan-integ  bad-input and round-trip integration tests against build-asan/minikora
#   integ  /usr/bin/python3 -m pytest -q tests   (needs ./minikora; skipped if it did not build)
#   clients  clients/test.sh: the pytest plugin (pip-installed into a venv) and the npm package
#          with kafkajs, each with its own tests; also the GitHub Action's scripts (needs ./minikora);
#          and the embedding API's example clients/c/embed.c (make embed-test, librdkafka)
#   docker make docker-test: the image built and smoke-tested, and the Testcontainers test, where a
#          Docker engine can run (ci/docker-engine.sh starts one as root); else "docker skipped
#          (reason)", which does not fail the run.  Its time limit is DOCKER_SECONDS (600); it is
#          skipped (with that reason) when it could end past RUN_BUDGET_SECONDS (1440) of the run.
# Every layer runs even if an earlier one failed (except integ without a binary), each under a
# time limit, so the whole run stays well under 30 minutes on 2 cores.  The last line is the one
# summary:  make test: PASS (unit ok, asan ok, fuzz ok, compat ok, ..., integration 42 passed, clients ok)
# Exit status: 0 on PASS, 1 on FAIL.
#
# Knobs (environment): MAKE, PYTHON, FUZZ_SECONDS (20), PYTEST_ARGS (extra pytest args),
# SKIP_LAYERS (space-separated subset of "unit asan fuzz compat asan-integ integ clients docker", for
# local use only), DOCKER_SECONDS, INTEG_SECONDS (1080), RUN_BUDGET_SECONDS.
set -uo pipefail
SELF="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$SELF")/.."

MAKE=${MAKE:-make}
PYTHON=${PYTHON:-/usr/bin/python3}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
JOBS=$(nproc 2>/dev/null || echo 2)
SKIP_LAYERS=${SKIP_LAYERS:-}
INTEG_SECONDS=${INTEG_SECONDS:-1080}
RUN_BUDGET_SECONDS=${RUN_BUDGET_SECONDS:-1440}   # CI allows 30 minutes for install and run together
LOGDIR=build/test-logs
mkdir -p "$LOGDIR"

declare -A status
failed=0

banner() { printf '\n===== %s =====\n' "$*"; }
skipped() { case " $SKIP_LAYERS " in *" $1 "*) return 0 ;; esac; return 1; }

# run_layer NAME LIMIT_SECONDS CMD...: runs CMD under `timeout`, records ok / FAILED / TIMEOUT.
run_layer() {
  local name=$1 limit=$2
  shift 2
  if skipped "$name"; then status[$name]="skipped"; return 0; fi
  banner "$name: $*"
  local t0=$SECONDS rc=0
  timeout --kill-after=30 "$limit" "$@" || rc=$?
  if [ $rc -eq 0 ]; then
    status[$name]="ok"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    status[$name]="TIMEOUT after ${limit}s"; failed=1
  else
    status[$name]="FAILED (exit $rc)"; failed=1
  fi
  echo "----- $name: ${status[$name]} in $((SECONDS - t0))s"
  return $rc
}

# ---------------------------------------------------------------------------------------------
fuzz_run() {
  "$MAKE" -j"$JOBS" fuzz || return 1
  shopt -s nullglob
  local bins=(build-fuzz/bin/*) b n base per rc=0 d s
  if [ ${#bins[@]} -eq 0 ]; then echo "fuzz: no fuzzers built"; return 0; fi
  per=$(( FUZZ_SECONDS / ${#bins[@]} )); [ "$per" -lt 2 ] && per=2
  mkdir -p build-fuzz/artifacts
  for b in "${bins[@]}"; do
    [ -x "$b" ] || continue
    n=$(basename "$b"); base=${n%_fuzz}
    local corpus=build-fuzz/corpus/$n seeds=()
    mkdir -p "$corpus"
    for d in "testdata/fuzz/$n" "testdata/$base" "testdata/${base}s" "testdata/${base}es"; do
      [ -d "$d" ] && seeds+=("$d")
    done
    [ ${#seeds[@]} -eq 0 ] && [ -d testdata/frames ] && seeds+=(testdata/frames)
    for d in "${seeds[@]}"; do
      for s in "$d"/*; do [ -f "$s" ] && cp -f "$s" "$corpus/"; done
      # testdata/frames/*.bin carry the 4-byte size prefix; request decoders take the frame
      # without it, so seed both forms
      if [ "$d" = testdata/frames ]; then
        for s in "$d"/*.bin; do tail -c +5 "$s" >"$corpus/noprefix-$(basename "$s")"; done
      fi
    done
    echo "fuzz: $n for ${per}s (seeds: ${seeds[*]:-none})"
    timeout --kill-after=10 $((per + 60)) "$b" -max_total_time="$per" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$n-" \
      "$corpus" >"$LOGDIR/fuzz-$n.log" 2>&1 || {
        rc=1
        echo "fuzz: $n FAILED; last lines of $LOGDIR/fuzz-$n.log:"
        tail -n 40 "$LOGDIR/fuzz-$n.log"
        ls -1 build-fuzz/artifacts/"$n"-* 2>/dev/null | sed 's/^/fuzz: artifact /'
      }
    grep -E '^stat::number_of_executed_units|^Done ' "$LOGDIR/fuzz-$n.log" | tail -n 2 | sed "s/^/fuzz: $n: /"
  done
  return $rc
}
if [ "${1:-}" = --fuzz-layer ]; then fuzz_run; exit $?; fi  # internal: run under `timeout`

# The bad-input and codec round-trip suites against the broker built with ASan+UBSan
# (-fno-sanitize-recover: any finding kills the broker, and the suite's liveness checks fail).
asan_integ_run() {
  "$MAKE" -j"$JOBS" minikora-asan || return 1
  ASAN_OPTIONS=detect_leaks=0 MINIKORA_BIN="$PWD/build-asan/minikora" \
    "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_badinput.py tests/test_roundtrip.py
}
if [ "${1:-}" = --asan-integ-layer ]; then asan_integ_run; exit $?; fi

run_layer unit 600 "$MAKE" -j"$JOBS" WERROR=1 minikora unit
run_layer asan 600 "$MAKE" -j"$JOBS" asan
run_layer fuzz 600 bash "$SELF" --fuzz-layer

run_layer compat 180 "$MAKE" check-compat
run_layer asan-integ 600 bash "$SELF" --asan-integ-layer

# ---------------------------------------------------------------------------------------------
integ_summary=""
if skipped integ; then
  status[integ]="skipped"
elif [ ! -x ./minikora ]; then
  banner "integ"
  echo "integ: ./minikora was not built; integration tests not run"
  status[integ]="NOT RUN (no ./minikora)"; failed=1
else
  banner "integ: $PYTHON -m pytest -q tests"
  out="$LOGDIR/pytest.out"
  t0=$SECONDS
  rc=0
  # shellcheck disable=SC2086
  timeout --kill-after=30 "$INTEG_SECONDS" "$PYTHON" -m pytest -q tests ${PYTEST_ARGS:-} 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  integ_summary=$(grep -E '^=* *[0-9]+ (passed|failed|errors?|skipped|xfailed|xpassed).* in [0-9.]+s' "$out" | tail -n 1 |
    grep -oE '[0-9]+ (passed|failed|errors?|skipped|xfailed|xpassed)' | paste -sd, - | sed 's/,/, /g')
  case $rc in
    0) status[integ]="ok" ;;
    5) status[integ]="FAILED (no tests collected)"; failed=1 ;;
    124|137) status[integ]="TIMEOUT after ${INTEG_SECONDS}s"; failed=1 ;;
    *) status[integ]="FAILED (pytest exit $rc)"; failed=1 ;;
  esac
  echo "----- integ: ${status[integ]} in $((SECONDS - t0))s"
fi

# ---------------------------------------------------------------------------------------------
if [ -x ./minikora ]; then
  run_layer clients 600 bash clients/test.sh
elif ! skipped clients; then
  status[clients]="NOT RUN (no ./minikora)"; failed=1
else
  status[clients]="skipped"
fi

# ---------------------------------------------------------------------------------------------
# Docker: skipped (with its reason, not a failure) where no engine can run, and when the run has
# used so much of CI's 30 minutes that a first image build (debootstrap) could overrun them.
docker_limit=${DOCKER_SECONDS:-600}
if [ $((SECONDS + docker_limit)) -gt "$RUN_BUDGET_SECONDS" ] && ! skipped docker; then
  banner "docker"
  status[docker]="skipped: time budget (${SECONDS}s used; the layer may take ${docker_limit}s of ${RUN_BUDGET_SECONDS}s)"
  echo "docker: ${status[docker]}"
else
  run_layer docker "$docker_limit" bash docker/test.sh
fi
if [ "${status[docker]}" = ok ] && [ -s build/test-logs/docker-skip ]; then
  status[docker]="skipped: $(head -c 120 build/test-logs/docker-skip)"
fi

# ---------------------------------------------------------------------------------------------
word() { [ "${status[$1]}" = ok ] && echo "$2 ok" || echo "$2 ${status[$1]}"; }
integ_part="integration ${integ_summary:-${status[integ]}}"
if [ "${status[integ]}" != ok ] && [ -n "$integ_summary" ]; then
  integ_part="integration ${status[integ]}: $integ_summary"
fi
parts="$(word unit unit), $(word asan asan), $(word fuzz fuzz), $(word compat compat), $(word asan-integ asan-integration), $integ_part, $(word clients clients), $(word docker docker)"
echo
if [ $failed -eq 0 ]; then
  echo "make test: PASS ($parts)"
  exit 0
fi
echo "make test: FAIL ($parts)"
exit 1
