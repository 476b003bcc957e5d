#!/usr/bin/env bash
# run.sh -- the `make bench` driver: minikora and librdkafka's mock cluster,
# side by side, in one run.
#
# Builds tests/bench/mkbench.c (our librdkafka load tool) into build/bench/,
# runs it once against a freshly spawned `./minikora serve --ephemeral
# --port 0` and once against an in-process mock cluster with as many brokers,
# then joins the two `RESULT key value` files into one table.  A replication
# section follows, measured on minikora only: one fresh minikora per cross-AZ
# latency setting (--set minikora.cross.az.latency.ms=N), acks=all on RF 3
# topics.  Needs nothing from the Makefile but the minikora binary.
# Figures: docs/BENCHMARKS.md.
#
# Environment (all optional):
#   BENCH_MSGS=200000        records per produce test
#   BENCH_SIZE=1024          record value size, bytes
#   BENCH_PARTITIONS=6       partitions per topic (RF 1)
#   BENCH_RATE=5000          latency test rate, records/s
#   BENCH_LAT_SECS=10        latency test measured seconds (+1 s warm-up)
#   BENCH_LAT_FETCH_WAIT=    fetch.wait.max.ms of the latency consumer
#                            (empty: librdkafka's default, 500)
#   BENCH_STARTUP_RUNS=5     spawn-to-ready repetitions (median reported)
#   BENCH_TIMEOUT=60         seconds allowed per test
#   BENCH_ONLY=              "minikora" or "mock" to run one column;
#                            "noisy" for the noisy-neighbour section alone;
#                            "elastic" for the elasticity section alone;
#                            "conns" for the idle connections section alone
#                            "curve" for the latency curve alone (below)
# Curve (BENCH_ONLY=curve; issue 16, Kora's graph; acks=all, RF 3, default cluster):
#   BENCH_CURVE_PARTITIONS="10 100 1000 5000"  partition counts, one minikora each
#   BENCH_CURVE_MBPS="5 20 50"   throughputs, MB/s of record values
#   BENCH_CURVE_SECS=5           measured seconds per point (+1 s warm-up)
#   BENCH_CURVE_LINGER=1         linger.ms of the curve's producer (with 0, every record
#                                is a request of its own: the client saturates at ~20 MB/s)
#   BENCH_OUT=build/bench    where the tool, logs and results go
#   MINIKORA=./minikora      the binary under test
# Tiered storage section (minikora only; tests/bench/tier_bench.py, confluent-kafka):
#   BENCH_TIER_MB=200        MB written to a local and to a tiered topic, then consumed from
#                            the local tier and from S3 with a cold and a warm cache (0: skip)
# Replication section (minikora only; RF 3, acks=all):
#   BENCH_XAZ_MS="0 2 10"    cross-AZ latency settings, ms, one minikora each
#                            (empty: no replication section)
#   BENCH_RF_MSGS=$BENCH_MSGS  records in each RF 3 produce test
#   BENCH_RF_LAT_SECS=$BENCH_LAT_SECS  measured seconds of each RF 3 latency test
#   BENCH_RF_MIN_ISR=2       min.insync.replicas of the RF 3 topics
#   BENCH_RF_LAT_PARTITIONS=3  partitions of the RF 3 latency topic (one
#                            leader per broker of a cell)
#   BENCH_RF_LAT_INFLIGHT=1  max.in.flight.requests.per.connection of the
#                            RF 3 latency producer (0: librdkafka's 1000000)
# Elasticity section (minikora only; tests/bench/elastic_bench.py, confluent-kafka; issue 15):
#   BENCH_ELASTIC=1          0 skips it
#   BENCH_ELASTIC_RATE=2000  records/s of the idempotent acks=all producer (RF 3)
#   BENCH_ELASTIC_SIZE=1024  their size, bytes
#   BENCH_ELASTIC_SECS=10    seconds of load before and after the move
#   BENCH_ELASTIC_PARTITIONS=12  partitions moved onto the added cell
# Idle connections section (minikora only; tests/bench/conns_bench.py; issue 16):
#   BENCH_CONNS=5000         idle connections (one ApiVersions each); RSS idle, with them,
#                            per connection, and after they closed (0: skip)
# Many-clients section (minikora only; tests/bench/clients_bench.py; issue 16):
#   BENCH_CLIENTS=500        producer connections (0: skip)
#   BENCH_CLIENTS_RATE=4     acks=all Produce requests per second per connection
#   BENCH_CLIENTS_SECS=10    measured seconds (after 2 s of warm-up)
# Noisy-neighbour section (minikora only; one cell, two tenants; issue 11):
#   BENCH_NOISY=1            0 skips it
#   BENCH_NOISY_RATE=2000    tenant B's records/s, produced and consumed
#   BENCH_NOISY_SIZE=1000    their size, bytes (2000 x 1000 B = 2 MB/s)
#   BENCH_NOISY_SECS=15      B's measured seconds in each of the three phases
#   BENCH_NOISY_QUOTA=2000000  tenant A's producer_byte_rate in the last phase
#   BENCH_NOISY_PARTITIONS=6 partitions of each tenant's topic
#   BENCH_NOISY_RF=3         their replication factor
set -u
cd "$(dirname "$0")/../.." || exit 1

OUT=${BENCH_OUT:-build/bench}
MINIKORA=${MINIKORA:-./minikora}
ONLY=${BENCH_ONLY:-}
mkdir -p "$OUT"

# ---------------------------------------------------------------- idle connections (issue 16)
# RSS of one minikora idle, with BENCH_CONNS idle client connections, and after they closed.
conns_section() {  # appends to $1
    local n=${BENCH_CONNS:-5000} res=$OUT/conns.res
    [ "$n" -gt 0 ] && [ -x "$MINIKORA" ] || return 0
    echo "bench: idle connections, $n (log: $OUT/conns.log)"
    MINIKORA="$MINIKORA" BENCH_CONNS="$n" BENCH_OUT="$OUT" \
        ${PYTHON:-/usr/bin/python3} tests/bench/conns_bench.py > "$res" 2> "$OUT/conns.err" || status=1
    awk '
        $1 == "RESULT" { r[$2] = $3 }
        END {
            printf "\nidle connections: %s client connections over 6 brokers, one ApiVersions each, then idle\n", r["conns_n"]
            printf "%-36s %12s\n", "", "RSS"
            printf "%-36s %9s KiB\n", "idle (no clients)", r["conns_idle_kib"]
            printf "%-36s %9s KiB\n", "with the connections open", r["conns_conns_kib"]
            printf "%-36s %9s B\n", "per idle connection", r["conns_per_conn_bytes"]
            printf "%-36s %9s KiB\n", "after they all closed", r["conns_closed_kib"]
            if ("conns_failed" in r) printf "  idle connections run failed: %s\n", r["conns_failed"]
        }' "$res" >> "$1"
}
status=0
if [ "$ONLY" = conns ]; then
    TABLE=$OUT/results.txt
    echo "minikora bench (idle connections section only), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
         "$(uname -sr)" > "$TABLE"
    conns_section "$TABLE"
    echo
    cat "$TABLE"
    exit $status
fi

# ---------------------------------------------------------------- build the tool
TOOL=$OUT/mkbench
if [ ! -x "$TOOL" ] || [ tests/bench/mkbench.c -nt "$TOOL" ] || [ "$0" -nt "$TOOL" ]; then
    echo "bench: building $TOOL"
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow \
        -Wstrict-prototypes -Wmissing-prototypes -pthread \
        -o "$TOOL" tests/bench/mkbench.c -lrdkafka || exit 1
fi

ARGS=(-n "${BENCH_MSGS:-200000}" -s "${BENCH_SIZE:-1024}" -p "${BENCH_PARTITIONS:-6}"
      --rate "${BENCH_RATE:-5000}" --lat-secs "${BENCH_LAT_SECS:-10}"
      --startup-runs "${BENCH_STARTUP_RUNS:-5}" --timeout "${BENCH_TIMEOUT:-60}")
[ -n "${BENCH_LAT_FETCH_WAIT:-}" ] && ARGS+=(--lat-fetch-wait "$BENCH_LAT_FETCH_WAIT")

# ---------------------------------------------------------------- elasticity (issue 15)
# Add a cell under a steady acks=all load and move the default tenant onto it; the producer's
# p50/p99 before, during and after, and the time the move took; once with the topic tiered
# (local.retention.ms=1000: a new replica copies the local tail only), once untiered ($2 = 1, 0).
# Appends to the table file $1.
run_elastic() {
    local res=$OUT/elastic-tier$2.res
    echo "bench: elasticity, add a cell and move the load onto it, tiering $2 (log: $OUT/elastic.log)"
    MINIKORA="$MINIKORA" BENCH_OUT="$OUT" BENCH_ELASTIC_TIER=$2 ${PYTHON:-/usr/bin/python3} \
        tests/bench/elastic_bench.py > "$res" 2> "$OUT/elastic.err" || status=1
    awk '
        $1 == "RESULT" { r[$2] = $3 }
        END {
            printf "\nelasticity: add a cell (3 brokers) under load, move %s partitions (RF 3, %s bytes, tiering %s) onto it\n", \
                r["elastic_partitions"], r["elastic_topic_bytes"], r["elastic_tier"] ? "on" : "off"
            printf "  producer: %s records/s x %s B, acks=all, idempotent\n", r["elastic_rate"], r["elastic_size"]
            printf "%-36s %10s %10s %10s %10s\n", "", "records", "p50 ms", "p99 ms", "max ms"
            split("before during after", ph, " ")
            for (i = 1; i <= 3; i++)
                printf "%-36s %10s %10s %10s %10s\n", "produce latency, " ph[i] " the move", r["elastic_" ph[i] "_n"], \
                    r["elastic_" ph[i] "_p50_ms"], r["elastic_" ph[i] "_p99_ms"], r["elastic_" ph[i] "_max_ms"]
            printf "  cell added in %s ms; move took %s s; bytes copied to the new cell: %s; all replicas there: %s; producer errors: %s\n", \
                r["elastic_cell_add_ms"], r["elastic_move_secs"], r["elastic_copied_bytes"], \
                r["elastic_on_new_cell"] ? "yes" : "no", r["elastic_errors"]
            if ("elastic_failed" in r) printf "  elasticity run failed: %s\n", r["elastic_failed"]
        }' "$res" >> "$1"
}
if [ "$ONLY" = elastic ]; then
    status=0
    TABLE=$OUT/results-elastic.txt
    echo "minikora bench (elasticity section only), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
         "$(uname -sr)" > "$TABLE"
    run_elastic "$TABLE" 1
    run_elastic "$TABLE" 0
    cat "$TABLE"
    exit $status
fi

# ---------------------------------------------------------------- the Kora curve (issue 16)
# BENCH_ONLY=curve: e2e latency (acks=all, RF 3, the default cluster) against partitions and
# throughput; one fresh minikora per partition count, one latency run per rate on the same
# topic.  Writes $OUT/curve.dat and, with gnuplot, docs-ready $OUT/curve.svg.  Then the
# largest partition count once more on a data directory: stopped, and started again with
# those partitions on disk (ready time, RSS).
if [ "$ONLY" = curve ]; then
    CURVE_PARTS=${BENCH_CURVE_PARTITIONS:-10 100 1000 5000}
    CURVE_MBPS=${BENCH_CURVE_MBPS:-5 20 50}
    CURVE_SECS=${BENCH_CURVE_SECS:-5}
    CURVE_LINGER=${BENCH_CURVE_LINGER:-1}
    SIZE=${BENCH_SIZE:-1024}
    DAT=$OUT/curve.dat
    rates=""
    for m in $CURVE_MBPS; do rates="$rates${rates:+,}$(( m * 1000000 / SIZE ))"; done
    t_start=$(date +%s)
    {
        echo "# minikora curve, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr)"
        echo "# e2e latency, acks=all, RF 3, $SIZE B records, linger.ms $CURVE_LINGER, ${CURVE_SECS} s per point (+1 s warm-up)"
        echo "# partitions  MB/s  p50_ms  p95_ms  p99_ms  lost  rss_mib"
    } > "$DAT"
    for np in $CURVE_PARTS; do
        res=$OUT/curve-$np.res
        log=$OUT/curve-$np.log
        : > "$log"
        echo "bench: curve, $np partitions, rates $rates records/s (log: $log)"
        "$TOOL" --spawn --log "$log" -s "$SIZE" --startup-runs 1 --tests latency --rf 3 \
            --lat-acks all --lat-partitions "$np" --lat-rates "$rates" --lat-secs "$CURVE_SECS" \
            --lat-linger "$CURVE_LINGER" \
            --timeout "${BENCH_TIMEOUT:-120}" \
            -- "$MINIKORA" serve --ephemeral --port 0 > "$res" 2> "${log%.log}.err"
        awk -v np="$np" -v size="$SIZE" '
            $1 != "RESULT" { next }
            $2 == "curve_rate" { r = $3; p50 = p95 = p99 = ""; lost = 0 }
            $2 == "lat_rate" { r = $3 }   # what the producer reached, not the target
            $2 == "lat_p50_us" { p50 = $3 / 1000 } $2 == "lat_p95_us" { p95 = $3 / 1000 }
            $2 == "lat_p99_us" { p99 = $3 / 1000 } $2 == "lat_lost" { lost = $3 }
            $2 == "curve_rss_kb" && p50 != "" {
                printf "%-12s %5.0f %7.2f %7.2f %7.2f %5d %8.1f\n", np, r * size / 1e6, p50, p95, p99, lost, $3 / 1024 }
            ' "$res" >> "$DAT"
        grep -E '^RESULT [a-z_]*(note|failed|incomplete)' "$res" | sed "s/^RESULT /# $np partitions: /" >> "$DAT"
        nfiles=$(grep -c 'Too many open files' "$log")
        [ "$nfiles" -gt 0 ] && echo "# $np partitions: $nfiles 'Too many open files' in the log: not every replica log opened (a point to discard)" >> "$DAT"
    done
    # Startup with the largest partition count on disk.
    np=$(echo $CURVE_PARTS | awk '{print $NF}')
    d=$(mktemp -d /tmp/mkcurve-XXXXXX)
    echo "bench: curve, startup with $np partitions (RF 3) on disk in $d"
    "$TOOL" --spawn --log "$OUT/curve-disk1.log" --startup-runs 1 --tests latency --rf 3 \
        --lat-partitions "$np" --lat-secs 1 --rate 1000 --timeout "${BENCH_TIMEOUT:-120}" \
        -- "$MINIKORA" serve --data-dir "$d" --port 0 > "$OUT/curve-disk1.res" 2>/dev/null
    "$TOOL" --spawn --log "$OUT/curve-disk2.log" --startup-runs 1 --tests startup \
        -- "$MINIKORA" serve --data-dir "$d" --port 0 > "$OUT/curve-disk2.res" 2>/dev/null
    awk -v np="$np" '$1 == "RESULT" && $2 == "startup_ms" { ms = $3 } $1 == "RESULT" && $2 == "rss_idle_kb" { kb = $3 }
        END { printf "# startup with %s partitions x RF 3 on disk: ready in %s ms, RSS %.1f MiB 1 s after ready\n", np, ms, kb / 1024 }' \
        "$OUT/curve-disk2.res" >> "$DAT"
    nfiles=$(cat "$OUT/curve-disk1.log" "$OUT/curve-disk2.log" | grep -c 'Too many open files')
    [ "$nfiles" -gt 0 ] && echo "# startup: $nfiles 'Too many open files' in its logs: not every partition was on disk" >> "$DAT"
    rm -rf "$d"
    echo "# whole sweep $(( $(date +%s) - t_start )) s" >> "$DAT"
    cat "$DAT"
    if command -v gnuplot >/dev/null; then
        # One line per partition count: p95 against throughput (Kora's graph).
        plot=""
        for np in $CURVE_PARTS; do
            plot="$plot${plot:+, }'$DAT' using (\$1==$np ? \$2 : 1/0):5 with linespoints title '$np partitions'"
        done
        gnuplot -e "set terminal svg size 720,420 font 'sans,11' background rgb 'white';
            set output '$OUT/curve.svg'; set title 'minikora: e2e p95 latency, acks=all, RF 3';
            set xlabel 'throughput, MB/s'; set ylabel 'p95 end-to-end latency, ms';
            set key top left; set grid; set logscale y; plot $plot" && echo "bench: $OUT/curve.svg"
    else
        echo "bench: gnuplot not found (Debian: gnuplot-nox; ci/install.sh bench): no picture" >&2
    fi
    exit 0
fi

MK_RES=$OUT/minikora.res
MOCK_RES=$OUT/mock.res
rm -f "$MK_RES" "$MOCK_RES"
status=0
t_start=$(date +%s)

# ---------------------------------------------------------------- minikora
if [ "$ONLY" != mock ] && [ "$ONLY" != noisy ]; then
    if [ ! -x "$MINIKORA" ]; then
        echo "bench: $MINIKORA not found (run 'make minikora' or 'make bench')" >&2
        echo "RESULT target_failed 1" > "$MK_RES"
        status=1
    else
        : > "$OUT/minikora.log"
        echo "bench: minikora (log: $OUT/minikora.log, client log: $OUT/minikora.err)"
        "$TOOL" --spawn --log "$OUT/minikora.log" "${ARGS[@]}" --ceiling-dir auto \
            -- "$MINIKORA" serve --ephemeral --port 0 > "$MK_RES" 2> "$OUT/minikora.err"
        rc=$?
        if [ $rc -ne 0 ] || grep -q '^RESULT target_failed' "$MK_RES"; then
            echo "bench: minikora run failed (rc $rc); last lines of $OUT/minikora.err:" >&2
            tail -5 "$OUT/minikora.err" >&2
            status=1
        fi
    fi
fi

# ---------------------------------------------------------------- mock
if [ "$ONLY" != minikora ] && [ "$ONLY" != noisy ]; then
    brokers=$(awk '$1=="RESULT" && $2=="brokers" {print $3}' "$MK_RES" 2>/dev/null)
    echo "bench: librdkafka mock cluster, ${brokers:-3} brokers (client log: $OUT/mock.err)"
    "$TOOL" --mock --mock-brokers "${brokers:-3}" "${ARGS[@]}" > "$MOCK_RES" 2> "$OUT/mock.err" \
        || echo "bench: mock run failed; see $OUT/mock.err" >&2
fi

# ---------------------------------------------------------------- replication
# One fresh minikora per cross-AZ latency setting; acks=all on RF 3 topics.
XAZ=${BENCH_XAZ_MS-0 2 10}
[ "$ONLY" = mock ] || [ "$ONLY" = noisy ] && XAZ=
RF_MSGS=${BENCH_RF_MSGS:-${BENCH_MSGS:-200000}}
RF_LAT_SECS=${BENCH_RF_LAT_SECS:-${BENCH_LAT_SECS:-10}}
RF_MIN_ISR=${BENCH_RF_MIN_ISR:-2}
RF_LAT_PARTS=${BENCH_RF_LAT_PARTITIONS:-3}
RF_LAT_INFLIGHT=${BENCH_RF_LAT_INFLIGHT:-1}
RF_FILES=
for x in $XAZ; do
    res=$OUT/minikora-rf3-xaz$x.res
    log=$OUT/minikora-rf3-xaz$x.log
    rm -f "$res"
    RF_FILES="$RF_FILES $x:$res"
    [ -x "$MINIKORA" ] || { echo "RESULT target_failed 1" > "$res"; continue; }
    : > "$log"
    echo "bench: minikora RF 3, acks=all, cross-AZ latency $x ms (log: $log)"
    "$TOOL" --spawn --log "$log" "${ARGS[@]}" --startup-runs 1 --tests produce,latency \
        -n "$RF_MSGS" --lat-secs "$RF_LAT_SECS" --rf 3 --min-isr "$RF_MIN_ISR" \
        --produce-acks all --lat-acks all --lat-partitions "$RF_LAT_PARTS" \
        --lat-inflight "$RF_LAT_INFLIGHT" --ceiling-dir auto \
        -- "$MINIKORA" serve --ephemeral --port 0 \
        --set "minikora.cross.az.latency.ms=$x" > "$res" 2> "${log%.log}.err"
    rc=$?
    echo "RESULT isr_shrinks $(grep -c 'leaves the ISR' "$log")" >> "$res"
    # minikora's exit line: copy rounds per acknowledged acks=all write (issue 16)
    rpa=$(sed -n 's/.*replication: .* \([0-9.]*\) copy rounds per acknowledged write.*/\1/p' "$log" | tail -1)
    [ -n "$rpa" ] && echo "RESULT repl_rounds_per_ack $rpa" >> "$res"
    if [ $rc -ne 0 ] || grep -q '^RESULT target_failed' "$res"; then
        echo "bench: minikora RF 3 run ($x ms) failed (rc $rc); see ${log%.log}.err" >&2
        status=1
    fi
done

# ---------------------------------------------------------------- the table
TABLE=$OUT/results.txt
if [ "$ONLY" = noisy ]; then
    echo "minikora bench (noisy-neighbour section only), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
         "$(uname -sr)" > "$TABLE"
else {
    echo "minikora bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr)"
    echo "records: ${BENCH_MSGS:-200000} x ${BENCH_SIZE:-1024} B per produce test," \
         "${BENCH_PARTITIONS:-6} partitions, RF 1; latency at ${BENCH_RATE:-5000}/s;" \
         "whole run $(( $(date +%s) - t_start )) s"
    awk -v mk="$MK_RES" -v mock="$MOCK_RES" -v rf="$RF_FILES" \
        -v rf_msgs="$RF_MSGS" -v rf_minisr="$RF_MIN_ISR" -v rf_lp="$RF_LAT_PARTS" \
        -v rf_inf="$RF_LAT_INFLIGHT" '
        function load(file, arr,   line, k) {
            while ((getline line < file) > 0) {
                if (split(line, f, " ") < 3 || f[1] != "RESULT") continue
                k = f[2]; sub(/^RESULT [^ ]+ /, "", line); arr[k] = line
            }
            close(file)
        }
        function v(arr, k) { return (k in arr) ? arr[k] : "n/a" }
        function ms(arr, k) { return (k in arr) ? sprintf("%.2f", arr[k] / 1000) : "n/a" }
        function mib(arr, k) { return (k in arr && arr[k] >= 0) ? sprintf("%.1f", arr[k] / 1024) : "n/a" }
        function ratio(k) {
            if (!(k in A) || !(k in B) || B[k] + 0 == 0) return ""
            return sprintf("%.2f", A[k] / B[k])
        }
        function row(label, a, b, r) { printf "%-36s %12s %12s %10s\n", label, a, b, r }
        # The produce rows: minikora, mock, the write ceiling of the same run
        # and the ratio to min(mock, ceiling) (issue 16).
        function prow(label, a, b, c,   m) {
            m = ""
            if (a != "n/a" && (b != "n/a" || c != "n/a")) {
                lim = (b == "n/a") ? c : (c == "n/a") ? b : (b + 0 < c + 0 ? b : c)
                if (lim + 0 > 0) m = sprintf("%.2f", a / lim)
            }
            printf "%-36s %12s %12s %10s %10s %10s\n", label, a, b, ratio2(a, b), c, m
        }
        function ratio2(a, b) { return (a == "n/a" || b == "n/a" || b + 0 == 0) ? "" : sprintf("%.2f", a / b) }
        BEGIN {
            load(mk, A); load(mock, B)
            printf "%-36s %12s %12s %10s %10s %10s\n", "", "minikora", "mock", "mk/mock", "ceiling", "mk/min"
            prow("produce acks=1      MB/s", v(A, "produce_acks1_mbps"), v(B, "produce_acks1_mbps"), v(A, "ceiling_mbps"))
            row("produce acks=1      msgs/s", v(A, "produce_acks1_mps"), v(B, "produce_acks1_mps"), ratio("produce_acks1_mps"))
            prow("produce acks=all    MB/s", v(A, "produce_acksall_mbps"), v(B, "produce_acksall_mbps"), v(A, "ceiling_mbps"))
            row("produce acks=all    msgs/s", v(A, "produce_acksall_mps"), v(B, "produce_acksall_mps"), ratio("produce_acksall_mps"))
            row("consume             MB/s", v(A, "consume_mbps"), v(B, "consume_mbps"), ratio("consume_mbps"))
            row("consume             msgs/s", v(A, "consume_mps"), v(B, "consume_mps"), ratio("consume_mps"))
            row("e2e latency p50     ms", ms(A, "lat_p50_us"), ms(B, "lat_p50_us"), "")
            row("e2e latency p99     ms", ms(A, "lat_p99_us"), ms(B, "lat_p99_us"), "")
            row("e2e latency p99.9   ms", ms(A, "lat_p999_us"), ms(B, "lat_p999_us"), "")
            row("startup to ready    ms (median)", v(A, "startup_ms"), v(B, "startup_ms"), "")
            row("idle RSS            MiB", mib(A, "rss_idle_kb"), "n/a", "")
            row("loaded RSS (peak)   MiB", mib(A, "rss_loaded_kb"), "n/a", "")
            row("SIGTERM to exit     ms (median)", v(A, "shutdown_ms"), "n/a", "")
            nrf = split(rf, rfs, " ")
            if (nrf) {
                print ""
                printf "replication, minikora only: RF 3, acks=all, min.insync.replicas %s; %s records per produce test;\n", rf_minisr, rf_msgs
                printf "latency on %s partitions, %s in flight per connection (see docs/BENCHMARKS.md)\n", rf_lp, (rf_inf > 0 ? rf_inf : "librdkafka default")
            }
            for (i = 1; i <= nrf; i++) {
                x = rfs[i]; sub(/:.*/, "", x); rfile = rfs[i]; sub(/^[^:]*:/, "", rfile)
                delete R; load(rfile, R)
                xs = sprintf("xAZ %2s ms", x)
                prow(xs " produce  MB/s", v(R, "produce_acksall_mbps"), v(B, "produce_acksall_mbps"), v(R, "ceiling_mbps"))
                row(xs " rounds per ack", v(R, "repl_rounds_per_ack"), "n/a", "")
                row(xs " produce  msgs/s", v(R, "produce_acksall_mps"), "n/a", "")
                row(xs " e2e p50  ms", ms(R, "lat_p50_us"), "n/a", "")
                row(xs " e2e p99  ms", ms(R, "lat_p99_us"), "n/a", "")
                for (k in R) if (k ~ /(_note|_incomplete|_failed|final_exit_status)$/) RN[++nrn] = sprintf("  minikora RF 3, xAZ %s ms, %s: %s", x, k, R[k])
                if (R["isr_shrinks"] + 0 > 0) RN[++nrn] = sprintf("  minikora RF 3, xAZ %s ms: %s ISR shrinks in the log", x, R["isr_shrinks"])
                if ("lat_lost" in R && R["lat_lost"] + 0 > 0) RN[++nrn] = sprintf("  minikora RF 3, xAZ %s ms: %s latency records lost", x, R["lat_lost"])
            }
            print ""
            print "notes:"
            if ("ceiling_mbps" in A)
                printf "  ceiling: a plain pwrite() loop of the same bytes into a new file of the data directory, in writes of %s B (the warm-up'"'"'s mean batch), run twice after the warm-up: %s then %s MB/s; the column is the second. mk/min = minikora / min(mock, ceiling). RF 3 writes each byte three times.\n", v(A, "ceiling_write_bytes"), v(A, "ceiling_first_mbps"), v(A, "ceiling_mbps")
            print "  mock startup = rd_kafka_new + rd_kafka_mock_cluster_new in-process; mock RSS is not separable from the tool."
            if ("consume_msgs" in B)
                printf "  mock consume read only the tail it retains (~5 MiB per partition): %s of %s msgs produced.\n", B["consume_msgs"], v(B, "produce_acks1_msgs")
            print "  mock latency is no baseline: the mock answers an empty Fetch only after the full fetch.wait.max.ms (no wake-up on produce)."
            n = 0
            for (k in A) if (k ~ /(_note|_incomplete|_failed|final_exit_status)$/) { printf "  minikora %s: %s\n", k, A[k]; n++ }
            for (k in B) if (k ~ /(_note|_incomplete|_failed)$/) printf "  mock %s: %s\n", k, B[k]
            if ("lat_rate" in A) printf "  latency: minikora %s records measured, %s lost, sent at %s/s.\n", v(A, "lat_count"), v(A, "lat_lost"), v(A, "lat_rate")
            for (i = 1; i <= nrn; i++) print RN[i]
        }'
} > "$TABLE"
fi

# ---------------------------------------------------------------- tiered storage (issue 12)
# Consume throughput from the local tier and from S3 (cold cache, warm cache), side by side.
TIER_MB=${BENCH_TIER_MB:-200}
if [ "$ONLY" != mock ] && [ "$ONLY" != noisy ] && [ -x "$MINIKORA" ] && [ "$TIER_MB" -gt 0 ] && \
   ${PYTHON:-/usr/bin/python3} -c 'import confluent_kafka' 2>/dev/null; then
    echo "bench: tiered storage, $TIER_MB MB per topic (log: $OUT/tier.log)"
    TIER_RES=$OUT/tier.res
    MINIKORA="$MINIKORA" BENCH_TIER_MB="$TIER_MB" BENCH_OUT="$OUT" \
        ${PYTHON:-/usr/bin/python3} tests/bench/tier_bench.py > "$TIER_RES" 2> "$OUT/tier.err" || status=1
    awk -v mb="$TIER_MB" '
        $1 == "RESULT" { r[$2] = $3 }
        END {
            printf "\ntiered storage: %s MB of 16 KiB records per topic, 1 partition, consumed from offset 0\n", mb
            printf "%-36s %12s %12s\n", "", "MB/s", "seconds"
            printf "%-36s %12s %12s\n", "consume, local tier", r["tier_local_mbps"], r["tier_local_secs"]
            printf "%-36s %12s %12s\n", "consume, S3 (cold cache)", r["tier_remote_cold_mbps"], r["tier_remote_cold_secs"]
            printf "%-36s %12s %12s\n", "consume, S3 (warm: memory tier)", r["tier_remote_warm_mbps"], r["tier_remote_warm_secs"]
            if ("tier_failed" in r) printf "  tiered storage run failed: %s\n", r["tier_failed"]
        }' "$TIER_RES" >> "$TABLE"
fi

[ "$ONLY" != mock ] && [ "$ONLY" != noisy ] && conns_section "$TABLE"

# ---------------------------------------------------------------- reset time (issue 6)
# A fresh minikora with the admin API; BENCH_RESET_TOPICS topics of 3 partitions x RF 3 made
# through the admin API, then POST /v1/reset; repeated, median of the server-side elapsed_ms.
RESET_TOPICS=${BENCH_RESET_TOPICS:-20}
if [ "$ONLY" != mock ] && [ "$ONLY" != noisy ] && [ -x "$MINIKORA" ] && command -v curl >/dev/null && \
   [ "$RESET_TOPICS" -gt 0 ]; then
    rf=$OUT/reset.ready.json
    rm -f "$rf"
    "$MINIKORA" serve --ephemeral --port 0 --ready-file "$rf" > "$OUT/reset.log" 2>&1 &
    rpid=$!
    for _ in $(seq 1 200); do [ -s "$rf" ] && break; sleep 0.05; done
    admin=$(sed -n 's/.*"admin": *"\([^"]*\)".*/\1/p' "$rf" 2>/dev/null)
    auth="Authorization: Bearer $(sed -n 's/.*"admin_token": *"\([^"]*\)".*/\1/p' "$rf" 2>/dev/null)"
    times=()
    if [ -n "$admin" ]; then
        for round in 1 2 3 4 5; do
            for i in $(seq 1 "$RESET_TOPICS"); do
                curl -s -o /dev/null -X POST "$admin/v1/topics" -H 'Content-Type: application/json' -H "$auth" \
                    -d "{\"name\": \"reset-$round-$i\", \"partitions\": 3, \"replication_factor\": 3}"
            done
            # Let the creates' background work (metadata writes, replication) settle, so
            # the figure is the reset's own cost, as between two tests of a suite.
            sleep 0.3
            ms=$(curl -s -X POST -H "$auth" "$admin/v1/reset" | sed -n 's/.*"elapsed_ms": *\([0-9.]*\).*/\1/p')
            [ -n "$ms" ] && times+=("$ms")
        done
    fi
    kill -TERM "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null
    if [ ${#times[@]} -gt 0 ]; then
        med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        printf '\nreset: %s topics x 3 partitions x RF 3 (%s replica logs): median %s ms server-side over %d runs (target < 20 ms)\n' \
            "$RESET_TOPICS" $((RESET_TOPICS * 9)) "$med" ${#times[@]} >> "$TABLE"
    else
        printf '\nreset: not measured (no admin URL in the ready file; see %s)\n' "$OUT/reset.log" >> "$TABLE"
    fi
fi
# ---------------------------------------------------------------- noisy neighbour (issue 11)
# One minikora with one cell (3 brokers, 3 AZs) and two tenants.  Tenant B produces and consumes
# BENCH_NOISY_RATE records/s of BENCH_NOISY_SIZE bytes (mkbench's latency test: acks=1,
# linger.ms=0, e2e latency from send to receive) in three phases: alone; beside tenant A
# flooding as fast as its client can send (mkbench's flood test) with no quota; and beside A
# flooding with producer_byte_rate BENCH_NOISY_QUOTA.  A starts 4 s before B: B's measure
# begins after a throttled A's first burst (a fresh quota measure lets ~10 s of quota through at
# once, as Kafka's does) and covers A's first throttle and then its steady state.  Before the
# throttled phase the quota windows (11 x 1 s) are left to empty of the unthrottled flood.
# A's rate is taken over the stretch B measures.
NOISY=${BENCH_NOISY:-1}
if [ "$ONLY" != mock ] && [ "$NOISY" != 0 ] && [ -x "$MINIKORA" ] && command -v curl >/dev/null; then
    N_RATE=${BENCH_NOISY_RATE:-2000}
    N_SIZE=${BENCH_NOISY_SIZE:-1000}
    N_SECS=${BENCH_NOISY_SECS:-15}
    N_QUOTA=${BENCH_NOISY_QUOTA:-2000000}
    N_PARTS=${BENCH_NOISY_PARTITIONS:-6}
    N_RF=${BENCH_NOISY_RF:-3}
    nf=$OUT/noisy.ready.json
    rm -f "$nf" "$OUT"/noisy-*.res
    t_noisy=$(date +%s)
    # Retention keeps the flood's disk use bounded (about 1.5 GB over every replica).
    "$MINIKORA" serve --ephemeral --port 0 --brokers 3 --azs 3 --ready-file "$nf" \
        --set log.segment.bytes=16777216 --set log.retention.bytes=67108864 > "$OUT/noisy.log" 2>&1 &
    npid=$!
    for _ in $(seq 1 200); do [ -s "$nf" ] && break; sleep 0.05; done
    admin=$(sed -n 's/.*"admin": *"\([^"]*\)".*/\1/p' "$nf" 2>/dev/null)
    boot=$(sed -n 's/.*"bootstrap": *"\([^"]*\)".*/\1/p' "$nf" 2>/dev/null)
    auth="Authorization: Bearer $(sed -n 's/.*"admin_token": *"\([^"]*\)".*/\1/p' "$nf" 2>/dev/null)"
    noisy_key() {  # tenant -> "KEY:SECRET" of a new key
        curl -s -X POST -H "$auth" "$admin/v1/tenants" -H 'Content-Type: application/json' \
            -d "{\"id\": \"$1\"}" > /dev/null
        curl -s -X POST -H "$auth" "$admin/v1/tenants/$1/keys" |
            sed -n 's/.*"key": *"\([^"]*\)".*"secret": *"\([^"]*\)".*/\1:\2/p'
    }
    bkey=; akey=
    if [ -n "$admin" ] && [ -n "$boot" ]; then
        bkey=$(noisy_key tenant-b)
        akey=$(noisy_key tenant-a)
    fi
    noisy_phase() {  # name, flood (0/1)
        local fpid=
        if [ "$2" = 1 ]; then
            "$TOOL" -b "$boot" --sasl "$akey" --tests flood --flood-secs $((N_SECS + 9)) --flood-warm 6 \
                -s 1024 -p "$N_PARTS" --rf "$N_RF" > "$OUT/noisy-$1-a.res" 2> "$OUT/noisy-$1-a.err" &
            fpid=$!
            sleep 4
        fi
        echo "bench: noisy neighbour, $1: tenant B at $N_RATE x $N_SIZE B/s for 1+$N_SECS s"
        "$TOOL" -b "$boot" --sasl "$bkey" --tests latency --rate "$N_RATE" -s "$N_SIZE" \
            --lat-secs "$N_SECS" --lat-partitions "$N_PARTS" --rf "$N_RF" --timeout 60 \
            > "$OUT/noisy-$1-b.res" 2> "$OUT/noisy-$1-b.err"
        [ -n "$fpid" ] && wait "$fpid"
    }
    if [ -n "$bkey" ] && [ -n "$akey" ]; then
        noisy_phase alone 0
        noisy_phase flood 1
        # The flood's aftermath is not the throttled A: its sealed segments are copied to S3 and
        # deleted for retention.bytes for a while after it stops (tens of seconds on a slow disk),
        # and that work on the same cores was B's p99 in the throttled phase.  Wait (at most 180 s)
        # until tiering has nothing pending or in flight, and at least 12 s: the quota windows
        # (11 x 1 s) forget the unthrottled flood.
        t_quiet=$SECONDS
        for _ in $(seq 1 360); do
            curl -s "$admin/v1/tier" | "${PYTHON:-/usr/bin/python3}" -c 'import json, sys
j = json.load(sys.stdin)
u, d = j.get("uploads", {}), j.get("deletes", {})
sys.exit(0 if not j.get("enabled") or u.get("pending", 0) + u.get("in_flight", 0) + d.get("in_flight", 0) == 0 else 1)' \
                2>/dev/null && break
            sleep 0.5  # polling an admin figure; no event to wait on
        done
        echo "bench: noisy neighbour: the flood's tiering done $((SECONDS - t_quiet)) s after it" | tee "$OUT/noisy-drain.txt"
        [ $((SECONDS - t_quiet)) -lt 12 ] && sleep $((12 - (SECONDS - t_quiet)))
        curl -s -X PUT -H "$auth" "$admin/v1/tenants/tenant-a/quotas" -H 'Content-Type: application/json' \
            -d "{\"producer_byte_rate\": $N_QUOTA}" > /dev/null
        noisy_phase throttled 1
        curl -s "$admin/v1/tenants/tenant-a/quotas" > "$OUT/noisy-quotas-a.json"
    fi
    kill -TERM "$npid" 2>/dev/null; wait "$npid" 2>/dev/null
    awk -v out="$OUT" -v rate="$N_RATE" -v size="$N_SIZE" -v secs="$N_SECS" -v quota="$N_QUOTA" \
        -v parts="$N_PARTS" -v rf="$N_RF" -v took=$(( $(date +%s) - t_noisy )) '
        function load(file, arr,   line, k) {
            delete arr
            while ((getline line < file) > 0) {
                if (split(line, f, " ") < 3 || f[1] != "RESULT") continue
                k = f[2]; sub(/^RESULT [^ ]+ /, "", line); arr[k] = line
            }
            close(file)
        }
        function ms(arr, k) { return (k in arr) ? sprintf("%.2f", arr[k] / 1000) : "n/a" }
        BEGIN {
            printf "\nnoisy neighbour: one cell (3 brokers), tenants A and B, RF %s, %s partitions each; %d s\n", rf, parts, took
            printf "B produces and consumes %s x %s B/s (acks=1), %s s measured per phase; A floods (acks=1,\n", rate, size, secs
            printf "as fast as its client can send); then A with producer_byte_rate %s\n", quota
            printf "%-30s %10s %10s %10s %12s %12s\n", "", "B p50 ms", "B p99 ms", "p99/alone", "A MB/s", "A throttles"
            split("alone flood throttled", ph, " ")
            label["alone"] = "B alone"; label["flood"] = "B beside A, no quota"; label["throttled"] = "B beside A, throttled"
            load(out "/noisy-alone-b.res", B0); base = ("lat_p99_us" in B0) ? B0["lat_p99_us"] : 0
            for (i = 1; i <= 3; i++) {
                load(out "/noisy-" ph[i] "-b.res", B); load(out "/noisy-" ph[i] "-a.res", A)
                r = (base > 0 && "lat_p99_us" in B) ? sprintf("%.2f", B["lat_p99_us"] / base) : "n/a"
                printf "%-30s %10s %10s %10s %12s %12s\n", label[ph[i]], ms(B, "lat_p50_us"), ms(B, "lat_p99_us"), r,
                    (ph[i] == "alone" ? "-" : (("flood_mbps" in A) ? A["flood_mbps"] : "n/a")),
                    (ph[i] == "alone" ? "-" : (("flood_throttles" in A) ? A["flood_throttles"] : "n/a"))
                if ("lat_lost" in B && B["lat_lost"] + 0 > 0) note[++nn] = sprintf("  %s: %s of B'"'"'s records lost", label[ph[i]], B["lat_lost"])
                if (!("lat_p99_us" in B)) note[++nn] = sprintf("  %s: no latency figure (see %s/noisy-%s-b.err)", label[ph[i]], out, ph[i])
            }
            for (i = 1; i <= nn; i++) print note[i]
        }' >> "$TABLE"
fi
echo
if [ "$ONLY" != mock ] && [ "$ONLY" != noisy ] && [ "${BENCH_ELASTIC:-1}" != 0 ] && [ -x "$MINIKORA" ] && \
   ${PYTHON:-/usr/bin/python3} -c 'import confluent_kafka' 2>/dev/null; then
    run_elastic "$TABLE" 1
    run_elastic "$TABLE" 0
fi

# ---------------------------------------------------------------- many clients (issue 16)
# BENCH_CLIENTS producer connections (tests/bench/clients_bench.py, stdlib Python + kwire),
# each sending BENCH_CLIENTS_RATE acks=all Produce requests/s of one 1000 B record.
CLIENTS=${BENCH_CLIENTS:-500}
if [ "$ONLY" != mock ] && [ "$ONLY" != noisy ] && [ -x "$MINIKORA" ] && [ "$CLIENTS" -gt 0 ]; then
    echo "bench: $CLIENTS producer connections (log: $OUT/clients.log)"
    CL_RES=$OUT/clients.res
    MINIKORA="$MINIKORA" BENCH_CLIENTS_LOG="$OUT/clients.log" \
        timeout 300 ${PYTHON:-/usr/bin/python3} tests/bench/clients_bench.py > "$CL_RES" 2> "$OUT/clients.err" || status=1
    awk '
        $1 == "RESULT" { r[$2] = $3 }
        END {
            printf "\nmany clients: %s producer connections x %s acks=all requests/s (1 record of 1000 B, RF 3), %s s measured\n", r["clients"], r["clients_rate_per_conn"], 10
            printf "%-36s %12s\n", "requests/s answered", r["clients_req_per_s"]
            printf "%-36s %12s\n", "request latency p50 ms", r["clients_p50_ms"]
            printf "%-36s %12s\n", "request latency p99 ms", r["clients_p99_ms"]
            printf "%-36s %12s\n", "request latency p99.9 ms", r["clients_p999_ms"]
            printf "%-36s %12s\n", "event loop busy fraction", r["clients_loop_busy"]
            printf "%-36s %12.1f\n", "RSS with the connections open MiB", r["clients_rss_kb"] / 1024
            if (r["clients_errors"] + r["clients_conn_failures"] > 0) printf "  %s error answers, %s connections failed\n", r["clients_errors"], r["clients_conn_failures"]
            if ("clients_failed" in r) printf "  many-clients run failed: %s\n", r["clients_failed"]
        }' "$CL_RES" >> "$TABLE"
fi

cat "$TABLE"
echo "(table saved to $TABLE; raw results: $MK_RES, $MOCK_RES${RF_FILES:+, $OUT/minikora-rf3-xaz*.res})"
exit $status
