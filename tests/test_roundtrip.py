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
