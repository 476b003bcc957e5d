"""The admin APIs of issue 15, with real clients where a client has the call:
* CreatePartitions: confluent-kafka AdminClient.create_partitions, kafka-python create_partitions,
  kafkajs createPartitions;
* AlterConfigs / DescribeConfigs: confluent-kafka alter_configs / describe_configs (librdkafka
  2.0.2 in python3-confluent-kafka 1.7), kafka-python alter_configs, kafkajs alterConfigs;
* DeleteRecords: kafkajs deleteTopicRecords (neither confluent-kafka 1.7 nor kafka-python 2.0.2
  has delete_records);
* AlterPartitionReassignments / ListPartitionReassignments: kafkajs;
* kwire frames where no installed client has the call: IncrementalAlterConfigs (confluent-kafka
  has it from 2.2, kafka-python and kafkajs not at all), AlterConfigs on the cluster-wide default
  (resource name "", which confluent-kafka 1.7 refuses to send), ElectLeaders, DescribeLogDirs,
  DescribeTopicPartitions, GetTelemetrySubscriptions / PushTelemetry.
Also: every Kafka topic config accepted and validated, dynamic settings in effect at once
(min.insync.replicas, retention, cleanup.policy), MaxTimestamp recomputed on append, zstd refused
below Produce v7 and Fetch v10, and a topic visible from every broker once a write to it is
acknowledged."""

import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

import kwire
from clients import (ck_admin, ck_consumer, ck_produce, ck_result, ck_watermarks, js_admin,
                     kp_servers, node_available, wait_topic_ready)
from cluster import Cluster

TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
SRC_TOPIC, SRC_BROKER, SRC_DEFAULT_BROKER, SRC_STATIC, SRC_DEFAULT = 1, 2, 3, 4, 5

needs_node = pytest.mark.skipif(not node_available(), reason="node/kafkajs not available")


@pytest.fixture(scope="module")
def mk():
    with Cluster("--set", "log.retention.check.interval.ms=200", "--set", "num.partitions=1",
                 "--set", "auto.leader.rebalance.enable=false", name="admin_apis", control=True) as c:
        yield c


def create(mk, name, partitions=1, rf=3, config=None):
    a = ck_admin(mk.bootstrap)
    err = ck_result(a.create_topics([NewTopic(name, partitions, rf, config=config or {})],
                                    operation_timeout=10)[name])
    assert err is None, err
    wait_topic_ready(mk.bootstrap, name, partitions)


def metadata(mk, name, broker=None):
    with mk.wire(broker) as c:
        md = c.metadata([name])
    (t,) = md["topics"]
    return t


def call(mk, api, version, body, broker=None):
    with mk.wire(broker) as c:
        return c.call(api, version, body, flexible_req=True)


def incr(mk, resources, validate_only=False):
    return kwire.parse_alter_configs(call(mk, kwire.INCREMENTAL_ALTER_CONFIGS, 1,
                                          kwire.incremental_alter_configs_body(resources, validate_only)))


def describe(mk, rtype, name, keys=None):
    (res,) = kwire.parse_describe_configs(call(mk, kwire.DESCRIBE_CONFIGS, 4,
                                               kwire.describe_configs_body([(rtype, name, keys)])))
    assert res[0] == 0, res
    return res[4]


def az_of(mk, broker):
    return {b["node_id"]: b["rack"] for b in mk.wire().metadata([])["brokers"]}[broker]


# ---------------------------------------------------------------------------------------------
# CreatePartitions
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_create_partitions_real_clients(mk, topic_name):
    name = topic_name()
    create(mk, name, 2)
    a = ck_admin(mk.bootstrap)
    # validate-only changes nothing
    assert ck_result(a.create_partitions([NewPartitions(name, 4)], validate_only=True)[name]) is None
    assert len(metadata(mk, name)["partitions"]) == 2
    assert ck_result(a.create_partitions([NewPartitions(name, 4)])[name]) is None
    t = metadata(mk, name)
    assert len(t["partitions"]) == 4
    cells = {b["node_id"]: b for b in mk.wire().metadata([])["brokers"]}
    for p in t["partitions"]:
        assert p["error"] == 0 and p["leader"] in p["replicas"], p
        azs = {cells[b]["rack"] for b in p["replicas"]}
        assert len(azs) == len(p["replicas"]) == 3, p  # one replica per AZ
    # shrinking or staying: INVALID_PARTITIONS, as Kafka
    err = ck_result(a.create_partitions([NewPartitions(name, 3)])[name])
    assert err is not None and err.code() == ck.KafkaError.INVALID_PARTITIONS, err
    # kafka-python grows it again
    from kafka.admin import KafkaAdminClient, NewPartitions as KpNewPartitions
    kp = KafkaAdminClient(bootstrap_servers=kp_servers(mk.bootstrap), request_timeout_ms=10000)
    try:
        res = kp.create_partitions({name: KpNewPartitions(6)})
        assert all(e == 0 for _, e, _ in res.topic_errors), res
    finally:
        kp.close()
    assert len(metadata(mk, name)["partitions"]) == 6
    # the new partitions take records and serve them
    recs = [(p, b"k%d" % p, b"v%d" % p, None) for p in range(6)]
    ck_produce(mk.bootstrap, name, recs)
    for p in range(6):
        assert ck_watermarks(mk.bootstrap, name, p) == (0, 1)


@pytest.mark.timeout(60)
def test_create_partitions_assignment_rules(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    same_az = [b for b in range(1, 7) if az_of(mk, b) == az_of(mk, 1)]
    body = (kwire.compact_array([kwire.compact_string(name) + kwire.i32(2) + kwire.compact_array(
        [kwire.compact_array([kwire.i32(b) for b in [1, same_az[1], 2]]) + kwire.TAGS]) + kwire.TAGS])
        + kwire.i32(10000) + kwire.boolean(False) + kwire.TAGS)
    r = kwire.Reader(call(mk, kwire.CREATE_PARTITIONS, 2, body))
    r.i32()
    (res,) = r.compact_array(lambda rr: (rr.compact_string(), rr.i16(), rr.compact_string(), rr.tags()))
    assert res[1] == kwire.INVALID_REPLICA_ASSIGNMENT and "one replica per AZ" in res[2], res
    assert len(metadata(mk, name)["partitions"]) == 1


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------
KAFKA_TOPIC_CONFIGS = [
    "cleanup.policy", "compression.type", "compression.gzip.level", "compression.lz4.level",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages",
    "flush.ms", "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.downconversion.enable",
    "message.format.version", "message.timestamp.after.max.ms", "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms", "message.timestamp.type", "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "min.insync.replicas", "preallocate", "remote.storage.enable",
    "retention.bytes", "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms",
    "segment.ms", "unclean.leader.election.enable", "remote.log.copy.disable",
    "remote.log.delete.on.disable"]


@pytest.mark.timeout(60)
def test_every_kafka_topic_config_accepted_and_validated(mk, topic_name):
    name = topic_name()
    good = {"delete.retention.ms": "1000", "min.compaction.lag.ms": "5", "min.cleanable.dirty.ratio": "0.3",
            "compression.zstd.level": "7", "leader.replication.throttled.replicas": "0:1,1:2",
            "message.format.version": "3.0-IV1", "segment.jitter.ms": "10", "preallocate": "true"}
    create(mk, name, 1, config=good)
    cfg = describe(mk, TOPIC, name)
    assert set(KAFKA_TOPIC_CONFIGS) <= set(cfg), set(KAFKA_TOPIC_CONFIGS) - set(cfg)
    for k, v in good.items():
        assert cfg[k]["value"] == v and cfg[k]["source"] == SRC_TOPIC, (k, cfg[k])
    a = ck_admin(mk.bootstrap)
    for k, v in [("min.cleanable.dirty.ratio", "2"), ("compression.zstd.level", "99"),
                 ("retention.ms", "-7"), ("segment.bytes", "10"), ("cleanup.policy", "shred"),
                 ("leader.replication.throttled.replicas", "x:y"), ("no.such.config", "1")]:
        bad = topic_name("bad")
        err = ck_result(a.create_topics([NewTopic(bad, 1, 1, config={k: v})])[bad])
        assert err is not None and err.code() == ck.KafkaError.INVALID_CONFIG, (k, v, err)


@pytest.mark.timeout(60)
def test_alter_and_describe_configs_real_clients(mk, topic_name):
    name = topic_name()
    create(mk, name, 1, config={"delete.retention.ms": "1000"})
    a = ck_admin(mk.bootstrap)
    # legacy AlterConfigs replaces the whole override set (delete.retention.ms goes)
    r = ConfigResource("topic", name, set_config={"retention.ms": "123456", "segment.bytes": "1048576"})
    assert ck_result(a.alter_configs([r])[r]) is None
    res = a.describe_configs([ConfigResource("topic", name)])
    cfg = list(res.values())[0].result(timeout=10)
    assert cfg["retention.ms"].value == "123456" and cfg["retention.ms"].source == SRC_TOPIC
    syn = [(s.name, s.value, s.source) for s in cfg["retention.ms"].synonyms.values()]
    assert syn[0] == ("retention.ms", "123456", SRC_TOPIC) and syn[-1][0] == "log.retention.ms", syn
    assert cfg["delete.retention.ms"].source == SRC_DEFAULT
    # bad values are refused and nothing changes
    r = ConfigResource("topic", name, set_config={"retention.ms": "soon"})
    err = ck_result(a.alter_configs([r])[r])
    assert err is not None and err.code() == ck.KafkaError.INVALID_CONFIG, err
    assert describe(mk, TOPIC, name, ["retention.ms"])["retention.ms"]["value"] == "123456"
    # kafka-python
    from kafka.admin import ConfigResource as KpRes, ConfigResourceType, KafkaAdminClient
    kp = KafkaAdminClient(bootstrap_servers=kp_servers(mk.bootstrap), request_timeout_ms=10000)
    try:
        out = kp.alter_configs([KpRes(ConfigResourceType.TOPIC, name, configs={"retention.ms": "777"})])
        assert all(r[0] == 0 for r in out.resources), out
    finally:
        kp.close()
    assert describe(mk, TOPIC, name, ["retention.ms"])["retention.ms"]["value"] == "777"


@pytest.mark.timeout(60)
def test_incremental_alter_configs_and_sources(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    (res,) = incr(mk, [(TOPIC, name, [("retention.ms", SET, "5000"),
                                      ("leader.replication.throttled.replicas", APPEND, "0:1")])])
    assert res[0] == 0, res
    (res,) = incr(mk, [(TOPIC, name, [("leader.replication.throttled.replicas", APPEND, "0:2")])])
    assert res[0] == 0, res
    cfg = describe(mk, TOPIC, name)
    assert cfg["leader.replication.throttled.replicas"]["value"] == "0:1,0:2"
    (res,) = incr(mk, [(TOPIC, name, [("leader.replication.throttled.replicas", SUBTRACT, "0:1"),
                                      ("retention.ms", DELETE, None)])])
    assert res[0] == 0, res
    cfg = describe(mk, TOPIC, name)
    assert cfg["leader.replication.throttled.replicas"]["value"] == "0:2"
    assert cfg["retention.ms"]["source"] == SRC_DEFAULT
    # errors: APPEND on a non-list, duplicate keys, read-only broker setting, unknown topic
    (res,) = incr(mk, [(TOPIC, name, [("retention.ms", APPEND, "1")])])
    assert res[0] == kwire.INVALID_CONFIG, res
    (res,) = incr(mk, [(TOPIC, name, [("retention.ms", SET, "1"), ("retention.ms", SET, "2")])])
    assert res[0] == kwire.INVALID_REQUEST, res
    (res,) = incr(mk, [(BROKER, "1", [("broker.id", SET, "9")])])
    assert res[0] == kwire.INVALID_CONFIG, res
    (res,) = incr(mk, [(TOPIC, name + "-nope", [("retention.ms", SET, "1")])])
    assert res[0] == kwire.UNKNOWN_TOPIC_OR_PARTITION, res
    # broker settings: per broker (DYNAMIC_BROKER_CONFIG) and cluster-wide default
    (res,) = incr(mk, [(BROKER, "2", [("log.retention.bytes", SET, "1000000000")])])
    assert res[0] == 0, res
    (res,) = incr(mk, [(BROKER, "", [("log.retention.ms", SET, "86400000")])])
    assert res[0] == 0, res
    b2 = describe(mk, BROKER, "2", ["log.retention.bytes", "log.retention.ms",
                                    "log.retention.check.interval.ms", "message.max.bytes"])
    assert b2["log.retention.bytes"]["source"] == SRC_BROKER, b2
    assert b2["log.retention.ms"]["source"] == SRC_DEFAULT_BROKER, b2
    assert b2["log.retention.check.interval.ms"]["source"] == SRC_STATIC, b2
    assert b2["message.max.bytes"]["source"] == SRC_DEFAULT, b2
    assert [s[2] for s in b2["log.retention.ms"]["synonyms"]] == [SRC_DEFAULT_BROKER, SRC_DEFAULT]
    dflt = describe(mk, BROKER, "")
    assert set(dflt) == {"log.retention.ms"}, dflt
    # a topic's default follows the cluster-wide default
    t = describe(mk, TOPIC, name, ["retention.ms"])["retention.ms"]
    assert t["value"] == "86400000" and t["source"] == SRC_DEFAULT_BROKER, t
    (res,) = incr(mk, [(BROKER, "", [("log.retention.ms", DELETE, None)]),
                       (BROKER, "2", [("log.retention.bytes", DELETE, None)])][:1])
    assert res[0] == 0
    (res,) = incr(mk, [(BROKER, "2", [("log.retention.bytes", DELETE, None)])])
    assert res[0] == 0
    assert describe(mk, TOPIC, name, ["retention.ms"])["retention.ms"]["source"] == SRC_DEFAULT


@pytest.mark.timeout(60)
def test_dynamic_settings_survive_a_restart(minikora, tmp_path, topic_name):
    mk = minikora(data_dir=str(tmp_path / "data"))
    name = topic_name()
    create(mk, name, 1, rf=1)
    assert incr(mk, [(TOPIC, name, [("retention.ms", SET, "4242")])])[0][0] == 0
    assert incr(mk, [(BROKER, "", [("log.segment.bytes", SET, "2097152")])])[0][0] == 0
    assert incr(mk, [(BROKER, "3", [("minikora.broker.quota.bytes.in.per.sec", SET, "5000000")])])[0][0] == 0
    mk.restart()
    assert describe(mk, TOPIC, name, ["retention.ms"])["retention.ms"]["value"] == "4242"
    seg = describe(mk, TOPIC, name, ["segment.bytes"])["segment.bytes"]
    assert seg["value"] == "2097152" and seg["source"] == SRC_DEFAULT_BROKER, seg
    q = describe(mk, BROKER, "3", ["minikora.broker.quota.bytes.in.per.sec"])
    assert q["minikora.broker.quota.bytes.in.per.sec"]["value"] == "5000000"


@pytest.mark.timeout(60)
def test_min_insync_replicas_takes_effect(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    leader = metadata(mk, name)["partitions"][0]["leader"]
    batch = kwire.record_batch([(b"k", b"v", [])])
    with mk.wire(leader) as c:
        assert c.produce_one(name, 0, batch, acks=-1)[0] == 0
        assert incr(mk, [(TOPIC, name, [("min.insync.replicas", SET, "4")])])[0][0] == 0
        assert c.produce_one(name, 0, batch, acks=-1)[0] == kwire.NOT_ENOUGH_REPLICAS
        assert incr(mk, [(TOPIC, name, [("min.insync.replicas", DELETE, None)])])[0][0] == 0
        assert c.produce_one(name, 0, batch, acks=-1)[0] == 0


def wait_for(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.timeout(60)
def test_retention_and_cleanup_policy_take_effect(mk, topic_name):
    name = topic_name()
    create(mk, name, 1, config={"segment.bytes": "1024"})
    leader = metadata(mk, name)["partitions"][0]["leader"]
    with mk.wire(leader) as c:
        for i in range(20):
            assert c.produce_one(name, 0, kwire.record_batch([(b"k", b"x" * 200, [])]))[0] == 0
    assert ck_watermarks(mk.bootstrap, name, 0) == (0, 20)
    # compact only: retention keeps everything
    assert incr(mk, [(TOPIC, name, [("cleanup.policy", SET, "compact"),
                                    ("retention.bytes", SET, "1")])])[0][0] == 0
    time.sleep(0.6)  # three retention passes (every 200 ms) that must not delete
    assert ck_watermarks(mk.bootstrap, name, 0)[0] == 0
    # delete again: the next pass moves the log start
    assert incr(mk, [(TOPIC, name, [("cleanup.policy", SET, "delete")])])[0][0] == 0
    wait_for(lambda: ck_watermarks(mk.bootstrap, name, 0)[0] > 0, "retention to delete segments")


# ---------------------------------------------------------------------------------------------
# DeleteRecords
# ---------------------------------------------------------------------------------------------
def delete_records(mk, name, partition, offset, broker):
    return kwire.parse_delete_records(call(mk, kwire.DELETE_RECORDS, 2, kwire.delete_records_body(
        [(name, [(partition, offset)])]), broker))[(name, partition)]


@needs_node
@pytest.mark.timeout(90)
def test_delete_records(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    recs = [(0, b"k%d" % i, b"v%d" % i, None) for i in range(10)]
    ck_produce(mk.bootstrap, name, recs)
    res = js_admin(mk.bootstrap, "deleteTopicRecords", {"topic": name, "partitions": [{"partition": 0, "offset": "4"}]})
    assert res["ok"], res
    assert ck_watermarks(mk.bootstrap, name, 0) == (4, 10)
    leader = metadata(mk, name)["partitions"][0]["leader"]
    # kwire: the low watermark; below the start is a no-op; past the HW is refused; -1 = HW
    assert delete_records(mk, name, 0, 6, leader) == (6, 0)
    assert delete_records(mk, name, 0, 2, leader) == (6, 0)
    assert delete_records(mk, name, 0, 11, leader)[1] == kwire.OFFSET_OUT_OF_RANGE
    other = next(b for b in range(1, 7) if b != leader)
    assert delete_records(mk, name, 0, 7, other)[1] == kwire.NOT_LEADER_OR_FOLLOWER
    with mk.wire(leader) as c:
        (_, _, err, _, off), = c.list_offsets(name, [(0, kwire.EARLIEST)])
        assert (err, off) == (0, 6)
        assert c.fetch(name, 0, 5)[0]["error"] == kwire.OFFSET_OUT_OF_RANGE
    # the followers' log starts follow: after a move of the lead, earliest is still 6
    reps = metadata(mk, name)["partitions"][0]["replicas"]
    dirs = {}
    for b in reps:
        err, ds = kwire.parse_describe_log_dirs(call(mk, kwire.DESCRIBE_LOG_DIRS, 4,
                                                     kwire.describe_log_dirs_body([(name, [0])]), b))
        assert err == 0 and len(ds) == 1 and (name, 0) in ds[0]["parts"], ds
        dirs[b] = ds[0]
    mk.control("stop %d" % leader)
    try:
        t = wait_for(lambda: (lambda p: p if p["leader"] not in (-1, leader) else None)(
            metadata(mk, name, other)["partitions"][0]), "a new leader")
        with mk.wire(t["leader"]) as c:
            (_, _, err, _, off), = c.list_offsets(name, [(0, kwire.EARLIEST)])
            assert (err, off) == (0, 6)
    finally:
        mk.control("start %d" % leader)


# ---------------------------------------------------------------------------------------------
# ElectLeaders
# ---------------------------------------------------------------------------------------------
def elect(mk, etype, topics):
    return kwire.parse_elect_leaders(call(mk, kwire.ELECT_LEADERS, 2, kwire.elect_leaders_body(etype, topics)))


@pytest.mark.timeout(90)
def test_elect_leaders(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    p = metadata(mk, name)["partitions"][0]
    pref = p["replicas"][0]
    assert p["leader"] == pref
    top, res = elect(mk, 0, [(name, [0])])
    assert top == 0 and res[(name, 0)][0] == kwire.ELECTION_NOT_NEEDED, res
    # move the lead away (auto.leader.rebalance.enable=false keeps it there)
    mk.control("stop %d" % pref)
    mk.control("start %d" % pref)
    wait_for(lambda: metadata(mk, name)["partitions"][0]["leader"] not in (-1, pref), "lead moved")
    wait_for(lambda: pref in metadata(mk, name)["partitions"][0]["isr"], "preferred back in sync")
    ck_produce(mk.bootstrap, name, [(0, b"k", b"v", None)])
    top, res = elect(mk, 0, [(name, [0])])
    assert top == 0 and res[(name, 0)][0] == 0, res
    assert metadata(mk, name)["partitions"][0]["leader"] == pref
    assert ck_watermarks(mk.bootstrap, name, 0) == (0, 1)
    # unclean on a partition with a leader: not needed; unknown partitions
    top, res = elect(mk, 1, [(name, [0, 7]), (name + "-nope", [0])])
    assert res[(name, 0)][0] == kwire.ELECTION_NOT_NEEDED
    assert res[(name, 7)][0] == kwire.UNKNOWN_TOPIC_OR_PARTITION
    assert res[(name + "-nope", 0)][0] == kwire.UNKNOWN_TOPIC_OR_PARTITION
    # all partitions: those that need it are elected; then nothing is left to answer
    top, res = elect(mk, 0, None)
    assert top == 0 and all(e == 0 for e, _ in res.values()), res
    top, res = elect(mk, 0, None)
    assert top == 0 and res == {}, res


# ---------------------------------------------------------------------------------------------
# Reassignments
# ---------------------------------------------------------------------------------------------
@needs_node
@pytest.mark.timeout(120)
def test_reassignment_online(mk, topic_name):
    name = topic_name()
    create(mk, name, 1, rf=1)
    ck_produce(mk.bootstrap, name, [(0, b"k%d" % i, b"v%d" % i, None) for i in range(50)])
    cur = metadata(mk, name)["partitions"][0]["replicas"][0]
    target = next(b for b in range(1, 7) if b != cur and az_of(mk, b) != az_of(mk, cur))
    res = js_admin(mk.bootstrap, "alterPartitionReassignments",
                   {"topics": [{"topic": name, "partitionAssignment": [{"partition": 0, "replicas": [target]}]}]})
    assert res["ok"], res
    wait_for(lambda: metadata(mk, name)["partitions"][0]["replicas"] == [target], "the move to finish")
    res = js_admin(mk.bootstrap, "listPartitionReassignments", {})
    assert res["ok"] and res["result"]["topics"] == [], res
    assert metadata(mk, name)["partitions"][0]["leader"] == target
    assert ck_watermarks(mk.bootstrap, name, 0) == (0, 50)
    c = ck_consumer(mk.bootstrap, **{"group.id": "g-" + name, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([name])
        got = 0
        deadline = time.monotonic() + 30
        while got < 50 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        assert got == 50
    finally:
        c.close()
    # rules: two replicas in one AZ; cancelling what is not running
    same = [b for b in range(1, 7) if az_of(mk, b) == az_of(mk, target)]
    body = (kwire.i32(10000) + kwire.compact_array([kwire.compact_string(name) + kwire.compact_array(
        [kwire.i32(0) + kwire.compact_array([kwire.i32(b) for b in same[:2]]) + kwire.TAGS,
         kwire.i32(0 + 1) + kwire.uvarint(0) + kwire.TAGS]) + kwire.TAGS]) + kwire.TAGS)
    r = kwire.Reader(call(mk, kwire.ALTER_PARTITION_REASSIGNMENTS, 0, body))
    r.i32()
    assert r.i16() == 0
    r.compact_string()
    (topic,) = r.compact_array(lambda rr: (rr.compact_string(), rr.compact_array(
        lambda x: (x.i32(), x.i16(), x.compact_string(), x.tags())), rr.tags()))
    errs = {p: e for p, e, _, _ in topic[1]}
    assert errs == {0: kwire.INVALID_REPLICA_ASSIGNMENT, 1: kwire.UNKNOWN_TOPIC_OR_PARTITION}, topic


@pytest.mark.timeout(60)
def test_reassignment_listed_and_cancelled(mk, topic_name):
    name = topic_name()
    create(mk, name, 1, rf=1)
    cur = metadata(mk, name)["partitions"][0]["replicas"][0]
    target = next(b for b in range(1, 7) if b != cur and az_of(mk, b) != az_of(mk, cur))
    mk.control("stop %d" % target)  # a stopped target holds the move
    try:
        body = (kwire.i32(10000) + kwire.compact_array([kwire.compact_string(name) + kwire.compact_array(
            [kwire.i32(0) + kwire.compact_array([kwire.i32(target)]) + kwire.TAGS]) + kwire.TAGS]) + kwire.TAGS)
        call(mk, kwire.ALTER_PARTITION_REASSIGNMENTS, 0, body)
        err, out = kwire.parse_list_partition_reassignments(call(
            mk, kwire.LIST_PARTITION_REASSIGNMENTS, 0, kwire.list_partition_reassignments_body()))
        assert err == 0 and out[(name, 0)] == ([target, cur], [target], [cur]), out
        cancel = (kwire.i32(10000) + kwire.compact_array([kwire.compact_string(name) + kwire.compact_array(
            [kwire.i32(0) + kwire.uvarint(0) + kwire.TAGS]) + kwire.TAGS]) + kwire.TAGS)
        call(mk, kwire.ALTER_PARTITION_REASSIGNMENTS, 0, cancel)
        err, out = kwire.parse_list_partition_reassignments(call(
            mk, kwire.LIST_PARTITION_REASSIGNMENTS, 0, kwire.list_partition_reassignments_body([(name, [0])])))
        assert err == 0 and out == {}, out
        assert metadata(mk, name)["partitions"][0]["replicas"] == [cur]
    finally:
        mk.control("start %d" % target)


# ---------------------------------------------------------------------------------------------
# DescribeLogDirs, DescribeTopicPartitions, telemetry
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_describe_log_dirs(mk, topic_name):
    name = topic_name()
    create(mk, name, 2)
    ck_produce(mk.bootstrap, name, [(0, b"k", b"x" * 100, None)] * 5)
    leader = metadata(mk, name)["partitions"][0]["leader"]
    err, dirs = kwire.parse_describe_log_dirs(call(mk, kwire.DESCRIBE_LOG_DIRS, 4,
                                                   kwire.describe_log_dirs_body(), leader))
    assert err == 0 and len(dirs) == 1
    d = dirs[0]
    assert d["dir"].endswith("broker-%d" % leader) and d["total"] > 0 and d["usable"] > 0, d
    size, lag = d["parts"][(name, 0)]
    assert size > 500 and lag == 0


@pytest.mark.timeout(60)
def test_describe_topic_partitions_paging(mk, topic_name):
    a, b = topic_name("a"), topic_name("b")
    create(mk, a, 3)
    create(mk, b, 2)

    def page(topics, cursor=None, limit=2):
        return kwire.parse_describe_topic_partitions(call(
            mk, kwire.DESCRIBE_TOPIC_PARTITIONS, 0,
            kwire.describe_topic_partitions_body(topics, limit, cursor)))
    seen, cursor, pages = [], None, 0
    while True:
        topics, cursor = page([b, a, a + "-nope"], cursor)
        pages += 1
        for t in topics:
            if t["error"]:
                assert t["name"] == a + "-nope" and t["error"] == kwire.UNKNOWN_TOPIC_OR_PARTITION
                continue
            for p in t["partitions"]:
                assert p["leader"] in p["replicas"] and p["elr"] == [] and p["error"] == 0
                seen.append((t["name"], p["index"]))
        if cursor is None:
            break
        assert pages < 10
    assert seen == [(a, 0), (a, 1), (a, 2), (b, 0), (b, 1)], seen
    assert pages == 3


@pytest.mark.timeout(30)
def test_telemetry_answers_without_subscription(mk):
    d = kwire.parse_get_telemetry_subscriptions(call(mk, kwire.GET_TELEMETRY_SUBSCRIPTIONS, 0,
                                                     kwire.get_telemetry_subscriptions_body()))
    assert d["error"] == 0 and d["instance_id"] != b"\0" * 16 and d["metrics"] == [], d
    r = kwire.Reader(call(mk, kwire.PUSH_TELEMETRY, 0, kwire.push_telemetry_body(
        d["instance_id"], d["subscription_id"], terminating=True)))
    r.i32()
    assert r.i16() == 0


# ---------------------------------------------------------------------------------------------
# Batches: MaxTimestamp recomputed; zstd by version
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_max_timestamp_recomputed_on_append(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    leader = metadata(mk, name)["partitions"][0]["leader"]
    base = int(time.time() * 1000) - 100000
    with mk.wire(leader) as c:
        for i in range(3):  # Sarama 1.22's CreateTime batches: MaxTimestamp left at -1
            ts = [base + 1000 * i + 10 * j for j in range(3)]
            batch = kwire.record_batch([(b"k", b"v%d" % j, []) for j in range(3)], timestamps=ts,
                                       max_timestamp=-1)
            assert c.produce_one(name, 0, batch)[0] == 0
        got = {off for _, _, err, _, off in c.list_offsets(name, [(0, base + 1005)])}
        assert got == {4}, got  # the first record at or after the time: batch 1 (3..5), record 1
        (_, _, err, ts, off), = c.list_offsets(name, [(0, kwire.MAX_TIMESTAMP)])
        assert (err, ts, off) == (0, base + 2020, 8)
        data = c.fetch(name, 0, 0)[0]["records"]
    hdrs = kwire.batch_headers(data)
    assert [h["max_timestamp"] for h in hdrs] == [base + 20, base + 1020, base + 2020], hdrs
    kwire.decode_batches(data)  # CRCs checked


@pytest.mark.timeout(60)
def test_zstd_needs_produce_v7_and_fetch_v10(mk, topic_name):
    name = topic_name()
    create(mk, name, 1)
    leader = metadata(mk, name)["partitions"][0]["leader"]
    zbatch = kwire.record_batch([(b"k", b"v", [])], attributes=4)  # codec bits: zstd
    with mk.wire(leader) as c:
        assert c.produce_one(name, 0, zbatch, version=6)[0] == kwire.UNSUPPORTED_COMPRESSION_TYPE
    assert ck_watermarks(mk.bootstrap, name, 0) == (0, 0)
    ck_produce(mk.bootstrap, name, [(0, b"k%d" % i, b"v" * 100, None) for i in range(5)], codec="zstd")
    with mk.wire(leader) as c:
        # compression.type=producer: served as stored at any version, as Kafka does
        assert c.fetch(name, 0, 0, version=9)[0]["error"] == 0
        # compression.type=zstd: Fetch below v10 is refused (Kafka's KafkaApis rule)
        assert incr(mk, [(TOPIC, name, [("compression.type", SET, "zstd")])])[0][0] == 0
        assert c.fetch(name, 0, 0, version=9)[0]["error"] == kwire.UNSUPPORTED_COMPRESSION_TYPE
        p = c.fetch(name, 0, 0, version=11)[0]
        assert p["error"] == 0
        hdrs = kwire.batch_headers(p["records"])
        assert hdrs and all(h["attrs"] & 7 == 4 for h in hdrs), hdrs  # served as stored: zstd


# ---------------------------------------------------------------------------------------------
# The metadata race
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_topic_visible_everywhere_once_a_write_is_acknowledged(mk, topic_name):
    for i in range(10):
        name = topic_name(str(i))
        with mk.wire(1) as c:
            md = c.metadata([name], allow_auto_create=True)
        (t,) = md["topics"]
        assert t["error"] == 0, t
        leader = t["partitions"][0]["leader"]
        with mk.wire(leader) as c:
            assert c.produce_one(name, 0, kwire.record_batch([(b"k", b"v", [])]), acks=1)[0] == 0
        for b in range(1, 7):
            with mk.wire(b) as c:
                (t,) = c.metadata([name])["topics"]
            assert t["error"] == 0 and len(t["partitions"]) == 1, (b, t)
    # a consumer subscribed right after a producer's auto-created write sees no error
    name = topic_name("consumer")
    ck_produce(mk.bootstrap, name, [(0, b"k", b"v", None)])
    c = ck_consumer(mk.bootstrap, **{"group.id": "g-" + name, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([name])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            assert not m.error(), m.error()
            break
        else:
            raise AssertionError("nothing consumed")
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# Tenants and ACLs
# ---------------------------------------------------------------------------------------------
KEY, SECRET = "ACMEKEY000000001", "acme-secret-1"


@pytest.fixture(scope="module")
def tenant_mk():
    with Cluster("--set", "minikora.tenant.acme.keys=%s:%s" % (KEY, SECRET), name="admin_apis_tenant") as c:
        yield c


def tenant_call(mk, api, version, body, broker=None):
    with mk.wire(broker) as c:
        err, msg = c.sasl_plain(KEY, SECRET)
        assert err == 0, msg
        return c.call(api, version, body, flexible_req=True)


def tenant_conf(mk):
    return {"bootstrap.servers": mk.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": KEY, "sasl.password": SECRET,
            "socket.timeout.ms": 10000}


@pytest.mark.timeout(90)
def test_tenant_rules(tenant_mk, topic_name):
    mk = tenant_mk
    from confluent_kafka.admin import AdminClient
    a = AdminClient(tenant_conf(mk))
    name = topic_name()
    assert ck_result(a.create_topics([NewTopic(name, 1, 3)], operation_timeout=10)[name]) is None
    # the tenant's topic is internally acme~name: the default tenant does not see it
    assert metadata(mk, name)["error"] == kwire.UNKNOWN_TOPIC_OR_PARTITION
    # growth stays in the tenant's cell
    assert ck_result(a.create_partitions([NewPartitions(name, 3)])[name]) is None
    brokers = {b["node_id"]: b for b in mk.wire().metadata([])["brokers"]}
    md = a.list_topics(name, timeout=10).topics[name]
    cells = {(b - 1) // 3 for p in md.partitions.values() for b in p.replicas}
    assert len(md.partitions) == 3 and len(cells) == 1, md.partitions
    (cell,) = cells
    outside = next(b for b in brokers if (b - 1) // 3 != cell)
    body = (kwire.compact_array([kwire.compact_string(name) + kwire.i32(4) + kwire.compact_array(
        [kwire.compact_array([kwire.i32(outside)]) + kwire.TAGS]) + kwire.TAGS])
        + kwire.i32(10000) + kwire.boolean(False) + kwire.TAGS)
    r = kwire.Reader(tenant_call(mk, kwire.CREATE_PARTITIONS, 2, body))
    r.i32()
    (res,) = r.compact_array(lambda rr: (rr.compact_string(), rr.i16(), rr.compact_string(), rr.tags()))
    assert res[1] == kwire.INVALID_REPLICA_ASSIGNMENT, res  # rf differs, or outside the cell
    # broker settings are the operator's
    (res,) = kwire.parse_alter_configs(tenant_call(mk, kwire.INCREMENTAL_ALTER_CONFIGS, 1,
                                                   kwire.incremental_alter_configs_body(
                                                       [(BROKER, "", [("log.retention.ms", SET, "1")])])))
    assert res[0] == kwire.CLUSTER_AUTHORIZATION_FAILED, res
    # a topic config works through the tenant's name
    (res,) = kwire.parse_alter_configs(tenant_call(mk, kwire.INCREMENTAL_ALTER_CONFIGS, 1,
                                                   kwire.incremental_alter_configs_body(
                                                       [(TOPIC, name, [("retention.ms", SET, "9999")])])))
    assert res[0] == 0 and res[2:] == (TOPIC, name), res
    # listings show only the tenant's topics, by its names
    default_topic = topic_name("default")
    create(mk, default_topic, 1)
    topics, _ = kwire.parse_describe_topic_partitions(tenant_call(
        mk, kwire.DESCRIBE_TOPIC_PARTITIONS, 0, kwire.describe_topic_partitions_body([])))
    assert [t["name"] for t in topics] == [name], topics
    leader = md.partitions[0].leader
    err, dirs = kwire.parse_describe_log_dirs(tenant_call(mk, kwire.DESCRIBE_LOG_DIRS, 4,
                                                          kwire.describe_log_dirs_body(), leader))
    assert err == 0 and {t for t, _ in dirs[0]["parts"]} == {name}, dirs
    top, res = kwire.parse_elect_leaders(tenant_call(mk, kwire.ELECT_LEADERS, 2,
                                                     kwire.elect_leaders_body(0, [(default_topic, [0])])))
    assert res[(default_topic, 0)][0] == kwire.UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.timeout(90)
def test_acls_on_the_new_apis(tenant_mk, topic_name):
    from kafka.admin import ACLOperation, ResourceType
    from test_acls import acl, kp_admin
    mk = tenant_mk
    name = topic_name()
    from confluent_kafka.admin import AdminClient
    a = AdminClient(tenant_conf(mk))
    assert ck_result(a.create_topics([NewTopic(name, 1, 3)], operation_timeout=10)[name]) is None
    kp = kp_admin(mk, KEY, SECRET)
    try:
        # once a binding names the topic, only DESCRIBE is allowed there
        kp.create_acls([acl("User:" + KEY, ACLOperation.DESCRIBE, ResourceType.TOPIC, name),
                        acl("User:" + KEY, ACLOperation.DESCRIBE, ResourceType.CLUSTER, "kafka-cluster")])
        err = ck_result(a.create_partitions([NewPartitions(name, 2)])[name])
        assert err is not None and err.code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        r = ConfigResource("topic", name, set_config={"retention.ms": "1"})
        err = ck_result(a.alter_configs([r])[r])
        assert err is not None and err.code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        leader = a.list_topics(name, timeout=10).topics[name].partitions[0].leader
        res = kwire.parse_delete_records(tenant_call(mk, kwire.DELETE_RECORDS, 2, kwire.delete_records_body(
            [(name, [(0, 0)])]), leader))
        assert res[(name, 0)][1] == kwire.TOPIC_AUTHORIZATION_FAILED, res
        top, _ = kwire.parse_elect_leaders(tenant_call(mk, kwire.ELECT_LEADERS, 2,
                                                       kwire.elect_leaders_body(0, [(name, [0])])))
        assert top == kwire.CLUSTER_AUTHORIZATION_FAILED
        # DESCRIBE on the cluster is enough to list reassignments and log dirs
        err, _ = kwire.parse_list_partition_reassignments(tenant_call(
            mk, kwire.LIST_PARTITION_REASSIGNMENTS, 0, kwire.list_partition_reassignments_body()))
        assert err == 0
    finally:
        kp.close()


@pytest.mark.timeout(90)
def test_delete_records_is_audited(minikora, topic_name):
    """The durability audit hears of offsets that DeleteRecords removes inside a segment that
    stays (log start rows with rule DeleteRecords on every replica) and raises no incident."""
    from test_integrity import integrity, wait_integrity
    mk = minikora()
    name = topic_name()
    create(mk, name, 1)
    ck_produce(mk.bootstrap, name, [(0, b"k%d" % i, b"v%d" % i, None) for i in range(10)])
    leader = metadata(mk, name)["partitions"][0]["leader"]
    assert delete_records(mk, name, 0, 7, leader) == (7, 0)

    def seen(j):
        rows = [r for r in j["audit"]["recent"] if r["kind"] == "log_start" and r["topic"] == name
                and r["to"] == 7]
        return len({r["broker"] for r in rows}) == 3
    j = wait_integrity(mk, seen, 30, "the DeleteRecords start moves audited on every replica")
    assert not [i for i in j["incidents"] if i.get("topic") == name], j["incidents"]
    assert integrity(mk)["total"]["audit_incidents"] == 0


@pytest.mark.timeout(60)
def test_broker_quota_cap_set_at_runtime(minikora):
    """minikora.broker.quota.bytes.in.per.sec set with IncrementalAlterConfigs on the leader's
    broker id (no restart) throttles produces there, as the same setting given at start does
    (test_quotas.py::test_broker_cap_throttles_tenant_without_quota)."""
    mk = minikora("--set", "quota.window.num=2")
    create(mk, "capped", 1)
    leader = metadata(mk, "capped")["partitions"][0]["leader"]
    batch = kwire.record_batch([(None, b"x" * 100000, [])])
    with mk.wire(leader, timeout=15) as c:
        for _ in range(5):  # no cap yet: never throttled
            (err, _), throttle = c.produce_throttled("capped", 0, batch, version=8)
            assert err == 0 and throttle == 0
        assert incr(mk, [(BROKER, str(leader), [("minikora.broker.quota.bytes.in.per.sec", SET, "200000")])])[0][0] == 0
        throttle, t0 = 0, time.monotonic()
        while throttle == 0 and time.monotonic() - t0 < 20:
            (err, _), throttle = c.produce_throttled("capped", 0, batch, version=8)
            assert err == 0
    assert throttle > 0
