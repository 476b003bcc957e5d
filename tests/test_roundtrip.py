"""Produce keyed records with headers with each client and each codec, consume them back and
check every key, value, header, and the per-partition order.

Producers: confluent-kafka (10,000 records per codec), kafkajs (10,000), kafka-python (2,000: it
is slow).  Consumers: confluent-kafka always; kafka-python and kcat cross-check some cases.
"""

import pytest

from clients import (CODECS, check_partitions, ck_consume, ck_produce, create_topic_ok,
                     expected_by_partition, js_produce, kcat, kp_consume, kp_produce,
                     make_records, node_available)

PARTITIONS = 3
N_FULL = 10000
N_KAFKA_PYTHON = 2000


def kp_codec_missing(codec):
    from kafka import codec as kc
    have = {"none": True, "gzip": kc.has_gzip(), "snappy": kc.has_snappy(),
            "lz4": kc.has_lz4(), "zstd": kc.has_zstd()}
    module = {"snappy": "python3-snappy", "lz4": "python3-lz4", "zstd": "python3-zstandard"}
    if not have[codec]:
        return "kafka-python has no %s codec: install Debian package %s" % (
            codec, module.get(codec, "?"))
    return None


def counts_of(expected):
    return {p: len(v) for p, v in expected.items()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", CODECS)
def test_confluent_produce(cluster, topic_name, codec):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, PARTITIONS)
    recs = make_records("ck-" + codec, N_FULL, PARTITIONS)
    offsets = ck_produce(cluster.bootstrap, t, recs, codec)
    for p, offs in offsets.items():
        assert offs == list(range(len(offs))), "partition %d acked offsets not 0..n-1" % p
    exp = expected_by_partition(recs)
    got = ck_consume(cluster.bootstrap, t, counts_of(exp))
    check_partitions(exp, got, "confluent->confluent %s" % codec)
    # cross-check with an independent consumer implementation
    if kp_codec_missing(codec) is None:
        got = kp_consume(cluster.bootstrap, t, counts_of(exp))
        check_partitions(exp, got, "confluent->kafka-python %s" % codec)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_produce(cluster, topic_name, codec):
    why = kp_codec_missing(codec)
    if why:
        pytest.skip(why)
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, PARTITIONS)
    recs = make_records("kp-" + codec, N_KAFKA_PYTHON, PARTITIONS)
    offsets = kp_produce(cluster.bootstrap, t, recs, codec)
    for p, offs in offsets.items():
        assert offs == list(range(len(offs))), "partition %d acked offsets not 0..n-1" % p
    exp = expected_by_partition(recs)
    got = ck_consume(cluster.bootstrap, t, counts_of(exp))
    check_partitions(exp, got, "kafka-python->confluent %s" % codec)


@pytest.mark.timeout(150)
@pytest.mark.skipif(not node_available(), reason="tests/js/node_modules missing (npm install)")
@pytest.mark.parametrize("codec", CODECS)
def test_kafkajs_produce(cluster, topic_name, codec):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, PARTITIONS)
    tag = "js-" + codec
    res = js_produce(cluster.bootstrap, t, N_FULL, PARTITIONS, codec, tag)
    assert res["count"] == N_FULL
    exp = expected_by_partition(make_records(tag, N_FULL, PARTITIONS))
    got = ck_consume(cluster.bootstrap, t, counts_of(exp))
    check_partitions(exp, got, "kafkajs->confluent %s" % codec)


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_kcat_consumes(cluster, topic_name, codec):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, PARTITIONS)
    recs = make_records("kc-" + codec, 600, PARTITIONS)
    ck_produce(cluster.bootstrap, t, recs, codec)
    exp = expected_by_partition(recs)
    for p in range(PARTITIONS):
        out = kcat("-C", "-b", cluster.bootstrap, "-t", t, "-p", p, "-o", "beginning", "-e",
                   "-f", "%o %k %h %s\n").stdout.decode().splitlines()
        want = ["%d %s %s %s" % (i, k.decode(), ",".join("%s=%s" % (hk, hv.decode())
                                                           for hk, hv in h), v.decode())
                for i, (k, v, h) in enumerate(exp[p])]
        assert out == want, "kcat partition %d: first diff at %r" % (p, next(
            ((a, b) for a, b in zip(out, want) if a != b), (len(out), len(want))))


def test_kcat_produce_roundtrip(cluster, topic_name):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    lines = ["key%d\tvalue %d with some text" % (i, i) for i in range(500)]
    kcat("-P", "-b", cluster.bootstrap, "-t", t, "-p", "0", "-K", "\t", "-z", "lz4",
         input=("\n".join(lines) + "\n").encode())
    got = ck_consume(cluster.bootstrap, t, {0: 500})[0]
    assert [(k.decode(), v.decode()) for _, k, v, _ in got] == [
        tuple(l.split("\t")) for l in lines]


def test_empty_and_null_keys_values(cluster, topic_name):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    recs = [(0, None, b"v-no-key", []), (0, b"k-no-value", None, []), (0, b"", b"", []),
            (0, b"k", b"x" * 100000, [("empty", b""), ("dup", b"1"), ("dup", b"2")])]
    ck_produce(cluster.bootstrap, t, recs, "none")
    got = ck_consume(cluster.bootstrap, t, {0: len(recs)})[0]
    assert [(k, v) for _, k, v, _ in got] == [(k, v) for _, k, v, _ in recs]
    assert got[3][3] == [("empty", b""), ("dup", b"1"), ("dup", b"2")], got[3][3]


def test_consume_from_middle_offset(cluster, topic_name):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    recs = make_records("mid", 1000, 1)
    ck_produce(cluster.bootstrap, t, recs)
    got = ck_consume(cluster.bootstrap, t, {0: 250}, start=750)[0]
    assert [o for o, *_ in got] == list(range(750, 1000))
    assert [k for _, k, _, _ in got] == [k for _, k, _, _ in recs[750:]]
    # an offset past the end resets per auto.offset.reset (earliest) -> from 0
    got = ck_consume(cluster.bootstrap, t, {0: 1000}, start=5000, timeout=15)[0]
    assert got and got[0][0] == 0, got[:1]


@pytest.mark.parametrize("acks", [0, 1, -1])
def test_acks_levels(cluster, topic_name, acks):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 2)
    recs = make_records("acks%d" % acks, 1000, 2)
    ck_produce(cluster.bootstrap, t, recs, "lz4", acks=acks)
    exp = expected_by_partition(recs)
    check_partitions(exp, ck_consume(cluster.bootstrap, t, counts_of(exp)), "acks=%d" % acks)


def test_large_records(cluster, topic_name):
    """Records close to the default 1 MB batch limit, uncompressed and compressed."""
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    recs = [(0, b"big%d" % i, bytes([65 + i]) * (900 * 1024), [("i", b"%d" % i)])
            for i in range(4)]
    ck_produce(cluster.bootstrap, t, recs, "none", **{"batch.size": 1000000})
    ck_produce(cluster.bootstrap, t, recs, "zstd", **{"batch.size": 1000000})
    exp = expected_by_partition(recs + recs)
    check_partitions(exp, ck_consume(cluster.bootstrap, t, {0: 8}), "large records")


def test_fetch_smaller_than_batch(cluster, topic_name):
    """KIP-74: a fetch whose byte limits are below the first batch still returns that batch."""
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    recs = [(0, b"k%d" % i, b"x" * 50000, []) for i in range(20)]
    ck_produce(cluster.bootstrap, t, recs, "none", **{"linger.ms": 100})
    got = ck_consume(cluster.bootstrap, t, {0: 20}, timeout=30,
                     **{"fetch.max.bytes": 1024, "max.partition.fetch.bytes": 1024,
                        "message.max.bytes": 1000,
                        "receive.message.max.bytes": 2000000})
    assert [k for _, k, _, _ in got[0]] == [k for _, k, _, _ in recs]


def test_long_poll_wakes_on_produce(cluster, topic_name):
    """A consumer parked at the end with fetch.wait.max.ms=5000 gets a record produced later
    well before the wait runs out (the fetch is completed by the produce)."""
    import threading
    import time
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    ck_produce(cluster.bootstrap, t, make_records("lp0", 1, 1))
    produced_at = []

    def later():
        time.sleep(1.5)
        produced_at.append(time.monotonic())
        ck_produce(cluster.bootstrap, t, [(0, b"late", b"v", [])], "none", **{"linger.ms": 0})
    th = threading.Thread(target=later)
    th.start()
    try:
        got = ck_consume(cluster.bootstrap, t, {0: 2}, timeout=20,
                         **{"fetch.wait.max.ms": 5000})
        received_at = time.monotonic()
    finally:
        th.join(30)
    assert [k for _, k, _, _ in got[0]][-1] == b"late"
    assert received_at - produced_at[0] < 3.0, "long poll took %.1fs to deliver" % (
        received_at - produced_at[0])


def test_concurrent_producers_one_partition(cluster, topic_name):
    """Four producers at once into one partition: offsets dense and unique, each producer's own
    records in its order."""
    import threading
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    sets = {n: make_records("cp%d" % n, 2000, 1) for n in range(4)}
    errors = []

    def run(n):
        try:
            ck_produce(cluster.bootstrap, t, sets[n], ["none", "gzip", "lz4", "zstd"][n])
        except BaseException as e:  # noqa: B902 -- reported below
            errors.append(e)
    ths = [threading.Thread(target=run, args=(n,)) for n in sets]
    for th in ths:
        th.start()
    for th in ths:
        th.join(90)
    assert not errors, errors
    got = ck_consume(cluster.bootstrap, t, {0: 8000})[0]
    assert [o for o, *_ in got] == list(range(8000))
    for n, recs in sets.items():
        mine = [k for _, k, _, _ in got if k.startswith(b"cp%d-" % n)]
        assert mine == [k for _, k, _, _ in recs], "producer %d order broken" % n
