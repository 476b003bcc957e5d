"""Persistence: produce, SIGTERM (clean exit 0), restart on the same --data-dir: topics,
partition counts, configs and every record are back, and new produces continue the offsets."""

import os

import pytest

from clients import (check_partitions, ck_admin, ck_consume, ck_delete_topic,
                     ck_describe_configs, ck_produce, ck_watermarks, create_topic_ok,
                     expected_by_partition, make_records, wait_topic_gone, wait_topic_ready)


@pytest.mark.timeout(150)
def test_restart_keeps_topics_and_records(minikora, tmp_path, topic_name):
    data = tmp_path / "data"
    data.mkdir()
    mk = minikora(data_dir=data)
    b = mk.bootstrap
    t1, t2 = topic_name("a"), topic_name("b")
    create_topic_ok(b, t1, 3, config={"retention.ms": "7777777"})
    create_topic_ok(b, t2, 1)
    r1 = make_records("p1", 3000, 3)
    r2 = make_records("p2", 500, 1)
    ck_produce(b, t1, r1, "zstd")
    ck_produce(b, t2, r2, "none")
    assert any(os.scandir(data)), "nothing written under --data-dir"

    for round_ in range(2):
        mk.restart()
        b = mk.bootstrap
        wait_topic_ready(b, t1, 3)
        wait_topic_ready(b, t2, 1)
        exp1 = expected_by_partition(r1)
        check_partitions(exp1, ck_consume(b, t1, {p: len(v) for p, v in exp1.items()}),
                         "after restart %d: %s" % (round_ + 1, t1))
        exp2 = expected_by_partition(r2)
        check_partitions(exp2, ck_consume(b, t2, {0: len(r2)}),
                         "after restart %d: %s" % (round_ + 1, t2))
        for p, recs in exp1.items():
            assert ck_watermarks(b, t1, p) == (0, len(recs))

        # new produces continue the offsets
        more = make_records("more%d" % round_, 30, 3)
        offs = ck_produce(b, t1, more, "gzip")
        for p, o in offs.items():
            assert o[0] == len(exp1[p]), "partition %d: first new offset %d, expected %d" % (
                p, o[0], len(exp1[p]))
        r1 = r1 + more

    cfg = ck_describe_configs(b, "topic", t1)
    assert cfg["retention.ms"].value == "7777777", cfg.get("retention.ms")


@pytest.mark.timeout(90)
def test_deleted_topic_stays_deleted(minikora, tmp_path, topic_name):
    data = tmp_path / "data"
    mk = minikora(data_dir=data)
    t = topic_name()
    create_topic_ok(mk.bootstrap, t, 2)
    ck_produce(mk.bootstrap, t, make_records("d", 100, 2))
    assert ck_delete_topic(mk.bootstrap, t) is None
    wait_topic_gone(mk.bootstrap, t)
    mk.restart()
    assert t not in ck_admin(mk.bootstrap).list_topics(timeout=10).topics


@pytest.mark.timeout(60)
def test_empty_data_dir_restart(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(data_dir=data)
    mk.restart()
    assert len(mk.brokers) == 6


@pytest.mark.timeout(60)
def test_ephemeral_leaves_nothing(minikora, topic_name):
    mk = minikora()  # --ephemeral
    t = topic_name()
    create_topic_ok(mk.bootstrap, t, 1)
    ck_produce(mk.bootstrap, t, make_records("e", 10, 1))
    mk.restart()
    assert t not in ck_admin(mk.bootstrap).list_topics(timeout=10).topics


def _produce_in_background(bootstrap, topic, partitions, stop, acked, failed):
    """Produce until `stop` is set; record (partition, offset, key) of every acknowledged
    record in `acked` and every failed delivery in `failed`."""
    import confluent_kafka as ck
    from clients import rdk_conf
    p = ck.Producer(rdk_conf(bootstrap, **{
        "acks": "all", "linger.ms": 2, "enable.idempotence": False,
        "message.timeout.ms": 4000, "retries": 0, "compression.type": "lz4"}))

    def dr(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.key()))
        else:
            failed.append(err)
    i = 0
    while not stop.is_set() and i < 200000:
        try:
            p.produce(topic, key=b"n%d" % i, value=b"value-%d" % i, partition=i % partitions,
                      on_delivery=dr)
            i += 1
        except BufferError:
            pass
        p.poll(0.001 if i % 100 == 0 else 0)
    p.flush(10)


def _check_acked_survived(bootstrap, topic, partitions, acked):
    by_p = {}
    for part, off, key in acked:
        by_p.setdefault(part, {})[off] = key
    counts = {p: ck_watermarks(bootstrap, topic, p)[1] for p in range(partitions)}
    got = ck_consume(bootstrap, topic, counts, timeout=60)
    lost = []
    for p in range(partitions):
        stored = {o: k for o, k, _, _ in got[p]}
        assert sorted(stored) == list(range(counts[p])), "partition %d: offsets not dense" % p
        for off, key in sorted(by_p.get(p, {}).items()):
            if stored.get(off) != key:
                lost.append((p, off, key, stored.get(off)))
    assert not lost, "%d acknowledged records lost or changed after restart, e.g. %r" % (
        len(lost), lost[:5])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_acked_records_survive_stop_during_produce(minikora, tmp_path, topic_name, how):
    """Stop the process while a producer (acks=all) is busy; after a restart on the same data
    dir every acknowledged record is there at its acknowledged offset.  SIGKILL is a process
    crash (not a machine crash): data the broker had written before acking must survive."""
    import threading
    import time
    mk = minikora(data_dir=tmp_path / "data")
    t = topic_name()
    create_topic_ok(mk.bootstrap, t, 2)
    stop, acked, failed = threading.Event(), [], []
    th = threading.Thread(target=_produce_in_background,
                          args=(mk.bootstrap, t, 2, stop, acked, failed))
    th.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 5000 and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded: wait for the producer to get going
        assert len(acked) >= 5000, "producer got only %d acks in 20 s (%d failures)" % (
            len(acked), len(failed))
        if how == "sigterm":
            mk.stop()  # asserts exit 0
        else:
            mk.kill()
    finally:
        stop.set()
        th.join(30)
    n_acked = len(acked)
    mk.start()
    wait_topic_ready(mk.bootstrap, t, 2)
    _check_acked_survived(mk.bootstrap, t, 2, list(acked[:n_acked]))
