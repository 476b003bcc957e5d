#!/usr/bin/env python3
"""tier_bench.py -- `make bench`'s tiered storage section: consume throughput from the local tier
and from the remote tier (S3, the bundled server), cold cache and warm cache, side by side.

One fresh `minikora serve --ephemeral --port 0 --brokers 1`; two topics of one partition, RF 1:
`local` (remote.storage.enable=false) and `tiered` (8 MiB segments, local.retention.ms=1000, so
all but the active segment end up in S3 only).  BENCH_TIER_MB of 16 KiB records go to each; once
the tiered topic's local log starts past 90% of it, one consumer (confluent-kafka, librdkafka
underneath) reads each from offset 0:
  local        the local log (page cache)
  remote cold  every chunk a ranged GET from S3 (the chunk cache is empty)
  remote warm  the same again: chunks from the memory tier (sized to hold them all)
Prints `RESULT key value` lines (MB/s and seconds) for run.sh's table.

Environment: MINIKORA (./minikora), BENCH_TIER_MB (200), BENCH_OUT (build/bench).
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MB = 1 << 20
SIZE = 16 * 1024


def main():
    binary = os.environ.get("MINIKORA", "./minikora")
    total_mb = int(os.environ.get("BENCH_TIER_MB", "200"))
    out = os.environ.get("BENCH_OUT", "build/bench")
    os.makedirs(out, exist_ok=True)
    ready = os.path.join(out, "tier.ready.json")
    if os.path.exists(ready):
        os.unlink(ready)
    log = open(os.path.join(out, "tier.log"), "w")
    mem_cache = (total_mb + 64) * MB
    proc = subprocess.Popen([binary, "serve", "--ephemeral", "--port", "0", "--brokers", "1",
                             "--ready-file", ready, "--set", "remote.log.manager.task.interval.ms=100",
                             "--set", "minikora.tier.cache.memory.bytes=%d" % mem_cache],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if time.monotonic() > deadline or proc.poll() is not None:
                print("RESULT tier_failed no ready file")
                return 1
            time.sleep(0.05)
        with open(ready) as f:
            info = json.load(f)
        bs, admin = info["bootstrap"], info["admin"]
        ac = AdminClient({"bootstrap.servers": bs})
        futs = ac.create_topics([
            NewTopic("local", 1, 1, config={"remote.storage.enable": "false", "segment.bytes": str(8 * MB)}),
            NewTopic("tiered", 1, 1, config={"segment.bytes": str(8 * MB), "local.retention.ms": "1000"})])
        for f in futs.values():
            f.result(30)
        n = total_mb * MB // SIZE
        value = os.urandom(SIZE)
        p = Producer({"bootstrap.servers": bs, "linger.ms": 5, "batch.size": 1000000, "acks": "1"})
        for topic in ("local", "tiered"):
            for i in range(n):
                while True:
                    try:
                        p.produce(topic, value=value, key=b"%d" % i)
                        break
                    except BufferError:
                        p.poll(0.05)
            p.flush(120)

        def local_start():
            with urllib.request.urlopen(admin + "/v1/topics/tiered", timeout=10) as r:
                return json.loads(r.read())["topic"]["partition_details"][0].get("local_log_start_offset", 0)
        deadline = time.monotonic() + 120
        while local_start() < n * 9 // 10:
            if time.monotonic() > deadline:
                print("RESULT tier_failed segments not copied within 120 s")
                return 1
            time.sleep(0.1)

        def consume(topic):
            c = Consumer({"bootstrap.servers": bs, "group.id": "bench-%s-%d" % (topic, time.monotonic_ns()),
                          "enable.auto.commit": False, "fetch.max.bytes": 64 * MB,
                          "max.partition.fetch.bytes": 16 * MB, "queued.max.messages.kbytes": 262144})
            c.assign([TopicPartition(topic, 0, 0)])
            got = nbytes = 0
            start = time.monotonic()
            t0 = None  # from the first record: the consumer's own start-up is not the tier's
            while got < n and time.monotonic() - start < 300:
                for m in c.consume(10000, 1.0):
                    if m.error() is None:
                        if t0 is None:
                            t0 = time.monotonic()
                        got += 1
                        nbytes += len(m.value())
            secs = time.monotonic() - (t0 or start)
            c.close()
            return got, nbytes, secs

        consume("local")  # warms the client library and the connections; not measured
        for label, topic in (("local", "local"), ("remote_cold", "tiered"), ("remote_warm", "tiered")):
            got, nbytes, secs = consume(topic)
            print("RESULT tier_%s_mbps %.1f" % (label, nbytes / MB / secs))
            print("RESULT tier_%s_secs %.2f" % (label, secs))
            if got < n:
                print("RESULT tier_%s_incomplete %d of %d records" % (label, got, n))
        with urllib.request.urlopen(admin + "/v1/tier", timeout=10) as r:
            t = json.loads(r.read())
        print("RESULT tier_mb %d" % total_mb)
        print("RESULT tier_remote_segments %d" % t["remote"]["segments"])
        print("RESULT tier_cache_misses %d" % t["cache"]["misses"])
        print("RESULT tier_cache_hits %d" % t["cache"]["hits"])
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
