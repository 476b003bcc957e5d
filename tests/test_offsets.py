"""ListOffsets: earliest (-2), latest (-1), by timestamp, and max timestamp (-3, KIP-734),
through confluent-kafka, kafka-python, kafkajs and raw requests (no client here exposes -3)."""

import time

import pytest
import confluent_kafka as ck

import kwire
from clients import (ck_consumer, ck_produce, create_topic_ok, js_admin, kcat, kp_servers,
                     node_available)

T0 = (int(time.time() * 1000) // 1000) * 1000 - 3600 * 1000  # one hour ago, whole second
N0, N1 = 100, 50
MAX_AT = 60                       # partition 0: record 60 carries the max timestamp
MAX_TS = T0 + 100000


def ts0(i):
    return MAX_TS if i == MAX_AT else T0 + 10 * i


def ts1(i):
    return T0 + 10 * i + 5


@pytest.fixture(scope="module")
def ts_topic(module_cluster):
    """3 partitions: p0 = 100 records (ts T0+10i, except record 60 = T0+100000),
    p1 = 50 records (ts T0+10i+5), p2 empty."""
    b = module_cluster.bootstrap
    t = "offsets-ts-%d" % time.time_ns()
    create_topic_ok(b, t, 3)
    recs = [(0, b"k%d" % i, b"v%d" % i, []) for i in range(N0)]
    recs += [(1, b"k%d" % i, b"v%d" % i, []) for i in range(N1)]
    tss = [ts0(i) for i in range(N0)] + [ts1(i) for i in range(N1)]
    ck_produce(b, t, recs, "none", timestamps=tss, **{"linger.ms": 50})
    return t


def leader_conn(cluster, topic, partition):
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        md = c.metadata([topic])
    leader = [p["leader"] for p in md["topics"][0]["partitions"] if p["index"] == partition][0]
    b = [b for b in md["brokers"] if b["node_id"] == leader][0]
    return kwire.Conn(b["host"], b["port"]), md


def test_timestamps_stored(cluster, ts_topic):
    out = kcat("-C", "-b", cluster.bootstrap, "-t", ts_topic, "-p", 0, "-o", "beginning", "-e",
               "-f", "%o %T\n").stdout.decode().split()
    pairs = [(int(out[i]), int(out[i + 1])) for i in range(0, len(out), 2)]
    assert pairs == [(i, ts0(i)) for i in range(N0)], pairs[:5]


def test_confluent_watermarks(cluster, ts_topic):
    c = ck_consumer(cluster.bootstrap)
    try:
        wm = [c.get_watermark_offsets(ck.TopicPartition(ts_topic, p), timeout=10, cached=False)
              for p in range(3)]
    finally:
        c.close()
    assert wm == [(0, N0), (0, N1), (0, 0)], wm


def test_confluent_offsets_for_times(cluster, ts_topic):
    cases = [
        (0, T0 - 1000, 0),
        (0, T0, 0),
        (0, T0 + 370, 37),
        (0, T0 + 371, 38),
        (0, T0 + 610, MAX_AT),          # first offset whose timestamp >= target
        (0, MAX_TS, MAX_AT),
        (0, MAX_TS + 1, -1),            # none: OFFSET_END
        (1, T0 + 5, 0),
        (1, T0 + 6, 1),
        (1, T0 + 10 * 49 + 5, 49),
        (1, T0 + 10 * 49 + 6, -1),
        (2, T0, -1),                    # empty partition
    ]
    c = ck_consumer(cluster.bootstrap)
    bad = []
    try:
        # one partition once per request: Kafka answers duplicates with INVALID_REQUEST
        for p, ts, want in cases:
            (r,) = c.offsets_for_times([ck.TopicPartition(ts_topic, p, ts)], timeout=15)
            if r.error is not None or (r.partition, r.offset) != (p, want):
                bad.append("partition %d ts T0%+d: offset %d error %s, expected %d" % (
                    p, ts - T0, r.offset, r.error, want))
        # and all three partitions in one request
        res = c.offsets_for_times([ck.TopicPartition(ts_topic, 0, T0 + 371),
                                   ck.TopicPartition(ts_topic, 1, T0 + 6),
                                   ck.TopicPartition(ts_topic, 2, T0)], timeout=15)
        got = sorted((r.partition, r.offset) for r in res)
        if got != [(0, 38), (1, 1), (2, -1)]:
            bad.append("three partitions in one request: %r" % got)
    finally:
        c.close()
    assert not bad, "\n".join(bad)


def test_kafka_python_offsets(cluster, ts_topic):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=kp_servers(cluster.bootstrap), group_id=None,
                      request_timeout_ms=15000)
    try:
        tps = [TopicPartition(ts_topic, p) for p in range(3)]
        assert c.beginning_offsets(tps) == dict(zip(tps, [0, 0, 0]))
        assert c.end_offsets(tps) == dict(zip(tps, [N0, N1, 0]))
        r = c.offsets_for_times({tps[0]: T0 + 371, tps[1]: T0 + 6, tps[2]: T0})
        assert r[tps[0]].offset == 38 and r[tps[0]].timestamp == ts0(38), r
        assert r[tps[1]].offset == 1 and r[tps[1]].timestamp == ts1(1), r
        assert r[tps[2]] is None, r
        r = c.offsets_for_times({tps[0]: MAX_TS + 1})
        assert r[tps[0]] is None, r
    finally:
        c.close()


@pytest.mark.skipif(not node_available(), reason="tests/js/node_modules missing (npm install)")
def test_kafkajs_offsets(cluster, ts_topic):
    res = js_admin(cluster.bootstrap, "fetchTopicOffsets", ts_topic)
    assert res["ok"], res
    got = sorted((p["partition"], p["low"], p["high"]) for p in res["result"])
    assert got == [(0, "0", str(N0)), (1, "0", str(N1)), (2, "0", "0")], got
    res = js_admin(cluster.bootstrap, "fetchTopicOffsetsByTimestamp", ts_topic, T0 + 371)
    assert res["ok"], res
    got = sorted((p["partition"], p["offset"]) for p in res["result"])
    # partition 1: first ts >= T0+371 is T0+375 at offset 37; partition 2 is empty and
    # kafkajs replaces "no such offset" (-1) with the high watermark (0)
    assert got == [(0, "38"), (1, "37"), (2, "0")], got
    res = js_admin(cluster.bootstrap, "fetchTopicOffsetsByTimestamp", ts_topic, MAX_TS + 1)
    assert res["ok"], res
    got = sorted((p["partition"], p["offset"]) for p in res["result"])
    assert got == [(0, str(N0)), (1, str(N1)), (2, "0")], got


@pytest.mark.parametrize("partition,want", [(0, (MAX_TS, MAX_AT)), (1, (ts1(N1 - 1), N1 - 1)),
                                            (2, (-1, -1))])
def test_raw_max_timestamp(cluster, ts_topic, partition, want):
    conn, _ = leader_conn(cluster, ts_topic, partition)
    with conn:
        (r,) = conn.list_offsets(ts_topic, [(partition, kwire.MAX_TIMESTAMP)])
    name, p, err, ts, off = r
    assert (name, p, err) == (ts_topic, partition, 0), r
    assert (ts, off) == want, "MAX_TIMESTAMP: got (ts %d, offset %d), expected %r" % (ts, off, want)


@pytest.mark.parametrize("flexible_ok", [False, True], ids=["v1-5", "v6+"])
def test_raw_earliest_latest(cluster, ts_topic, flexible_ok):
    conn, _ = leader_conn(cluster, ts_topic, 0)
    with conn:
        rs = conn.list_offsets(ts_topic, [(0, kwire.EARLIEST)], flexible_ok)
        rs += conn.list_offsets(ts_topic, [(0, kwire.LATEST)], flexible_ok)
        rs += conn.list_offsets(ts_topic, [(0, T0 + 371)], flexible_ok)
    assert [(err, off) for _, _, err, _, off in rs] == [(0, 0), (0, N0), (0, 38)], rs
    assert rs[2][3] == ts0(38), rs


def test_raw_unknown_partition_and_topic(cluster, ts_topic):
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        (r,) = c.list_offsets(ts_topic, [(99, kwire.LATEST)])
        assert r[2] == kwire.UNKNOWN_TOPIC_OR_PARTITION, r
        (r,) = c.list_offsets("no-such-topic-%d" % time.time_ns(), [(0, kwire.LATEST)])
        assert r[2] == kwire.UNKNOWN_TOPIC_OR_PARTITION, r


def test_raw_not_leader(cluster, ts_topic):
    """ListOffsets and Produce sent to a broker that does not lead the partition."""
    conn, md = leader_conn(cluster, ts_topic, 0)
    conn.close()
    leader = [p["leader"] for p in md["topics"][0]["partitions"] if p["index"] == 0][0]
    other = [b for b in md["brokers"] if b["node_id"] != leader][0]
    with kwire.Conn(other["host"], other["port"]) as c:
        (r,) = c.list_offsets(ts_topic, [(0, kwire.LATEST)])
        assert r[2] == kwire.NOT_LEADER_OR_FOLLOWER, r
        batch = kwire.record_batch([(b"k", b"v", [])])
        (r,) = c.produce(ts_topic, 0, batch)
        assert r[2] == kwire.NOT_LEADER_OR_FOLLOWER, r
    c2 = ck_consumer(cluster.bootstrap)
    try:
        assert c2.get_watermark_offsets(ck.TopicPartition(ts_topic, 0), timeout=10,
                                        cached=False) == (0, N0)
    finally:
        c2.close()



def test_raw_fetch(cluster, ts_topic):
    """Fetch at 0 and at the end of the log."""
    conn, _ = leader_conn(cluster, ts_topic, 0)
    with conn:
        (p,) = conn.fetch(ts_topic, 0, 0)
        assert p["error"] == 0 and p["high_watermark"] == N0 and p["records"], p["error"]
        (p,) = conn.fetch(ts_topic, 0, N0)
        assert p["error"] == 0 and p["records"] == b"", p


@pytest.mark.parametrize("case", ["out_of_range", "unknown_partition", "not_leader",
                                  "unknown_topic"])
def test_raw_fetch_error_records_not_null(cluster, ts_topic, case):
    """A partition answered with an error carries an empty record set, as Java brokers send
    (MemoryRecords.EMPTY): librdkafka 2.0 rejects a null one (size -1) as 'invalid
    MessageSetSize -1' and then never sees the error (e.g. no auto.offset.reset)."""
    conn, md = leader_conn(cluster, ts_topic, 0)
    conn.close()
    leader = [p["leader"] for p in md["topics"][0]["partitions"] if p["index"] == 0][0]
    brokers = {b["node_id"]: (b["host"], b["port"]) for b in md["brokers"]}
    other = [bid for bid in brokers if bid != leader][0]
    topic, part, off, node, want = {
        "out_of_range": (ts_topic, 0, N0 + 1000, leader, kwire.OFFSET_OUT_OF_RANGE),
        "unknown_partition": (ts_topic, 9, 0, leader, kwire.UNKNOWN_TOPIC_OR_PARTITION),
        "not_leader": (ts_topic, 0, 0, other, kwire.NOT_LEADER_OR_FOLLOWER),
        "unknown_topic": ("no-such-topic-x", 0, 0, leader, kwire.UNKNOWN_TOPIC_OR_PARTITION),
    }[case]
    with kwire.Conn(*brokers[node]) as c:
        (p,) = c.fetch(topic, part, off)
    assert p["error"] == want, p
    assert p["records"] is not None, "%s: error %d answered with null records (size -1)" % (
        case, p["error"])
