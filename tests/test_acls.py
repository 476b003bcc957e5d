"""ACLs within a tenant (issue 10): CreateAcls, DescribeAcls and DeleteAcls through
kafka-python's admin client, enforced for a confluent-kafka producer and consumer
authenticated with SASL PLAIN.  A tenant without ACLs allows its principals everything;
once bindings name a resource, only what they allow is allowed, and each denial carries
Kafka's exact error.  Another tenant sees none of the bindings; they survive a restart.

The group, config and transaction APIs (one tenant of the shared cluster, the `shop` fixture):
a confluent-kafka consumer and transactional producer, kafka-python's admin client
(DescribeConfigs, ListGroups, all-offsets OffsetFetch) and kwire requests over an authenticated
connection for the exact per-partition answers.  Each denied case has an allowed one beside it.
"""

import time

import confluent_kafka as ck
import pytest
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         ConfigResource, ConfigResourceType, KafkaAdminClient, ResourcePattern,
                         ResourcePatternFilter, ResourceType)
from kafka.errors import ClusterAuthorizationFailedError

import kwire
from test_tenants import ck_conf, ck_create, http, new_tenant, sasl, sasl_authenticate_plain

TOPIC_AUTHORIZATION_FAILED = 29
GROUP_AUTHORIZATION_FAILED = 30


def kp_admin(mk, key, secret):
    return KafkaAdminClient(bootstrap_servers=mk.bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username=key,
                            sasl_plain_password=secret, request_timeout_ms=10000)


def acl(principal, op, rtype, name, perm=ACLPermissionType.ALLOW,
        pattern=ACLResourcePatternType.LITERAL):
    return ACL(principal=principal, host="*", operation=op, permission_type=perm,
               resource_pattern=ResourcePattern(rtype, name, pattern))


def everything():
    return ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                            ACLResourcePatternType.ANY))


def produce_error(mk, topic, creds):
    """Produce one record; the delivery error code, or None when it was stored."""
    p = ck.Producer(ck_conf(mk, acks="all", **{"message.timeout.ms": 10000}, **creds))
    got = []
    p.produce(topic, value=b"v", partition=0, on_delivery=lambda err, msg: got.append(err))
    p.flush(20)
    assert got, "no delivery report"
    return got[0].code() if got[0] else None


def consume_error(mk, topic, creds, group, timeout=20):
    """Consume `topic` (assigned, from the beginning) in `group`: the first error code, None
    when a record arrives, "timeout" when neither does."""
    c = ck.Consumer(ck_conf(mk, **{"group.id": group, "enable.auto.commit": False}, **creds))
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.5):
                if m.error():
                    return m.error().code()
                return None
        return "timeout"
    finally:
        c.close()


@pytest.mark.timeout(240)
def test_acls_within_a_tenant(minikora, tmp_path):
    mk = minikora(data_dir=tmp_path / "data")
    _, admin_key, admin_secret = new_tenant(mk, "acme")
    st, k = http(mk, "POST", "/v1/tenants/acme/keys")
    assert st == 201, k
    app_key, app_secret = k["key"], k["secret"]
    _, other_key, other_secret = new_tenant(mk, "globex")
    ADMIN, APP = "User:" + admin_key, "User:" + app_key
    admin_creds, app_creds = sasl(admin_key, admin_secret), sasl(app_key, app_secret)

    ck_create(mk, "orders", admin_creds)
    ck_create(mk, "payments", admin_creds)
    # No ACLs yet: the app key may do everything in its tenant.
    assert produce_error(mk, "payments", app_creds) is None

    a = kp_admin(mk, admin_key, admin_secret)
    try:
        res = a.create_acls([
            acl(ADMIN, ACLOperation.ALL, ResourceType.CLUSTER, "kafka-cluster"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.TOPIC, "*"),
            acl(APP, ACLOperation.WRITE, ResourceType.TOPIC, "orders"),
            acl(APP, ACLOperation.READ, ResourceType.GROUP, "acl-g", perm=ACLPermissionType.DENY),
        ])
        assert not res["failed"], res
        assert len(res["succeeded"]) == 4
        # An invalid binding is refused with its reason, the others are kept.
        res = a.create_acls([acl(APP, ACLOperation.READ, ResourceType.CLUSTER, "not-the-cluster")])
        assert len(res["failed"]) == 1, res

        acls, err = a.describe_acls(everything())
        assert err.errno == 0 and len(acls) == 4, acls
        assert {x.principal for x in acls} == {ADMIN, APP}
    finally:
        a.close()

    # The bindings now name every topic: WRITE on orders only, nothing on payments.
    assert produce_error(mk, "orders", app_creds) is None
    assert produce_error(mk, "payments", app_creds) == TOPIC_AUTHORIZATION_FAILED
    assert consume_error(mk, "orders", app_creds, "acl-other") == TOPIC_AUTHORIZATION_FAILED
    # acl-g is named by the DENY and allowed to nobody: FindCoordinator (group DESCRIBE) fails.
    assert consume_error(mk, "orders", admin_creds, "acl-g") == GROUP_AUTHORIZATION_FAILED
    # ListOffsets needs DESCRIBE (WRITE implies it on orders; nothing on payments).
    c = ck.Consumer(ck_conf(mk, **{"group.id": "acl-wm"}, **app_creds))
    try:
        assert c.get_watermark_offsets(ck.TopicPartition("orders", 0), timeout=10)[1] >= 1
        with pytest.raises(ck.KafkaException) as ei:
            c.get_watermark_offsets(ck.TopicPartition("payments", 0), timeout=10)
        # librdkafka already stops at Metadata's TOPIC_AUTHORIZATION_FAILED for the topic
        assert ei.value.args[0].code() in (TOPIC_AUTHORIZATION_FAILED, ck.KafkaError._UNKNOWN_PARTITION), ei.value
    finally:
        c.close()
    assert produce_error(mk, "payments", admin_creds) is None

    # The app key may not manage ACLs (CLUSTER_AUTHORIZATION_FAILED).
    b = kp_admin(mk, app_key, app_secret)
    try:
        res = b.create_acls([acl(APP, ACLOperation.ALL, ResourceType.TOPIC, "*")])
        assert len(res["failed"]) == 1 and isinstance(res["failed"][0][1], ClusterAuthorizationFailedError) or \
            getattr(res["failed"][0][1], "errno", None) == 31, res
        with pytest.raises(ClusterAuthorizationFailedError):
            b.describe_acls(everything())
    finally:
        b.close()

    # Another tenant sees none of acme's bindings, and its own principals are not limited.
    o = kp_admin(mk, other_key, other_secret)
    try:
        acls, err = o.describe_acls(everything())
        assert err.errno == 0 and acls == [], acls
    finally:
        o.close()
    ck_create(mk, "payments", sasl(other_key, other_secret))
    assert produce_error(mk, "payments", sasl(other_key, other_secret)) is None

    # They survive a restart; then deleting the app's WRITE takes it away.
    mk.restart()
    assert produce_error(mk, "payments", app_creds) == TOPIC_AUTHORIZATION_FAILED
    a = kp_admin(mk, admin_key, admin_secret)
    try:
        flt = ACLFilter(principal=APP, host=None, operation=ACLOperation.WRITE,
                        permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "orders",
                                                               ACLResourcePatternType.LITERAL))
        out = a.delete_acls([flt])
        assert len(out) == 1 and len(out[0][1]) == 1, out
        acls, _ = a.describe_acls(everything())
        assert len(acls) == 3, acls
    finally:
        a.close()
    assert produce_error(mk, "orders", app_creds) == TOPIC_AUTHORIZATION_FAILED


# ---------------------------------------------------------------------------------------------
# The group, config and transaction APIs, on one tenant of the shared cluster.  The admin key
# may do everything; its ALL bindings on "*" name every topic, group and transactional id, so
# the app key may do only what its own bindings allow:
#   topics   events: READ, WRITE, DESCRIBE_CONFIGS;  ledger: READ;  secret: nothing
#            app-new*: CREATE (and no DESCRIBE_CONFIGS)
#   groups   app-*: READ (so DESCRIBE), app-del: DELETE too
#   transactional ids  app-tx*: WRITE (so DESCRIBE)
# and the obs key may READ events, DESCRIBE obs-* and CREATE on the cluster.
# ---------------------------------------------------------------------------------------------
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
CLUSTER_AUTHORIZATION_FAILED = 31
OPERATION_NOT_ATTEMPTED = 55
ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28


@pytest.fixture(scope="module")
def shop(module_cluster):
    mk = module_cluster
    _, admin_key, admin_secret = new_tenant(mk, "shop")
    keys = []
    for _ in range(2):
        st, k = http(mk, "POST", "/v1/tenants/shop/keys")
        assert st == 201, k
        keys.append((k["key"], k["secret"]))
    (app_key, app_secret), (obs_key, obs_secret) = keys
    admin = sasl(admin_key, admin_secret)
    for t in ("events", "ledger", "secret"):
        ck_create(mk, t, admin)
    ADMIN, APP, OBS = "User:" + admin_key, "User:" + app_key, "User:" + obs_key
    a = kp_admin(mk, admin_key, admin_secret)
    try:
        res = a.create_acls([
            acl(ADMIN, ACLOperation.ALL, ResourceType.CLUSTER, "kafka-cluster"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.TOPIC, "*"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.GROUP, "*"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.TRANSACTIONAL_ID, "*"),
            acl(APP, ACLOperation.READ, ResourceType.TOPIC, "events"),
            acl(APP, ACLOperation.WRITE, ResourceType.TOPIC, "events"),
            acl(APP, ACLOperation.DESCRIBE_CONFIGS, ResourceType.TOPIC, "events"),
            acl(APP, ACLOperation.READ, ResourceType.TOPIC, "ledger"),
            acl(APP, ACLOperation.READ, ResourceType.GROUP, "app-",
                pattern=ACLResourcePatternType.PREFIXED),
            acl(APP, ACLOperation.WRITE, ResourceType.TRANSACTIONAL_ID, "app-tx",
                pattern=ACLResourcePatternType.PREFIXED),
            acl(APP, ACLOperation.CREATE, ResourceType.TOPIC, "app-new",
                pattern=ACLResourcePatternType.PREFIXED),
            acl(APP, ACLOperation.DELETE, ResourceType.GROUP, "app-del"),
            acl(OBS, ACLOperation.READ, ResourceType.TOPIC, "events"),
            acl(OBS, ACLOperation.DESCRIBE, ResourceType.TOPIC, "obs-",
                pattern=ACLResourcePatternType.PREFIXED),
            acl(OBS, ACLOperation.CREATE, ResourceType.CLUSTER, "kafka-cluster"),
        ])
        assert not res["failed"], res
    finally:
        a.close()
    return {"admin": admin, "app": sasl(app_key, app_secret), "obs": sasl(obs_key, obs_secret)}


def wire_as(mk, creds, broker=None):
    """A kwire connection authenticated with SASL PLAIN as `creds`."""
    c = mk.wire(broker)
    err, msg, _ = sasl_authenticate_plain(c, creds["sasl.username"], creds["sasl.password"])
    assert err == 0, msg
    return c


def coordinator(mk, creds, key, key_type=0, timeout=15):
    """The broker coordinating group (0) or transactional id (1) `key`, asked as `creds`."""
    deadline = time.monotonic() + timeout
    while True:
        with wire_as(mk, creds) as c:
            err, node = c.find_coordinator(key, key_type=key_type, version=2)[:2]
        if err == 0:
            return node
        assert err == kwire.COORDINATOR_NOT_AVAILABLE and time.monotonic() < deadline, \
            kwire.ename(err)
        time.sleep(0.05)  # bounded by `timeout`: the coordinator is being placed


def add_partitions_to_txn(c, tid, pid, epoch, topics):
    """AddPartitionsToTxn v2: topics {topic: [p]} -> {(topic, p): error}."""
    body = (kwire.string(tid) + kwire.i64(pid) + kwire.i16(epoch)
            + kwire.array([kwire.string(t) + kwire.array([kwire.i32(p) for p in ps])
                           for t, ps in topics.items()]))
    r = kwire.Reader(c.call(ADD_PARTITIONS_TO_TXN, 2, body))
    r.i32()
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = r.i16()
    return out


def add_partitions_to_txn_v4(c, tid, pid, epoch, topics):
    """AddPartitionsToTxn v4 (batched, flexible; broker to broker in Kafka) -> top-level error."""
    txn = (kwire.compact_string(tid) + kwire.i64(pid) + kwire.i16(epoch) + kwire.boolean(False)
           + kwire.compact_array([kwire.compact_string(t) + kwire.compact_array(
               [kwire.i32(p) for p in ps]) + kwire.TAGS for t, ps in topics.items()])
           + kwire.TAGS)
    r = kwire.Reader(c.call(ADD_PARTITIONS_TO_TXN, 4, kwire.compact_array([txn]) + kwire.TAGS,
                            flexible_req=True))
    r.i32()
    return r.i16()


def txn_offset_commit(c, tid, group, pid, epoch, offsets):
    """TxnOffsetCommit v2: offsets {(topic, p): offset} -> {(topic, p): error}."""
    by_topic = {}
    for (t, p), off in offsets.items():
        by_topic.setdefault(t, []).append((p, off))
    body = (kwire.string(tid) + kwire.string(group) + kwire.i64(pid) + kwire.i16(epoch)
            + kwire.array([kwire.string(t) + kwire.array([kwire.i32(p) + kwire.i64(o)
                                                          + kwire.i32(-1) + kwire.string("")
                                                          for p, o in ps])
                           for t, ps in by_topic.items()]))
    r = kwire.Reader(c.call(TXN_OFFSET_COMMIT, 2, body))
    r.i32()
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p = r.i32()
            out[(t, p)] = r.i16()
    return out


def add_offsets_to_txn(c, tid, pid, epoch, group):
    """AddOffsetsToTxn v1 -> error."""
    body = kwire.string(tid) + kwire.i64(pid) + kwire.i16(epoch) + kwire.string(group)
    r = kwire.Reader(c.call(ADD_OFFSETS_TO_TXN, 1, body))
    r.i32()
    return r.i16()


def end_txn(c, tid, pid, epoch, commit=True):
    """EndTxn v1 -> error."""
    body = kwire.string(tid) + kwire.i64(pid) + kwire.i16(epoch) + kwire.boolean(commit)
    r = kwire.Reader(c.call(END_TXN, 1, body))
    r.i32()
    return r.i16()


def create_topic_validate(c, name):
    """CreateTopics v5 (flexible), validate only, one partition -> (error, TopicConfigErrorCode,
    NumPartitions, {config names})."""
    body = (kwire.compact_array([kwire.compact_string(name) + kwire.i32(1) + kwire.i16(1)
                                 + kwire.compact_array([]) + kwire.compact_array([]) + kwire.TAGS])
            + kwire.i32(10000) + kwire.boolean(True) + kwire.TAGS)
    r = kwire.Reader(c.call(kwire.CREATE_TOPICS, 5, body, flexible_req=True))
    r.i32()
    out = []

    def config(r):
        n = r.compact_string()
        r.compact_string(), r.boolean(), r.i8(), r.boolean()
        r.tags()
        return n

    def topic(r):
        r.compact_string()
        err = r.i16()
        r.compact_string()
        parts = r.i32()
        r.i16()  # ReplicationFactor
        names = set(r.compact_array(config) or [])
        cfg_err = 0
        for _ in range(r.uvarint()):
            tag, size = r.uvarint(), r.uvarint()
            data = kwire.Reader(r.take(size))
            if tag == 0:  # TopicConfigErrorCode
                cfg_err = data.i16()
        out.append((err, cfg_err, parts, names))
    r.compact_array(topic)
    assert len(out) == 1, out
    return out[0]


def fetch_offsets_v1(c, group, topics):
    """OffsetFetch v1 (no group-level error field): {(topic, p): (offset, error)}."""
    body = kwire.string(group) + kwire.array(
        [kwire.string(t) + kwire.array([kwire.i32(p) for p in ps]) for t, ps in topics.items()])
    r = kwire.Reader(c.call(kwire.OFFSET_FETCH, 1, body))
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, off = r.i32(), r.i64()
            r.string()
            out[(t, p)] = (off, r.i16())
    return out


def first_consumer_error(c, timeout=20):
    """Poll a subscribed consumer until an error arrives: its code, or None for a record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in c.consume(num_messages=10, timeout=0.5):
            if m.error():
                return m.error().code()
            return None
    return "timeout"


@pytest.mark.timeout(120)
def test_consumer_group_acls(cluster, shop):
    """A confluent-kafka consumer in a group it may not READ gets GROUP_AUTHORIZATION_FAILED;
    in its own group it joins, consumes, commits and reads its committed offset back."""
    mk = cluster
    assert produce_error(mk, "events", shop["app"]) is None
    assert produce_error(mk, "events", shop["app"]) is None

    bad = ck.Consumer(ck_conf(mk, **{"group.id": "other-g", "auto.offset.reset": "earliest"},
                              **shop["app"]))
    try:
        bad.subscribe(["events"])
        assert first_consumer_error(bad) == ck.KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        bad.close()

    good = ck.Consumer(ck_conf(mk, **{"group.id": "app-g", "auto.offset.reset": "earliest",
                                      "enable.auto.commit": False}, **shop["app"]))
    try:
        good.subscribe(["events"])
        got, deadline = [], time.monotonic() + 30
        while len(got) < 2 and time.monotonic() < deadline:
            for m in good.consume(num_messages=10, timeout=0.5):
                assert not m.error(), m.error()
                got.append(m)
        assert len(got) >= 2
        good.commit(asynchronous=False)
        tp = good.committed([ck.TopicPartition("events", 0)], timeout=10)[0]
        assert tp.error is None and tp.offset == got[-1].offset() + 1, tp
    finally:
        good.close()  # LeaveGroup: group READ

    # LeaveGroup and FindCoordinator over the wire: the exact codes.
    with wire_as(mk, shop["app"]) as c:
        assert c.leave_v1("other-g", "m") == GROUP_AUTHORIZATION_FAILED
        assert c.find_coordinator("other-g", key_type=0, version=2)[0] == GROUP_AUTHORIZATION_FAILED
        assert c.find_coordinator("other-tx", key_type=1, version=2)[0] == \
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert c.find_coordinator("app-tx-1", key_type=1, version=2)[0] == 0
        assert [e for _, e, *_ in c.find_coordinators_v4(["app-g", "other-g"])] == \
            [0, GROUP_AUTHORIZATION_FAILED]


@pytest.mark.timeout(120)
def test_offset_fetch_and_list_groups(cluster, shop):
    """OffsetFetch needs DESCRIBE on the group and answers topics without DESCRIBE with
    TOPIC_AUTHORIZATION_FAILED (or leaves them out of "all offsets"); ListGroups lists only the
    groups the principal may DESCRIBE.  The admin key sees everything."""
    mk = cluster
    offsets = {("events", 0): 5, ("secret", 0): 7}
    for g in ("app-of", "hidden-g", "app-del"):
        with wire_as(mk, shop["admin"], coordinator(mk, shop["admin"], g)) as c:
            assert set(c.commit(g, offsets).values()) == {0}

    with wire_as(mk, shop["app"], coordinator(mk, shop["app"], "app-of")) as c:
        err, got = c.fetch_offsets("app-of", {"events": [0], "secret": [0]})
        assert err == 0
        assert got[("events", 0)][0] == 5 and got[("events", 0)][3] == 0, got
        assert got[("secret", 0)][0] == -1 and got[("secret", 0)][3] == TOPIC_AUTHORIZATION_FAILED
        err, got = c.fetch_offsets("app-of")  # all offsets: secret is left out
        assert err == 0 and set(got) == {("events", 0)}, got
        out = c.fetch_offsets_v8({"app-of": None, "hidden-g": {"events": [0]}})
        assert out["app-of"][0] == 0 and set(out["app-of"][1]) == {("events", 0)}, out
        assert out["hidden-g"][0] == GROUP_AUTHORIZATION_FAILED, out
        assert c.fetch_offsets("hidden-g", {"events": [0]})[0] == GROUP_AUTHORIZATION_FAILED
        # v0-1 have no group error field: the error is on every requested partition
        assert fetch_offsets_v1(c, "hidden-g", {"events": [0], "secret": [0]}) == \
            {("events", 0): (-1, GROUP_AUTHORIZATION_FAILED),
             ("secret", 0): (-1, GROUP_AUTHORIZATION_FAILED)}
        assert fetch_offsets_v1(c, "app-of", {"events": [0], "secret": [0]}) == \
            {("events", 0): (5, 0), ("secret", 0): (-1, TOPIC_AUTHORIZATION_FAILED)}
        # OffsetCommit: topic READ per topic (secret), the group's own READ (hidden-g)
        res = c.commit("app-of", {("events", 0): 6, ("secret", 0): 8})
        assert res == {("events", 0): 0, ("secret", 0): TOPIC_AUTHORIZATION_FAILED}, res
        assert set(c.commit("hidden-g", {("events", 0): 2}).values()) == \
            {GROUP_AUTHORIZATION_FAILED}
        # OffsetDelete: group DELETE (the app key has READ only on app-of), then topic READ
        assert c.offset_delete("app-of", {"events": [0]})[0] == GROUP_AUTHORIZATION_FAILED
    with wire_as(mk, shop["app"], coordinator(mk, shop["app"], "app-del")) as c:
        assert c.offset_delete("app-del", {"events": [0], "secret": [0]}) == \
            (0, {("events", 0): 0, ("secret", 0): TOPIC_AUTHORIZATION_FAILED})
        assert set(c.fetch_offsets("app-del")[1]) == set()  # events' offset is gone
    with wire_as(mk, shop["admin"], coordinator(mk, shop["admin"], "app-of")) as c:
        err, got = c.fetch_offsets("app-of")
        assert err == 0 and got[("events", 0)][0] == 6 and got[("secret", 0)][0] == 7, got

    app = kp_admin(mk, shop["app"]["sasl.username"], shop["app"]["sasl.password"])
    adm = kp_admin(mk, shop["admin"]["sasl.username"], shop["admin"]["sasl.password"])
    try:
        app_groups = {g for g, _ in app.list_consumer_groups()}
        assert "app-of" in app_groups and "hidden-g" not in app_groups, app_groups
        assert all(g.startswith("app-") for g in app_groups), app_groups
        # kafka-python's all-offsets OffsetFetch: only the topics the app may describe
        offs = app.list_consumer_group_offsets("app-of")
        assert {(tp.topic, tp.partition) for tp in offs} == {("events", 0)}, offs
        assert {"app-of", "hidden-g"} <= {g for g, _ in adm.list_consumer_groups()}
    finally:
        app.close()
        adm.close()


@pytest.mark.timeout(120)
def test_describe_configs(cluster, shop):
    """DescribeConfigs needs DESCRIBE_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED) or on
    the cluster for a broker (CLUSTER_AUTHORIZATION_FAILED), through kafka-python."""
    mk = cluster

    def describe(creds, rtype, name):
        a = kp_admin(mk, creds["sasl.username"], creds["sasl.password"])
        try:
            out = []
            for resp in a.describe_configs([ConfigResource(rtype, name)]):
                for err, _msg, _rt, rname, entries in resp.resources:
                    out.append((rname, err, {e[0] for e in entries}))
            assert len(out) == 1, out
            return out[0]
        finally:
            a.close()

    name, err, keys = describe(shop["app"], ConfigResourceType.TOPIC, "events")
    assert (name, err) == ("events", 0) and "retention.ms" in keys
    assert describe(shop["app"], ConfigResourceType.TOPIC, "secret")[1:] == \
        (TOPIC_AUTHORIZATION_FAILED, set())
    # READ does not imply DESCRIBE_CONFIGS
    assert describe(shop["app"], ConfigResourceType.TOPIC, "ledger")[1] == TOPIC_AUTHORIZATION_FAILED
    # a topic that does not exist is refused the same way: nothing is told about it
    assert describe(shop["app"], ConfigResourceType.TOPIC, "nope")[1] == TOPIC_AUTHORIZATION_FAILED
    assert describe(shop["app"], ConfigResourceType.BROKER, "1")[1] == CLUSTER_AUTHORIZATION_FAILED
    assert describe(shop["admin"], ConfigResourceType.TOPIC, "secret")[1] == 0
    name, err, keys = describe(shop["admin"], ConfigResourceType.BROKER, "1")
    assert err == 0 and "num.partitions" in keys

    # CreateTopics tells a topic's partitions and configs only with DESCRIBE_CONFIGS on it.
    with wire_as(mk, shop["app"]) as c:
        assert create_topic_validate(c, "app-new-1") == (0, TOPIC_AUTHORIZATION_FAILED, -1, set())
        assert create_topic_validate(c, "other-new")[0] == TOPIC_AUTHORIZATION_FAILED
    with wire_as(mk, shop["admin"]) as c:
        err, cfg_err, parts, names = create_topic_validate(c, "adm-new")
        assert (err, cfg_err, parts) == (0, 0, 1) and "retention.ms" in names


@pytest.mark.timeout(60)
def test_metadata_auto_create(cluster, shop):
    """Metadata auto-creates a topic with CREATE on the topic or on the cluster (obs has the
    latter), after DESCRIBE on the topic."""
    mk = cluster
    with wire_as(mk, shop["obs"]) as c:
        t = c.metadata(["obs-auto"], allow_auto_create=True)["topics"][0]
        assert t["error"] in (0, kwire.LEADER_NOT_AVAILABLE), kwire.ename(t["error"])
    with wire_as(mk, shop["app"]) as c:  # no DESCRIBE on obs-*, no CREATE on the cluster
        t = c.metadata(["obs-auto2"], allow_auto_create=True)["topics"][0]
        assert t["error"] == TOPIC_AUTHORIZATION_FAILED
    with wire_as(mk, shop["admin"]) as c:
        names = {t["name"]: t["error"] for t in c.metadata()["topics"]}
    assert "obs-auto" in names and "obs-auto2" not in names, names


@pytest.mark.timeout(150)
def test_transactional_producer_acls(cluster, shop):
    """A confluent-kafka transactional producer whose transactional id is denied gets
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED; with its own id it commits a transaction with
    records and a group's offsets; a topic it may read but not write fails the transaction."""
    mk = cluster

    def producer(tid, creds):
        return ck.Producer(ck_conf(mk, **{"transactional.id": tid, "transaction.timeout.ms": 30000,
                                          "message.timeout.ms": 20000}, **creds))

    p = producer("other-tx", shop["app"])
    with pytest.raises(ck.KafkaException) as ei:
        p.init_transactions(20)
    assert ei.value.args[0].code() == ck.KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, ei.value

    p = producer("app-tx-ck", shop["app"])
    p.init_transactions(20)
    p.begin_transaction()
    got = []
    p.produce("events", value=b"in-txn", partition=0, on_delivery=lambda e, m: got.append(e))
    group = ck.Consumer(ck_conf(mk, **{"group.id": "app-txg"}, **shop["app"]))
    try:
        p.send_offsets_to_transaction([ck.TopicPartition("events", 0, 1)],
                                      group.consumer_group_metadata(), 20)
    finally:
        group.close()
    p.commit_transaction(20)
    assert got == [None]
    with wire_as(mk, shop["app"], coordinator(mk, shop["app"], "app-txg")) as c:
        assert c.fetch_offsets("app-txg", {"events": [0]})[1][("events", 0)][0] == 1

    # Offsets of a group the app may not READ: AddOffsetsToTxn refuses them.
    p.begin_transaction()
    denied = ck.Consumer(ck_conf(mk, **{"group.id": "other-g"}, **shop["app"]))
    try:
        with pytest.raises(ck.KafkaException) as ei:
            p.send_offsets_to_transaction([ck.TopicPartition("events", 0, 1)],
                                          denied.consumer_group_metadata(), 20)
    finally:
        denied.close()
    assert ei.value.args[0].code() == ck.KafkaError.GROUP_AUTHORIZATION_FAILED, ei.value
    p.abort_transaction(20)

    # ledger: READ (so Metadata is fine) but no WRITE: AddPartitionsToTxn refuses it and the
    # transaction cannot commit.  (No abort: nothing was added, so EndTxn would find no
    # transaction, INVALID_TXN_STATE, as in Kafka.)
    p.begin_transaction()
    errs = []
    p.produce("ledger", value=b"x", partition=0, on_delivery=lambda e, m: errs.append(e))
    with pytest.raises(ck.KafkaException) as ei:
        p.commit_transaction(20)
    p.flush(20)
    assert ei.value.args[0].code() == ck.KafkaError.TOPIC_AUTHORIZATION_FAILED, ei.value
    assert ei.value.args[0].txn_requires_abort()
    assert errs and all(e is not None for e in errs), errs  # the record was not delivered


@pytest.mark.timeout(120)
def test_transaction_apis_over_the_wire(cluster, shop):
    """The exact per-partition answers: AddPartitionsToTxn with a denied topic (TOPIC_ and
    OPERATION_NOT_ATTEMPTED for the rest), a denied transactional id, AddOffsetsToTxn with a
    denied group, EndTxn, InitProducerId without a transactional id, ListTransactions and
    DescribeTransactions filtering."""
    mk = cluster
    tid = "app-tx-w"
    node = coordinator(mk, shop["app"], tid, key_type=1)
    with wire_as(mk, shop["app"], node) as c:
        err, pid, epoch = c.init_producer_id(tid)
        assert err == 0
        res = add_partitions_to_txn(c, tid, pid, epoch, {"events": [0], "ledger": [0]})
        assert res == {("events", 0): OPERATION_NOT_ATTEMPTED,
                       ("ledger", 0): TOPIC_AUTHORIZATION_FAILED}, res
        assert add_partitions_to_txn(c, tid, pid, epoch, {"events": [0]}) == {("events", 0): 0}
        assert add_offsets_to_txn(c, tid, pid, epoch, "hidden-g") == GROUP_AUTHORIZATION_FAILED
        assert add_offsets_to_txn(c, tid, pid, epoch, "app-g") == 0
        # the batched form needs CLUSTER_ACTION, which only the admin key has
        assert add_partitions_to_txn_v4(c, tid, pid, epoch, {"events": [0]}) == \
            CLUSTER_AUTHORIZATION_FAILED
        # a transactional id the app may not WRITE, whatever the producer id
        res = add_partitions_to_txn(c, "other-tx", pid, epoch, {"events": [0], "ledger": [0]})
        assert set(res.values()) == {TRANSACTIONAL_ID_AUTHORIZATION_FAILED}, res
        assert end_txn(c, "other-tx", pid, epoch) == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert c.init_producer_id("other-tx")[0] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        # idempotent producers: WRITE on some topic (events) is enough
        assert c.init_producer_id(None)[0] == 0
    # TxnOffsetCommit: transactional id WRITE, group READ (answer every partition), topic READ
    with wire_as(mk, shop["app"], coordinator(mk, shop["app"], "app-g")) as c:
        res = txn_offset_commit(c, tid, "app-g", pid, epoch, {("events", 0): 1, ("secret", 0): 1})
        assert res == {("events", 0): 0, ("secret", 0): TOPIC_AUTHORIZATION_FAILED}, res
        res = txn_offset_commit(c, tid, "hidden-g", pid, epoch, {("events", 0): 1})
        assert res == {("events", 0): GROUP_AUTHORIZATION_FAILED}, res
        res = txn_offset_commit(c, "other-tx", "app-g", pid, epoch, {("events", 0): 1})
        assert res == {("events", 0): TRANSACTIONAL_ID_AUTHORIZATION_FAILED}, res
    with wire_as(mk, shop["admin"], coordinator(mk, shop["admin"], "adm-tx", key_type=1)) as c:
        assert c.init_producer_id("adm-tx")[0] == 0
    with wire_as(mk, shop["obs"]) as c:  # READ only: no IDEMPOTENT_WRITE, no WRITE anywhere
        assert c.init_producer_id(None)[0] == CLUSTER_AUTHORIZATION_FAILED
        assert c.describe_producers("secret", [0])[0][0] == TOPIC_AUTHORIZATION_FAILED
        leader = c.metadata(["events"])["topics"][0]["partitions"][0]["leader"]
    with wire_as(mk, shop["obs"], leader) as c:  # OffsetForLeaderEpoch: topic DESCRIBE
        assert c.offset_for_leader_epoch("secret", 0, 0)[0] == TOPIC_AUTHORIZATION_FAILED
        assert c.offset_for_leader_epoch("events", 0, 0)[0] == 0
        assert c.describe_producers("events", [0])[0][0] == 0

    # DescribeTransactions shows only the topics the principal may DESCRIBE: the admin's
    # transaction under an id the app may describe, with a partition of secret.
    shared = "app-tx-shared"
    with wire_as(mk, shop["admin"], coordinator(mk, shop["admin"], shared, key_type=1)) as c:
        err, apid, aepoch = c.init_producer_id(shared)
        assert err == 0
        assert set(add_partitions_to_txn(c, shared, apid, aepoch,
                                         {"events": [0], "secret": [0]}).values()) == {0}
        assert c.describe_transactions([shared])[shared]["partitions"] == \
            {("events", 0), ("secret", 0)}
    with wire_as(mk, shop["app"], coordinator(mk, shop["app"], shared, key_type=1)) as c:
        d = c.describe_transactions([shared])[shared]
        assert d["error"] == 0 and d["partitions"] == {("events", 0)}, d
        assert end_txn(c, shared, apid, aepoch, commit=False) == 0

    # ListTransactions (every broker: each lists what it coordinates) and DescribeTransactions
    listed = {"app": set(), "admin": set()}
    for who in listed:
        for b, _ in mk.up_brokers():
            with wire_as(mk, shop[who], b) as c:
                err, states = c.list_transactions()
                assert err == 0
                listed[who] |= {t for t, _, _ in states}
    assert tid in listed["app"] and "adm-tx" not in listed["app"], listed
    assert {tid, "adm-tx"} <= listed["admin"], listed
    with wire_as(mk, shop["app"], node) as c:
        d = c.describe_transactions([tid])[tid]
        assert d["error"] == 0 and d["partitions"] == {("events", 0)}, d
        assert end_txn(c, tid, pid, epoch, commit=True) == 0
    with wire_as(mk, shop["app"]) as c:
        assert c.describe_transactions(["adm-tx"])["adm-tx"]["error"] == \
            TRANSACTIONAL_ID_AUTHORIZATION_FAILED
