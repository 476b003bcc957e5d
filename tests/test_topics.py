"""Create / describe / delete topics through four clients (confluent-kafka AdminClient,
kafka-python KafkaAdminClient, kafkajs admin, kcat auto-create), and the error answers Kafka
gives: INVALID_TOPIC_EXCEPTION (17), INVALID_REPLICATION_FACTOR (38), TOPIC_ALREADY_EXISTS (36),
UNKNOWN_TOPIC_OR_PARTITION (3), INVALID_PARTITIONS (37)."""

import pytest
import confluent_kafka as ck
from confluent_kafka.admin import ConfigResource

import kwire
from clients import (ck_admin, ck_create_topic, ck_create_topics, ck_delete_topic,
                     ck_describe_configs, ck_produce, ck_result, ck_watermarks, create_topic_ok,
                     js_admin, kcat, kp_servers, make_records, node_available, wait_topic_gone,
                     wait_topic_ready)

E = ck.KafkaError
INVALID_PARTITIONS = 37
BAD_NAMES = ["has space", "a" * 250, ".", "..", "bad/slash", "semi;colon", "caf\u00e9", "star*"]


def listed_topics(bootstrap):
    return set(ck_admin(bootstrap).list_topics(timeout=10).topics)


def js_error_types(res):
    """All kafkajs error `type`s in a failed js_admin result (aggregate errors nest)."""
    out = []

    def walk(e):
        if not e:
            return
        if e.get("type"):
            out.append(e["type"])
        for sub in e.get("errors") or []:
            walk(sub)
        walk(e.get("cause"))
        walk(e.get("originalError"))
    walk(res.get("error"))
    return out


# ---------------------------------------------------------------------------------------------
# confluent-kafka AdminClient
# ---------------------------------------------------------------------------------------------
def test_ck_create_describe_delete(cluster, topic_name):
    t = topic_name()
    assert ck_create_topic(cluster.bootstrap, t, partitions=3) is None
    md = wait_topic_ready(cluster.bootstrap, t, 3)
    tm = md.topics[t]
    assert sorted(tm.partitions) == [0, 1, 2]
    for p in tm.partitions.values():
        assert p.leader in md.brokers
        assert list(p.replicas) == [p.leader], (p.replicas, p.leader)  # RF 1
        assert list(p.isrs) == [p.leader]
    assert t in listed_topics(cluster.bootstrap)

    admin = ck_admin(cluster.bootstrap)
    res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t)])
    cfg = list(res.values())[0].result(timeout=20)
    assert cfg, "DescribeConfigs returned no entries for topic %s" % t

    fut = admin.delete_topics([t], operation_timeout=10)[t]
    assert ck_result(fut) is None
    wait_topic_gone(cluster.bootstrap, t)


def test_ck_create_with_topic_config(cluster, topic_name):
    t = topic_name()
    assert ck_create_topic(cluster.bootstrap, t, 1, config={"retention.ms": "1234567",
                                                            "cleanup.policy": "delete"}) is None
    wait_topic_ready(cluster.bootstrap, t, 1)
    cfg = ck_describe_configs(cluster.bootstrap, "topic", t)
    assert "retention.ms" in cfg, sorted(cfg)
    assert cfg["retention.ms"].value == "1234567", cfg["retention.ms"]


def test_ck_describe_broker_config(cluster):
    cfg = ck_describe_configs(cluster.bootstrap, "broker", "1")
    assert cfg, "DescribeConfigs returned no entries for broker 1"


def test_ck_default_partitions_and_rf(cluster, topic_name):
    """KIP-464: num_partitions = -1 and replication_factor = -1 mean the broker defaults
    (num.partitions = 1, default.replication.factor = 3 = one replica per AZ of a cell)."""
    t = topic_name()
    err = ck_create_topic(cluster.bootstrap, t, partitions=-1, rf=-1)
    assert err is None, err
    md = wait_topic_ready(cluster.bootstrap, t, 1)
    assert len(md.topics[t].partitions[0].replicas) == 3


def test_ck_rf3_replicas_in_distinct_azs(cluster, topic_name):
    """RF 3: every partition has three replicas in three AZs, leader first, all in sync."""
    from kafka import KafkaAdminClient  # kafka-python shows racks
    t = topic_name()
    assert ck_create_topic(cluster.bootstrap, t, 6, rf=3) is None
    md = wait_topic_ready(cluster.bootstrap, t, 6)
    racks = {b.id: None for b in md.brokers.values()}
    adm = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        for b in adm.describe_cluster()["brokers"]:
            racks[b["node_id"]] = b["rack"]
    finally:
        adm.close()
    leaders = set()
    for p in md.topics[t].partitions.values():
        assert len(p.replicas) == 3, p.replicas
        assert len({racks[r] for r in p.replicas}) == 3, (p.replicas, racks)
        assert p.leader == p.replicas[0]
        assert sorted(p.isrs) == sorted(p.replicas)
        leaders.add(p.leader)
    assert len(leaders) == 3, "leaders should spread over the cell's brokers: %r" % leaders


def test_ck_validate_only(cluster, topic_name):
    t = topic_name()
    assert ck_create_topic(cluster.bootstrap, t, 2, validate_only=True) is None
    assert t not in listed_topics(cluster.bootstrap)
    err = ck_create_topic(cluster.bootstrap, t, 2, rf=4, validate_only=True)
    assert err is not None and err.code() == E.INVALID_REPLICATION_FACTOR, err
    # and the topic can still be created for real afterwards
    create_topic_ok(cluster.bootstrap, t, 2)


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n[:12]))
def test_ck_bad_topic_names(cluster, name):
    err = ck_create_topic(cluster.bootstrap, name, 1)
    assert err is not None and err.code() == E.TOPIC_EXCEPTION, (name, err)
    assert name not in listed_topics(cluster.bootstrap)


@pytest.mark.parametrize("rf", [4, 7])
def test_ck_replication_factor_refused(cluster, topic_name, rf):
    """RF 4: more than a cell's brokers (one per AZ); RF 7: more than the 6 brokers."""
    t = topic_name()
    err = ck_create_topic(cluster.bootstrap, t, 1, rf=rf)
    assert err is not None and err.code() == E.INVALID_REPLICATION_FACTOR, err
    assert t not in listed_topics(cluster.bootstrap)


def test_ck_zero_partitions_refused(cluster, topic_name):
    t = topic_name()
    err = ck_create_topic(cluster.bootstrap, t, 0)
    assert err is not None and err.code() == INVALID_PARTITIONS, err


def test_ck_duplicate(cluster, topic_name):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 2)
    err = ck_create_topic(cluster.bootstrap, t, 2)
    assert err is not None and err.code() == E.TOPIC_ALREADY_EXISTS, err


def test_ck_delete_unknown(cluster, topic_name):
    t = topic_name()
    err = ck_delete_topic(cluster.bootstrap, t)
    assert err is not None and err.code() == E.UNKNOWN_TOPIC_OR_PART, err


def test_ck_mixed_batch_create(cluster, topic_name):
    """One CreateTopics request, one good and one bad topic: per-topic results."""
    good, bad = topic_name("good"), "bad name"
    from confluent_kafka.admin import NewTopic
    res = ck_create_topics(cluster.bootstrap, [NewTopic(good, 1, 1), NewTopic(bad, 1, 1)])
    assert res[good] is None, res
    err = res[bad]
    assert err is not None and err.code() == E.TOPIC_EXCEPTION, err
    wait_topic_ready(cluster.bootstrap, good, 1)


def test_delete_removes_data(cluster, topic_name):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 1)
    ck_produce(cluster.bootstrap, t, make_records("old", 10, 1))
    assert ck_watermarks(cluster.bootstrap, t, 0) == (0, 10)
    assert ck_delete_topic(cluster.bootstrap, t) is None
    wait_topic_gone(cluster.bootstrap, t)
    create_topic_ok(cluster.bootstrap, t, 1)
    assert ck_watermarks(cluster.bootstrap, t, 0) == (0, 0), "recreated topic has old data"


def test_many_partitions_leaders_valid(cluster, topic_name):
    t = topic_name()
    create_topic_ok(cluster.bootstrap, t, 24)
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        md = c.metadata([t])
    (tm,) = md["topics"]
    assert tm["error"] == 0 and len(tm["partitions"]) == 24
    leaders = {p["leader"] for p in tm["partitions"]}
    assert leaders <= {1, 2, 3, 4, 5, 6}, leaders
    assert len(leaders) > 1, "all 24 partitions led by one broker: %r" % leaders


# ---------------------------------------------------------------------------------------------
# kafka-python KafkaAdminClient
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def kp_admin(cluster):
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=kp_servers(cluster.bootstrap), request_timeout_ms=15000)
    yield a
    a.close()


def test_kp_create_describe_delete(cluster, kp_admin, topic_name):
    from kafka.admin import NewTopic, ConfigResource as KpConfigResource, ConfigResourceType
    t = topic_name()
    kp_admin.create_topics([NewTopic(t, 2, 1)])
    wait_topic_ready(cluster.bootstrap, t, 2)
    assert t in kp_admin.list_topics()
    (d,) = kp_admin.describe_topics([t])
    assert d["error_code"] == 0 and len(d["partitions"]) == 2, d
    cfg = kp_admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, t)])
    assert cfg and cfg[0].resources[0][0] == 0, cfg  # error_code of the resource
    kp_admin.delete_topics([t])
    wait_topic_gone(cluster.bootstrap, t)


def test_kp_validate_only(cluster, kp_admin, topic_name):
    from kafka.admin import NewTopic
    t = topic_name()
    kp_admin.create_topics([NewTopic(t, 1, 1)], validate_only=True)
    assert t not in listed_topics(cluster.bootstrap)


def test_kp_errors(cluster, kp_admin, topic_name):
    from kafka.admin import NewTopic
    from kafka import errors as ke
    t = topic_name()
    kp_admin.create_topics([NewTopic(t, 1, 1)])
    with pytest.raises(ke.TopicAlreadyExistsError):
        kp_admin.create_topics([NewTopic(t, 1, 1)])
    with pytest.raises(ke.InvalidTopicError):
        kp_admin.create_topics([NewTopic("bad name", 1, 1)])
    with pytest.raises(ke.InvalidReplicationFactorError):
        kp_admin.create_topics([NewTopic(topic_name(), 1, 4)])
    with pytest.raises(ke.UnknownTopicOrPartitionError):
        kp_admin.delete_topics([topic_name("never-created")])


# ---------------------------------------------------------------------------------------------
# kafkajs admin
# ---------------------------------------------------------------------------------------------
needs_node = pytest.mark.skipif(not node_available(),
                                reason="tests/js/node_modules missing (cd tests/js && npm install)")


@needs_node
def test_js_create_describe_delete(cluster, topic_name):
    t = topic_name()
    b = cluster.bootstrap
    res = js_admin(b, "createTopics", {"topics": [{"topic": t, "numPartitions": 4,
                                                   "replicationFactor": 1}]})
    assert res["ok"] and res["result"] is True, res
    res = js_admin(b, "fetchTopicMetadata", {"topics": [t]})
    assert res["ok"], res
    (tm,) = res["result"]["topics"]
    assert sorted(p["partitionId"] for p in tm["partitions"]) == [0, 1, 2, 3], tm
    res = js_admin(b, "listTopics")
    assert res["ok"] and t in res["result"], res
    res = js_admin(b, "describeConfigs", {"resources": [{"type": 2, "name": t}],
                                         "includeSynonyms": False})
    assert res["ok"], res
    (r,) = res["result"]["resources"]
    assert r["errorCode"] == 0 and r["configEntries"], r
    res = js_admin(b, "deleteTopics", {"topics": [t], "timeout": 10000})
    assert res["ok"], res
    wait_topic_gone(b, t)


@needs_node
def test_js_validate_only(cluster, topic_name):
    t = topic_name()
    res = js_admin(cluster.bootstrap, "createTopics",
                   {"validateOnly": True, "waitForLeaders": False,
                    "topics": [{"topic": t, "numPartitions": 1, "replicationFactor": 1}]})
    assert res["ok"], res
    assert t not in listed_topics(cluster.bootstrap)


@needs_node
def test_js_errors(cluster, topic_name):
    b = cluster.bootstrap
    t = topic_name()
    res = js_admin(b, "createTopics", {"topics": [{"topic": t, "numPartitions": 1}]})
    assert res["ok"] and res["result"] is True, res
    # kafkajs maps an all-TOPIC_ALREADY_EXISTS answer to `false`
    res = js_admin(b, "createTopics", {"topics": [{"topic": t, "numPartitions": 1}]})
    assert res["ok"] and res["result"] is False, res
    res = js_admin(b, "createTopics", {"waitForLeaders": False, "topics": [
        {"topic": topic_name(), "numPartitions": 1, "replicationFactor": 4}]})
    assert not res["ok"] and "INVALID_REPLICATION_FACTOR" in js_error_types(res), res
    res = js_admin(b, "createTopics", {"waitForLeaders": False,
                                       "topics": [{"topic": "bad name", "numPartitions": 1}]})
    assert not res["ok"] and "INVALID_TOPIC_EXCEPTION" in js_error_types(res), res
    res = js_admin(b, "deleteTopics", {"topics": [topic_name("never")], "timeout": 5000})
    assert not res["ok"] and "UNKNOWN_TOPIC_OR_PARTITION" in js_error_types(res), res


# ---------------------------------------------------------------------------------------------
# kcat: auto-create by producing (auto.create.topics.enable defaults to true)
# ---------------------------------------------------------------------------------------------
def test_kcat_autocreate_by_produce(cluster, topic_name):
    t = topic_name()
    kcat("-P", "-b", cluster.bootstrap, "-t", t, "-K", ":", input=b"k1:one\nk2:two\nk3:three\n")
    md = wait_topic_ready(cluster.bootstrap, t, 1)  # num.partitions defaults to 1
    assert len(md.topics[t].partitions) == 1
    out = kcat("-C", "-b", cluster.bootstrap, "-t", t, "-p", "0", "-o", "beginning", "-e",
               "-f", "%k=%s@%o\n").stdout.decode()
    assert out.splitlines() == ["k1=one@0", "k2=two@1", "k3=three@2"], out
