"""Consumer groups through admin clients (issue 3): describe, list and delete groups with
kafka-python's KafkaAdminClient, confluent-kafka's AdminClient (1.7: list_groups only) and
kafkajs's admin; alter committed offsets three ways (confluent commit() without subscribe,
kafka-python commit() after assign(), kafkajs setOffsets); delete committed offsets
(OffsetDelete: confluent-kafka 1.7 has no delete_consumer_group_offsets and kafka-python 2.0.2
no delete offsets call, so raw protocol); committed offsets survive a restart (SIGTERM and
SIGKILL) of the process with a fixed --data-dir.
"""

import json
import uuid

import pytest

import clients
import groups_util as gu
import kwire

PARTITIONS = 6


@pytest.fixture
def setup(cluster, topic_name):
    """-> (topic, group, Group of confluent members); the members are closed at teardown."""
    made = []

    def make(members=2, per_partition=10):
        topic = topic_name()
        clients.create_topic_ok(cluster.bootstrap, topic, PARTITIONS)
        g = gu.Group("confluent", cluster.bootstrap, topic, PARTITIONS)
        made.append(g)
        for _ in range(members):
            g.add()
        g.wait_balanced(30, "admin test group")
        exp, _ = gu.produce(cluster.bootstrap, topic, PARTITIONS, per_partition, "adm")
        g.wait_consumed(exp, 30)
        gu.wait_until(lambda: gu.committed(cluster.bootstrap, g.group, topic, PARTITIONS)
                      == {p: per_partition for p in range(PARTITIONS)}, 15, "commits")
        return topic, g

    yield make
    for g in made:
        assert not g.close_all()


def js_group_admin(bootstrap, op, *args):
    return clients.run_node("group_admin.js", bootstrap, op, json.dumps(list(args)), timeout=60)


def kp_admin(bootstrap):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=15000)


def empty_group(g):
    for m in list(g.members):
        if m.running:
            g.stop(m)
    d = gu.describe(g.bootstrap, g.group)
    assert d["state"] == "Empty", d


# ----------------------------------------------------------------------------- kafka-python
@pytest.mark.timeout(60)
def test_kafka_python_admin_describe_list_delete(cluster, setup):
    from kafka.errors import GroupIdNotFoundError, NonEmptyGroupError, NoError
    from kafka.structs import TopicPartition
    topic, g = setup()
    admin = kp_admin(cluster.bootstrap)
    try:
        assert (g.group, "consumer") in admin.list_consumer_groups()
        (info,) = admin.describe_consumer_groups([g.group])
        assert info.error_code == 0 and info.group == g.group, info
        assert (info.state, info.protocol_type, info.protocol) == ("Stable", "consumer", "range")
        assert len(info.members) == 2
        parts = sorted(p for m in info.members
                       for t, ps in m.member_assignment.assignment for p in ps if t == topic)
        assert parts == list(range(PARTITIONS)), info.members
        assert {m.client_id for m in info.members} == {m.name for m in g.members}
        offs = admin.list_consumer_group_offsets(g.group)
        assert {tp.partition: om.offset for tp, om in offs.items() if tp.topic == topic} == {
            p: 10 for p in range(PARTITIONS)}
        offs = admin.list_consumer_group_offsets(g.group, partitions=[TopicPartition(topic, 2)])
        assert offs[TopicPartition(topic, 2)].offset == 10

        (res,) = admin.delete_consumer_groups([g.group])
        assert res[1] is NonEmptyGroupError, res
        empty_group(g)
        (info,) = admin.describe_consumer_groups([g.group])
        assert info.state == "Empty" and not info.members
        (res,) = admin.delete_consumer_groups([g.group])
        assert res[1] is NoError, res
        (info,) = admin.describe_consumer_groups([g.group])
        assert info.state == "Dead", info
        assert g.group not in [n for n, _ in admin.list_consumer_groups()]
        assert admin.list_consumer_group_offsets(g.group) == {}
        (res,) = admin.delete_consumer_groups([g.group])
        assert res[1] is GroupIdNotFoundError, res
    finally:
        admin.close()


# ----------------------------------------------------------------------------- confluent
@pytest.mark.timeout(60)
def test_confluent_admin_list_and_describe(cluster, setup):
    topic, g = setup()
    admin = clients.ck_admin(cluster.bootstrap)
    listed = admin.list_groups(timeout=15)
    assert g.group in [x.id for x in listed]
    (gm,) = admin.list_groups(g.group, timeout=15)
    assert gm.error is None or gm.error.code() == 0, gm.error
    assert (gm.state, gm.protocol_type, gm.protocol) == ("Stable", "consumer", "range")
    assert len(gm.members) == 2
    parts = sorted(p for m in gm.members for p in kwire.parse_assignment(m.assignment).get(topic, []))
    assert parts == list(range(PARTITIONS))
    empty_group(g)
    (gm,) = admin.list_groups(g.group, timeout=15)
    assert gm.state == "Empty" and not gm.members
    # librdkafka's list_groups(group) describes only groups some broker lists
    assert admin.list_groups("never-" + uuid.uuid4().hex[:8], timeout=15) == []


# ----------------------------------------------------------------------------- kafkajs
@pytest.mark.timeout(60)
def test_kafkajs_admin_describe_list_fetch_delete(cluster, setup):
    if not clients.node_available():
        pytest.skip("node or kafkajs missing")
    topic, g = setup()
    bs = cluster.bootstrap
    r = clients.js_admin(bs, "listGroups")
    assert r["ok"], r
    assert {"groupId": g.group, "protocolType": "consumer"} in r["result"]["groups"]
    r = clients.js_admin(bs, "describeGroups", [g.group])
    assert r["ok"], r
    (d,) = r["result"]["groups"]
    assert (d["groupId"], d["state"], d["protocolType"], d["protocol"], d["errorCode"]) == (
        g.group, "Stable", "consumer", "range", 0), d
    assert len(d["members"]) == 2
    r = clients.js_admin(bs, "fetchOffsets", {"groupId": g.group, "topics": [topic]})
    assert r["ok"], r
    (t,) = r["result"]
    assert sorted((p["partition"], p["offset"]) for p in t["partitions"]) == [
        (p, "10") for p in range(PARTITIONS)]
    r = js_group_admin(bs, "deleteGroups", [g.group])
    assert not r["ok"], r
    assert r["error"]["groups"] == [{"groupId": g.group, "errorCode": kwire.NON_EMPTY_GROUP,
                                     "type": "NON_EMPTY_GROUP"}], r["error"]
    empty_group(g)
    r = clients.js_admin(bs, "deleteGroups", [g.group])
    assert r["ok"] and r["result"][0]["errorCode"] == 0, r
    r = clients.js_admin(bs, "describeGroups", [g.group])
    assert r["ok"] and r["result"]["groups"][0]["state"] == "Dead", r
    r = clients.js_admin(bs, "listGroups")
    assert g.group not in [x["groupId"] for x in r["result"]["groups"]]
    r = js_group_admin(bs, "deleteGroups", [g.group])
    assert not r["ok"] and [x["type"] for x in r["error"]["groups"]] == ["GROUP_ID_NOT_FOUND"], r


# -------------------------------------------------------------------------- alter offsets
def _alter(kind, bootstrap, group, topic, new):
    if kind == "confluent":
        import confluent_kafka as ck
        c = clients.ck_consumer(bootstrap, **{"group.id": group})
        try:
            res = c.commit(offsets=[ck.TopicPartition(topic, p, o) for p, o in new.items()],
                           asynchronous=False)
            assert all(tp.error is None for tp in res), res
        finally:
            c.close()
    elif kind == "kafka-python":
        from kafka import KafkaConsumer
        from kafka.structs import OffsetAndMetadata, TopicPartition
        c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=group,
                          enable_auto_commit=False)
        try:
            c.assign([TopicPartition(topic, p) for p in new])
            c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "kp-meta-%d" % p)
                      for p, o in new.items()})
        finally:
            c.close(autocommit=False)
    else:
        r = clients.js_admin(bootstrap, "setOffsets", {
            "groupId": group, "topic": topic,
            "partitions": [{"partition": p, "offset": str(o)} for p, o in new.items()]})
        assert r["ok"], r


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["confluent", "kafka-python", "kafkajs"])
def test_alter_committed_offsets(cluster, setup, kind):
    if kind == "kafkajs" and not clients.node_available():
        pytest.skip("node or kafkajs missing")
    topic, g = setup(members=1)
    empty_group(g)
    new = {0: 3, 1: 0, 4: 7}
    _alter(kind, cluster.bootstrap, g.group, topic, new)
    with gu.coordinator(cluster.bootstrap, g.group) as c:
        err, offs = c.fetch_offsets(g.group, {topic: list(range(PARTITIONS))})
    assert err == kwire.NONE
    want = {p: new.get(p, 10) for p in range(PARTITIONS)}
    assert {p: offs[(topic, p)][0] for p in range(PARTITIONS)} == want, offs
    if kind == "kafka-python":
        assert offs[(topic, 0)][2] == "kp-meta-0", offs[(topic, 0)]
    # a consumer of the group starts exactly there
    m = g.add()
    expected = {(p, o) for p in range(PARTITIONS) for o in range(want[p], 10)}
    g.wait_consumed(expected, 30, "records after the altered offsets", members=[m])
    got = sorted((p, o) for p, o, _ in m.snapshot())
    assert got == sorted(expected), "consumer did not start at the altered offsets"


@pytest.mark.timeout(60)
def test_delete_committed_offsets(cluster, setup):
    topic, g = setup(members=1)
    empty_group(g)
    with gu.coordinator(cluster.bootstrap, g.group) as c:
        err, parts = c.offset_delete(g.group, {topic: [0, 1]})
        assert err == kwire.NONE and set(parts.values()) == {kwire.NONE}, parts
        err, offs = c.fetch_offsets(g.group, {topic: list(range(PARTITIONS))})
    assert [offs[(topic, p)][0] for p in range(PARTITIONS)] == [-1, -1, 10, 10, 10, 10]
    admin = kp_admin(cluster.bootstrap)
    try:
        left = admin.list_consumer_group_offsets(g.group)
        assert sorted(tp.partition for tp in left) == [2, 3, 4, 5], left
    finally:
        admin.close()
    m = g.add()  # auto.offset.reset=earliest for the deleted two
    expected = {(p, o) for p in (0, 1) for o in range(10)}
    g.wait_consumed(expected, 30, "partitions whose offsets were deleted, from the start",
                    members=[m])
    assert sorted((p, o) for p, o, _ in m.snapshot()) == sorted(expected)


# ------------------------------------------------------------------------------- restarts
@pytest.mark.timeout(120)
def test_committed_offsets_survive_restart(minikora, tmp_path):
    mk = minikora(data_dir=tmp_path / "data")
    bs = mk.bootstrap
    topic = "restart-groups"
    clients.create_topic_ok(bs, topic, PARTITIONS)
    g = gu.Group("confluent", bs, topic, PARTITIONS, group="restart-consumers")
    for _ in range(3):
        g.add()
    g.wait_balanced(30)
    exp, _ = gu.produce(bs, topic, PARTITIONS, 10, "r1")
    g.wait_consumed(exp, 30)
    gu.wait_until(lambda: gu.committed(bs, g.group, topic, PARTITIONS)
                  == {p: 10 for p in range(PARTITIONS)}, 15, "commits")
    assert not g.close_all()

    simple, gone, partial = "restart-simple", "restart-deleted", "restart-partial"
    with gu.coordinator(bs, simple) as c:
        assert set(c.commit(simple, {(topic, 0): (4, "meta-é-4", 0), (topic, 1): (5, None, -1)})
                   .values()) == {kwire.NONE}
    with gu.coordinator(bs, gone) as c:
        assert set(c.commit(gone, {(topic, 0): 1}).values()) == {kwire.NONE}
        assert c.delete_groups([gone]) == {gone: kwire.NONE}
    with gu.coordinator(bs, partial) as c:
        assert set(c.commit(partial, {(topic, 0): 2, (topic, 1): 3}).values()) == {kwire.NONE}
        assert c.offset_delete(partial, {topic: [0]}) == (kwire.NONE, {(topic, 0): kwire.NONE})

    def check_all():
        assert gu.committed(bs, g.group, topic, PARTITIONS) == {p: 10 for p in range(PARTITIONS)}
        with gu.coordinator(bs, simple) as c:
            offs = c.fetch_offsets(simple, {topic: [0, 1]})[1]
            assert offs[(topic, 0)][:3] == (4, 0, "meta-é-4"), offs
            assert offs[(topic, 1)][0] == 5 and offs[(topic, 1)][1] == -1, offs
        assert gu.committed(bs, gone, topic, 1) == {0: -1}
        assert gu.describe(bs, gone)["state"] == "Dead"
        assert gu.committed(bs, partial, topic, 2) == {0: -1, 1: 3}
        for name in (g.group, simple, partial):
            assert gu.describe(bs, name)["state"] == "Empty", name

    check_all()
    mk.restart()                       # SIGTERM, exit 0, start again
    bs = mk.bootstrap
    check_all()

    # a consumer of the group resumes where the group left off: no re-delivery
    g2 = gu.Group("confluent", bs, topic, PARTITIONS, group=g.group)
    try:
        exp2, _ = gu.produce(bs, topic, PARTITIONS, 3, "r2")
        m = g2.add()
        g2.wait_consumed(exp2, 30, "new records after the restart")
        assert sorted((p, o) for p, o, _ in m.snapshot()) == sorted(exp2)
        gu.wait_until(lambda: gu.committed(bs, g.group, topic, PARTITIONS)
                      == {p: 13 for p in range(PARTITIONS)}, 15, "commits after restart")
    finally:
        assert not g2.close_all()

    # an acknowledged commit survives SIGKILL too
    with gu.coordinator(bs, simple) as c:
        assert c.commit(simple, {(topic, 2): (42, "after-kill")}) == {(topic, 2): kwire.NONE}
    mk.kill()
    mk.start()
    bs = mk.bootstrap
    with gu.coordinator(bs, simple) as c:
        offs = c.fetch_offsets(simple, {topic: [0, 2]})[1]
    assert offs[(topic, 2)][0] == 42 and offs[(topic, 2)][2] == "after-kill", offs
    assert offs[(topic, 0)][0] == 4
    assert gu.committed(bs, g.group, topic, PARTITIONS) == {p: 13 for p in range(PARTITIONS)}
