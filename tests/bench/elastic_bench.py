#!/usr/bin/env python3
"""elastic_bench.py -- `make bench`'s elasticity section (issue 15): add a cell under load and move
the load onto it, with the producer's latency before, during and after, and the time the move took.

One fresh `minikora serve --data-dir <tmp under BENCH_OUT> --port 0 --brokers 3 --azs 3` (one cell;
the directory is removed at the end).  A topic of
BENCH_ELASTIC_PARTITIONS partitions, RF 3, takes an idempotent acks=all producer (confluent-kafka,
librdkafka underneath) at BENCH_ELASTIC_RATE records/s of BENCH_ELASTIC_SIZE bytes.  Phases:
  before   BENCH_ELASTIC_SECS s of steady load on cell 0 (after 1 s of warm-up, not counted)
  during   POST /v1/cells (a new cell of 3 brokers), then POST /v1/tenants/default/move {"cell": 1}:
           every partition is reassigned online onto the new cell (catch up, switch, drop); the
           phase lasts until GET /v1/cells shows no move left
  after    BENCH_ELASTIC_SECS s of steady load on cell 1
Latency is librdkafka's per-record produce latency (Message.latency(): produce() call to
acknowledgement).  Bytes copied: the .log bytes on the new cell's brokers when the move ended.
Prints `RESULT key value` lines for run.sh's table.

With BENCH_ELASTIC_TIER=1 (the default) the topic is tiered with local.retention.ms=1000: sealed
segments (1 MiB) go to the bundled S3 server and leave the local disks, and a new replica starts
at the leader's local log start (KIP-405), so a move copies only the local tail.
BENCH_ELASTIC_TIER=0 turns remote storage off for the topic, so every byte is copied.

Environment: MINIKORA (./minikora), BENCH_OUT (build/bench), BENCH_ELASTIC_RATE (2000),
BENCH_ELASTIC_SIZE (1024), BENCH_ELASTIC_SECS (10), BENCH_ELASTIC_PARTITIONS (12),
BENCH_ELASTIC_TIER (1).
"""

import json
import os
import shutil
import tempfile
import subprocess
import sys
import time
import urllib.request

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def pct(xs, q):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    binary = os.environ.get("MINIKORA", "./minikora")
    out = os.environ.get("BENCH_OUT", "build/bench")
    rate = int(os.environ.get("BENCH_ELASTIC_RATE", "2000"))
    size = int(os.environ.get("BENCH_ELASTIC_SIZE", "1024"))
    secs = float(os.environ.get("BENCH_ELASTIC_SECS", "10"))
    parts = int(os.environ.get("BENCH_ELASTIC_PARTITIONS", "12"))
    tier = os.environ.get("BENCH_ELASTIC_TIER", "1") != "0"
    os.makedirs(out, exist_ok=True)
    ready = os.path.join(out, "elastic.ready.json")
    if os.path.exists(ready):
        os.unlink(ready)
    log = open(os.path.join(out, "elastic.log"), "w")
    data = tempfile.mkdtemp(prefix="elastic-data-", dir=out)
    proc = subprocess.Popen([binary, "serve", "--data-dir", data, "--port", "0", "--brokers", "3", "--azs", "3",
                             "--ready-file", ready, "--set", "minikora.balancer.enable=false",
                             "--set", "log.segment.bytes=1048576",
                             "--set", "remote.log.manager.task.interval.ms=200"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if time.monotonic() > deadline or proc.poll() is not None:
                print("RESULT elastic_failed no_ready_file")
                return 1
            time.sleep(0.05)
        with open(ready) as f:
            info = json.load(f)
        bs, admin, token = info["bootstrap"], info["admin"], info.get("admin_token", "")

        def http(method, path, body=None):
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(admin + path, data=data, method=method,
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": "Bearer " + token})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, json.loads(r.read() or b"null")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"null")

        ac = AdminClient({"bootstrap.servers": bs})
        # tiering on: sealed segments go to S3 and leave the local disk after a second, so a new
        # replica starts at the leader's local log start (KIP-405) and copies only the tail
        cfg = {"local.retention.ms": "1000"} if tier else {"remote.storage.enable": "false"}
        fut = ac.create_topics([NewTopic("load", parts, 3, config=cfg)], operation_timeout=10)
        fut["load"].result(30)
        lat = {"warmup": [], "before": [], "during": [], "after": []}
        errors = []
        phase = ["warmup"]
        p = Producer({"bootstrap.servers": bs, "acks": "all", "enable.idempotence": True, "linger.ms": 1})
        value = b"x" * size
        sent = [0]
        t0 = time.monotonic()

        def run_until(pred):
            while not pred():
                due = int((time.monotonic() - t0) * rate)
                while sent[0] < due:
                    ph = phase[0]
                    try:
                        p.produce("load", value=value, on_delivery=lambda e, m, ph=ph: (
                            errors.append(str(e)) if e else lat[ph].append(m.latency() * 1000.0)))
                        sent[0] += 1
                    except BufferError:
                        break
                p.poll(0.002)

        end = time.monotonic() + 1.0   # warm-up (metadata, producer id): not counted
        run_until(lambda: time.monotonic() >= end)
        phase[0] = "before"
        end = time.monotonic() + secs
        run_until(lambda: time.monotonic() >= end)
        phase[0] = "during"
        st, size_info = http("GET", "/v1/topics/load")
        moved_bytes = size_info["topic"].get("size_bytes", 0) if st == 200 else 0
        t_move = time.monotonic()
        st, cell = http("POST", "/v1/cells")
        if st != 201:
            print("RESULT elastic_failed cell_add_%d" % st)
            return 1
        t_cell = time.monotonic()
        st, m = http("POST", "/v1/tenants/default/move", {"cell": cell["id"]})
        if st != 202:
            print("RESULT elastic_failed move_%d" % st)
            return 1
        last = [0.0]

        def moved():
            if time.monotonic() - last[0] < 0.1:
                return False
            last[0] = time.monotonic()
            return not http("GET", "/v1/cells")[1]["moves"] or time.monotonic() - t_move > 300
        run_until(moved)
        move_secs = time.monotonic() - t_move
        # what the move copied: the log bytes on the new cell's brokers when it ended
        copied = 0
        for b in cell["brokers"]:
            for root, _, files in os.walk(os.path.join(data, "broker-%d" % b)):
                copied += sum(os.path.getsize(os.path.join(root, f)) for f in files if f.endswith(".log"))
        phase[0] = "after"
        end = time.monotonic() + secs
        run_until(lambda: time.monotonic() >= end)
        p.flush(60)
        st, t = http("GET", "/v1/topics/load")
        on_new = all(set(x["replicas"]) <= set(cell["brokers"]) for x in t["topic"]["partition_details"])
        print("RESULT elastic_rate %d" % rate)
        print("RESULT elastic_size %d" % size)
        print("RESULT elastic_partitions %d" % parts)
        print("RESULT elastic_tier %d" % int(tier))
        print("RESULT elastic_cell_add_ms %.1f" % ((t_cell - t_move) * 1000.0))
        print("RESULT elastic_move_secs %.2f" % move_secs)
        print("RESULT elastic_topic_bytes %d" % moved_bytes)
        print("RESULT elastic_copied_bytes %d" % copied)
        print("RESULT elastic_on_new_cell %d" % int(on_new))
        print("RESULT elastic_errors %d" % len(errors))
        for ph in ("before", "during", "after"):
            print("RESULT elastic_%s_n %d" % (ph, len(lat[ph])))
            print("RESULT elastic_%s_p50_ms %.2f" % (ph, pct(lat[ph], 0.50)))
            print("RESULT elastic_%s_p99_ms %.2f" % (ph, pct(lat[ph], 0.99)))
            print("RESULT elastic_%s_max_ms %.2f" % (ph, max(lat[ph]) if lat[ph] else 0.0))
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
