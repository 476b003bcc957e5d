"""auto.create.topics.enable: on by default (Metadata with AllowAutoTopicCreation creates the
topic with num.partitions partitions), off via --set -> UNKNOWN_TOPIC_OR_PARTITION."""

import time

import pytest
import confluent_kafka as ck

import kwire
from clients import ck_admin, ck_consume, kcat, rdk_conf, wait_topic_ready


def produce_one(bootstrap, topic, timeout=15):
    """-> KafkaError or None for one record produced by librdkafka."""
    p = ck.Producer(rdk_conf(bootstrap, **{"message.timeout.ms": timeout * 1000,
                                           "enable.idempotence": False}))
    res = []
    p.produce(topic, key=b"k", value=b"v", on_delivery=lambda e, m: res.append(e))
    p.flush(timeout + 5)
    assert res, "no delivery report"
    return res[0]


def test_on_by_default_produce(cluster):
    t = "auto-on-%d" % time.time_ns()
    assert produce_one(cluster.bootstrap, t) is None
    wait_topic_ready(cluster.bootstrap, t, 1)
    got = ck_consume(cluster.bootstrap, t, {0: 1})[0]
    assert [(k, v) for _, k, v, _ in got] == [(b"k", b"v")]


def test_on_raw_metadata(cluster):
    t = "auto-raw-%d" % time.time_ns()
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        c.metadata([t], allow_auto_create=True)
    wait_topic_ready(cluster.bootstrap, t, 1)


def test_on_but_not_requested(cluster):
    """Metadata v4+ with AllowAutoTopicCreation=false must not create the topic."""
    t = "auto-noreq-%d" % time.time_ns()
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        md = c.metadata([t], allow_auto_create=False)
    (tm,) = md["topics"]
    assert tm["error"] == kwire.UNKNOWN_TOPIC_OR_PARTITION, tm
    assert t not in ck_admin(cluster.bootstrap).list_topics(timeout=10).topics


def test_num_partitions_setting(minikora):
    mk = minikora("--set", "num.partitions=4")
    t = "auto-np-%d" % time.time_ns()
    assert produce_one(mk.bootstrap, t) is None
    wait_topic_ready(mk.bootstrap, t, 4)


def test_off(minikora):
    mk = minikora("--set", "auto.create.topics.enable=false")
    t = "auto-off-%d" % time.time_ns()
    host, port = mk.brokers[0]
    with kwire.Conn(host, port) as c:
        md = c.metadata([t], allow_auto_create=True)
    (tm,) = md["topics"]
    assert tm["error"] == kwire.UNKNOWN_TOPIC_OR_PARTITION, tm

    err = produce_one(mk.bootstrap, t, timeout=5)
    assert err is not None and err.code() in (ck.KafkaError.UNKNOWN_TOPIC_OR_PART,
                                              ck.KafkaError._UNKNOWN_TOPIC,
                                              ck.KafkaError._MSG_TIMED_OUT), err
    kcat("-P", "-b", mk.bootstrap, "-t", t, "-p", "0", "-X", "message.timeout.ms=5000",
         input=b"x\n", check=False, timeout=30)
    assert t not in ck_admin(mk.bootstrap).list_topics(timeout=10).topics

    # explicit creation still works
    from clients import create_topic_ok
    create_topic_ok(mk.bootstrap, t, 1)
    assert produce_one(mk.bootstrap, t) is None


def test_off_via_config_file(minikora, tmp_path):
    cfg = tmp_path / "server.properties"
    cfg.write_text("# minikora test config\nauto.create.topics.enable=false\nnum.partitions=2\n")
    mk = minikora("--config", cfg)
    t = "auto-cfg-%d" % time.time_ns()
    host, port = mk.brokers[0]
    with kwire.Conn(host, port) as c:
        md = c.metadata([t], allow_auto_create=True)
    assert md["topics"][0]["error"] == kwire.UNKNOWN_TOPIC_OR_PARTITION, md
    from clients import ck_create_topic
    assert ck_create_topic(mk.bootstrap, t, partitions=-1) is None  # num.partitions from file
    wait_topic_ready(mk.bootstrap, t, 2)
