"""The high-watermark window after a leader change (issue 16): a follower that still holds a
stale tail from the previous leader must not count toward the new leader's high watermark
until it has truncated to the new leader's epoch boundary.

The scene, with one-way cross-AZ latency L (brokers 1 and 4 share az-1, broker 2 is in az-2):

  partition replicas [1, 2, 4], leader 1
  1. records S0..S4 go to broker 1 with acks=1; broker 4 (same AZ) copies and acknowledges
     them at once, broker 2 (cross-AZ) would get them only after L;
  2. broker 1 crashes (POST /v1/brokers/1/crash): broker 2, first in-sync replica, leads the
     next epoch without S0..S4; broker 4 still holds them at offsets 0..4 and will only
     truncate on its first round from broker 2, L later;
  3. an idempotent acks=all producer writes A0..A4 to broker 2 (offsets 0..4 there);
  4. as soon as they are acknowledged, broker 2 crashes: broker 4 leads.

If broker 4's stale log end counted toward the high watermark, A0..A4 were acknowledged at
once while broker 4 held S0..S4 at those offsets, and they are gone after step 4.  With the
follower counted only once it has truncated, the acknowledgement waits for broker 4's round
(about 2 L), broker 4 holds A0..A4 when it leads, and every acknowledged record is read back.
"""

import json
import time
import urllib.request

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from clients import RDK_LOG
from repl_util import raw_produce, replica_log_files, wait_metadata

L_MS = 2000


def post(mk, path):
    req = urllib.request.Request(mk.admin_url + path, data=b"", method="POST", headers=mk.admin_headers())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def log_bytes(data_dir, broker, topic, partition):
    return sum(f.stat().st_size for f in replica_log_files(data_dir, broker, topic, partition)
               if f.name.endswith(".log"))


def consume_all(bootstrap, topic, timeout=20):
    """Every record of partition 0 from offset 0 up to the high watermark -> [value]."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-window", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "logger": RDK_LOG, "topic.metadata.refresh.interval.ms": 500})
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                lo, hi = c.get_watermark_offsets(ck.TopicPartition(topic, 0), timeout=5)
                break
            except ck.KafkaException:
                assert time.monotonic() < deadline, "no watermarks for %s" % topic
                time.sleep(0.1)  # bounded by the deadline: a leader move propagating
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got = []
        while len(got) < hi - lo:
            assert time.monotonic() < deadline, "read %d of %d records" % (len(got), hi - lo)
            for m in c.consume(num_messages=1000, timeout=0.5):
                if not m.error():
                    got.append(m.value())
        return got
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_no_acknowledged_record_lost_in_the_window(minikora, tmp_path):
    mk = minikora("--set", "minikora.cross.az.latency.ms=%d" % L_MS, "--set", "auto.leader.rebalance.enable=false",
                  "--set", "replica.lag.time.max.ms=60000", data_dir=tmp_path / "data")
    topic = "hw-window"
    admin = AdminClient({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG})
    fut = admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2, 4]])], operation_timeout=10)[topic]
    fut.result(timeout=30)
    wait_metadata(mk, topic, lambda ps: ps.get(0, {}).get("leader") == 1 and len(ps[0]["isr"]) == 3, 20,
                  "leader 1 with a full ISR")

    # 1. the stale tail: on brokers 1 and 4, not yet on 2
    err, base = raw_produce(mk, 1, topic, 0, [b"S%d" % i for i in range(5)], acks=1)
    assert err == 0 and base == 0
    want = log_bytes(mk.data_dir, 1, topic, 0)
    deadline = time.monotonic() + L_MS / 2000.0
    while log_bytes(mk.data_dir, 4, topic, 0) < want:
        assert time.monotonic() < deadline, "broker 4 (same AZ) did not copy the tail at once"
        time.sleep(0.005)  # bounded: far below L
    t_tail = time.monotonic()

    # 2. broker 1 crashes; broker 2 (without the tail) leads
    post(mk, "/v1/brokers/1/crash")
    parts = wait_metadata(mk, topic, lambda ps: ps.get(0, {}).get("leader") == 2, 5, "broker 2 leads")
    assert time.monotonic() - t_tail < L_MS / 1000.0, "too slow: broker 2 may have copied the tail already"
    assert log_bytes(mk.data_dir, 2, topic, 0) == 0, "broker 2 got the tail before the crash"
    assert 4 in parts[0]["isr"], parts

    # 3. acknowledged records on broker 2
    p = ck.Producer({"bootstrap.servers": mk.bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 0, "logger": RDK_LOG, "message.timeout.ms": 20000})
    acked, failed = [], []
    for i in range(5):
        p.produce(topic, b"A%d" % i, partition=0,
                  on_delivery=lambda e, m: (failed if e else acked).append(e or m.value()))
    assert p.flush(25) == 0
    t_ack = time.monotonic()
    assert not failed, failed

    # 4. broker 2 crashes at once; broker 4 leads
    post(mk, "/v1/brokers/2/crash")
    window = time.monotonic() - t_ack
    wait_metadata(mk, topic, lambda ps: ps.get(0, {}).get("leader") == 4, 10, "broker 4 leads")

    got = consume_all(mk.bootstrap, topic)
    lost = [v for v in acked if v not in got]
    assert not lost, ("acknowledged records lost after the leader change (broker 2 crashed %.0f ms after the "
                      "acknowledgement; broker 4 now holds %s)" % (window * 1000, got))
