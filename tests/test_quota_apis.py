"""Kafka's quota APIs and the limits the request layer enforces (issue 11).

DescribeClientQuotas (48) and AlterClientQuotas (49), KIP-546, scoped to the caller's tenant.
Neither python3-confluent-kafka 1.7 (Debian) nor kafka-python 2.0.2 has
describe_client_quotas / alter_client_quotas, so those requests are kwire frames (v1 flexible,
v0 too) on connections authenticated with SASL PLAIN as a tenant's API key.  The limits are
driven by real clients where the client can show them: confluent-kafka for CreateTopics over
max_partitions, a produce over max_storage_bytes and logins over the connection limits (its
authentication error); CreateTopics v7 / DeleteTopics v5 over controller_mutation_rate
(error 89, THROTTLING_QUOTA_EXCEEDED) are kwire frames, since librdkafka 2.0 speaks CreateTopics
v4, which Kafka (and minikora) answer by accepting and reporting the throttle time.  Either way
the throttled connection is muted for that time afterwards (KIP-219), as for byte rates.

Tenant-wide limits are declared at start (minikora.tenant.<id>.quotas=KEY=VALUE,...).
"""

import math
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import NewTopic
from kafka.admin import ACLOperation, ResourceType

import kwire
from clients import ck_result
from cluster import Cluster
from test_acls import acl, kp_admin
from test_tenants import ck_auth_error, ck_conf, http, new_tenant, sasl

U, C, IP = "user", "client-id", "ip"
EXACT, DEFAULT, ANY = 0, 1, 2
PBR, CBR, RP, CMR, CCR = ("producer_byte_rate", "consumer_byte_rate", "request_percentage",
                          "controller_mutation_rate", "connection_creation_rate")


def login(mk, key, secret, broker=None):
    c = mk.wire(broker)
    err, msg = c.sasl_plain(key, secret)
    assert err == 0, msg
    return c


def entries(c, components=(), strict=False, version=1):
    """Describe -> {frozenset(entity items): {key: value}}"""
    err, msg, ents = c.describe_client_quotas(components, strict, version)
    assert err == 0, (kwire.ename(err), msg)
    return {frozenset(e.items()): v for e, v in ents}


def E(**names):
    """An entity as entries() keys it: E(user=None) is <default> user."""
    return frozenset((k.replace("_", "-"), v) for k, v in names.items())


def alter_one(c, entity, ops, validate_only=False):
    (res,) = c.alter_client_quotas([(entity, ops)], validate_only)
    return res[0], res[1]


# ---------------------------------------------------------------------------------------------
# the APIs
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two(module_cluster):
    mk = module_cluster
    _, ka, sa = new_tenant(mk, "qa-acme")
    _, kb, sb = new_tenant(mk, "qa-globex")
    return mk, (ka, sa), (kb, sb)


@pytest.mark.timeout(60)
def test_alter_and_describe_filters(two):
    mk, (ka, sa), _ = two
    c = login(mk, ka, sa)
    res = c.alter_client_quotas([
        ([(U, None)], [(PBR, 1048576, False)]),
        ([(U, ka), (C, "app")], [(CBR, 2e6, False), (RP, 50, False)]),
        ([(U, ka)], [(CMR, 2.5, False)]),
        ([(C, None)], [(CBR, 1000, False)]),
        ([(IP, "127.0.0.1")], [(CCR, 5, False)]),
    ])
    assert [r[0] for r in res] == [0] * 5, res
    assert res[1][2] == {U: ka, C: "app"}  # the entity is echoed as given
    want = {E(user=None): {PBR: 1048576.0}, E(user=ka, client_id="app"): {CBR: 2e6, RP: 50.0},
            E(user=ka): {CMR: 2.5}, E(client_id=None): {CBR: 1000.0},
            E(ip="127.0.0.1"): {CCR: 5.0}}
    assert entries(c) == want
    assert entries(c, version=0) == want  # v0 (non-flexible) too
    # exact: entities naming user ka (with or without other types, strict off)
    assert set(entries(c, [(U, EXACT, ka)])) == {E(user=ka), E(user=ka, client_id="app")}
    assert set(entries(c, [(U, EXACT, ka)], strict=True)) == {E(user=ka)}
    # default: the <default> user only
    assert set(entries(c, [(U, DEFAULT, None)])) == {E(user=None)}
    # any: every entity with a client-id, <default> included
    assert set(entries(c, [(C, ANY, None)])) == {E(user=ka, client_id="app"), E(client_id=None)}
    assert set(entries(c, [(U, ANY, None), (C, ANY, None)], strict=True)) == \
        {E(user=ka, client_id="app")}
    assert set(entries(c, [(IP, EXACT, "127.0.0.1")])) == {E(ip="127.0.0.1")}
    assert entries(c, [(U, EXACT, "nobody")]) == {}
    assert entries(c, strict=True) == {}  # strict with no component: no entity has no type
    # validate-only changes nothing; remove drops one key, the last key the entity
    assert alter_one(c, [(U, None)], [(PBR, 5, False)], validate_only=True)[0] == 0
    assert entries(c)[E(user=None)] == {PBR: 1048576.0}
    assert alter_one(c, [(U, ka), (C, "app")], [(RP, 0, True)])[0] == 0
    assert alter_one(c, [(C, None)], [(CBR, 0, True)])[0] == 0
    got = entries(c)
    assert got[E(user=ka, client_id="app")] == {CBR: 2e6} and E(client_id=None) not in got
    # removing a key that is not set is fine
    assert alter_one(c, [(C, "ghost")], [(PBR, 0, True)])[0] == 0


@pytest.mark.timeout(60)
def test_tenants_are_isolated(two):
    mk, (ka, sa), (kb, sb) = two
    a, b = login(mk, ka, sa), login(mk, kb, sb)
    assert alter_one(a, [(C, "shared-app")], [(PBR, 111, False)])[0] == 0
    assert E(client_id="shared-app") not in entries(b)
    assert entries(b, [(C, EXACT, "shared-app")]) == {}
    # the same entity in B is B's own
    assert alter_one(b, [(C, "shared-app")], [(PBR, 222, False)])[0] == 0
    assert entries(a)[E(client_id="shared-app")] == {PBR: 111.0}
    assert entries(b)[E(client_id="shared-app")] == {PBR: 222.0}
    # B removing it leaves A's
    assert alter_one(b, [(C, "shared-app")], [(PBR, 0, True)])[0] == 0
    assert entries(a)[E(client_id="shared-app")] == {PBR: 111.0}
    # the default tenant (unauthenticated) sees neither
    d = mk.wire()
    assert E(client_id="shared-app") not in entries(d)


BAD_ALTERS = [
    ([(U, "bob")], [(PBR, -1, False)]),                       # negative
    ([(U, "bob")], [(PBR, 0, False)]),                        # zero
    ([(U, "bob")], [(PBR, math.nan, False)]),                 # not a number
    ([(U, "bob")], [(PBR, math.inf, False)]),
    ([(U, "bob")], [(PBR, 1e300, False)]),                    # absurd
    ([(U, "bob")], [(RP, 1e7, False)]),
    ([(U, "bob")], [(PBR, 1.5, False)]),                      # a LONG in Kafka
    ([(U, "bob")], [("no_such_key", 1, False)]),
    ([(U, "bob")], [("max_partitions", 5, False)]),           # tenant-wide only
    ([(U, "bob")], [(CCR, 5, False)]),                        # ip entities only
    ([(IP, "127.0.0.1")], [(PBR, 100, False)]),
    ([(IP, "127.0.0.1")], [(CCR, 2.5, False)]),               # an INT in Kafka
    ([(IP, "not-an-ip")], [(CCR, 5, False)]),
    ([(U, "bob"), (IP, "127.0.0.1")], [(PBR, 100, False)]),
    ([(U, "")], [(PBR, 100, False)]),                         # empty name (null is <default>)
    ([(U, "bob"), (U, "eve")], [(PBR, 100, False)]),
    ([("group", "g")], [(PBR, 100, False)]),
    ([], [(PBR, 100, False)]),
    ([(U, "bob")], [(PBR, 100, False), (PBR, 200, False)]),   # a key twice
    ([(U, "bob")], [(CBR, 5000, False), (PBR, -3, False)]),   # one bad op: nothing of it
]


@pytest.mark.timeout(60)
def test_bad_values_refused_limit_kept(two):
    mk, (ka, sa), _ = two
    c = login(mk, ka, sa)
    assert alter_one(c, [(U, "bob")], [(PBR, 1e6, False)])[0] == 0
    assert alter_one(c, [(IP, "127.0.0.1")], [(CCR, 7, False)])[0] == 0
    before = entries(c)
    for i, (entity, ops) in enumerate(BAD_ALTERS):
        err, msg = alter_one(c, entity, ops)
        assert err == kwire.INVALID_REQUEST and msg, (i, entity, ops, kwire.ename(err), msg)
        err, msg = alter_one(c, entity, ops, validate_only=True)
        assert err == kwire.INVALID_REQUEST, (i, entity, ops)
    assert entries(c) == before, "a refused alteration changed a limit"
    assert before[E(user="bob")] == {PBR: 1e6}
    # a good and a bad entry in one request: the good one applies, the bad one does not
    res = c.alter_client_quotas([([(U, "bob")], [(PBR, 2e6, False)]),
                                 ([(U, "carol")], [(PBR, -1, False)])])
    assert [r[0] for r in res] == [0, kwire.INVALID_REQUEST]
    got = entries(c)
    assert got[E(user="bob")] == {PBR: 2e6} and E(user="carol") not in got
    # the same entity twice in one request: the second entry is refused
    res = c.alter_client_quotas([([(U, "bob")], [(PBR, 3e6, False)]),
                                 ([(U, "bob")], [(PBR, 4e6, False)])])
    assert [r[0] for r in res] == [0, kwire.INVALID_REQUEST]
    assert entries(c)[E(user="bob")] == {PBR: 3e6}
    # bad describe filters answer the whole request
    for comps, code in [([(U, EXACT, None)], kwire.INVALID_REQUEST),
                        ([(U, DEFAULT, "x")], kwire.INVALID_REQUEST),
                        ([(U, ANY, "x")], kwire.INVALID_REQUEST),
                        ([(U, ANY, None), (U, ANY, None)], kwire.INVALID_REQUEST),
                        ([(IP, ANY, None), (U, ANY, None)], kwire.INVALID_REQUEST),
                        ([("group", ANY, None)], kwire.UNSUPPORTED_VERSION),
                        ([(U, 7, None)], kwire.UNSUPPORTED_VERSION)]:
        err, msg, ents = c.describe_client_quotas(comps)
        assert err == code and msg and ents is None, (comps, kwire.ename(err), msg)
    mk.assert_alive("bad quota requests")


@pytest.mark.timeout(90)
def test_acls_on_the_quota_apis(two):
    """DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster, as Kafka asks."""
    mk, (ka, sa), _ = two
    st, k = http(mk, "POST", "/v1/tenants/qa-acme/keys")
    assert st == 201, k
    kr, sr = k["key"], k["secret"]
    admin = kp_admin(mk, ka, sa)
    try:
        admin.create_acls([acl("User:" + ka, ACLOperation.ALL, ResourceType.CLUSTER, "kafka-cluster"),
                           acl("User:" + kr, ACLOperation.DESCRIBE_CONFIGS, ResourceType.CLUSTER,
                               "kafka-cluster")])
        reader = login(mk, kr, sr)
        err, _, ents = reader.describe_client_quotas()
        assert err == 0 and ents is not None
        err, msg = alter_one(reader, [(U, "bob")], [(PBR, 5, False)])
        assert err == kwire.CLUSTER_AUTHORIZATION_FAILED, (kwire.ename(err), msg)
        assert alter_one(login(mk, ka, sa), [(U, "bob")], [(PBR, 5e6, False)])[0] == 0
        # a key with no binding at all may not even describe
        st, k2 = http(mk, "POST", "/v1/tenants/qa-acme/keys")
        err, _, ents = login(mk, k2["key"], k2["secret"]).describe_client_quotas()
        assert err == kwire.CLUSTER_AUTHORIZATION_FAILED and ents is None
    finally:
        from test_acls import everything
        admin.delete_acls([everything()])
        admin.close()


@pytest.mark.timeout(120)
def test_quotas_survive_a_restart(minikora, tmp_path):
    key, secret = "QAPERSIST0000001", "persist-secret"
    mk = minikora("--brokers", "3", "--set", "minikora.tenant.persist.keys=%s:%s" % (key, secret),
                  data_dir=tmp_path / "data")
    c = login(mk, key, secret)
    res = c.alter_client_quotas([([(U, key), (C, "app")], [(PBR, 4096, False), (CMR, 3, False)]),
                                 ([(C, "we/ird id=&%")], [(CBR, 777, False)]),
                                 ([(IP, "::1")], [(CCR, 9, False)])])
    assert [r[0] for r in res] == [0, 0, 0], res
    before = entries(c)
    assert before[E(ip="::1")] == {CCR: 9.0}
    c.close()
    mk.restart()
    assert entries(login(mk, key, secret)) == before


# ---------------------------------------------------------------------------------------------
# the limits
# ---------------------------------------------------------------------------------------------
KEYS = {t: ("QA%s" % t.upper().replace("-", "")).ljust(16, "0")[:16] for t in
        ("muts", "parts", "store", "conns", "rate", "iprate")}
SECRET = "limit-secret"
DECLARED = {"muts": "controller_mutation_rate=1",
            "parts": "max_partitions=4",
            "store": "max_storage_bytes=4096",
            "conns": "max_connections=2",
            "rate": "connection_creation_rate=1",
            "iprate": None,
            "default": "max_connections=2"}


@pytest.fixture(scope="module")
def limits():
    args = ["--brokers", "3"]
    for t, q in DECLARED.items():
        if t in KEYS:
            args += ["--set", "minikora.tenant.%s.keys=%s:%s" % (t, KEYS[t], SECRET)]
        if q:
            args += ["--set", "minikora.tenant.%s.quotas=%s" % (t, q)]
    with Cluster(*args, name="quota_limits") as mk:
        yield mk


def creds(t):
    return sasl(KEYS[t], SECRET)


def timed(fn, *args, **kw):
    t = time.monotonic()
    out = fn(*args, **kw)
    return out, time.monotonic() - t


@pytest.mark.timeout(90)
def test_controller_mutation_rate_entity(two):
    """A client quota (the user's own; it beats the <default> user's): CreateTopics v7 / DeleteTopics v5
    past the bucket get THROTTLING_QUOTA_EXCEEDED with the throttle time; v4 is accepted and
    told the throttle time; the bucket refills at the rate.  Each throttled answer comes at once
    and then mutes its connection for the throttle time (KIP-219), as Kafka's controller
    mutation quota does: the next request on that connection waits, one on a new connection
    does not.  The tenant's throttle counters and events name controller_mutation_rate."""
    mk, (ka, sa), (kb, sb) = two
    c = login(mk, ka, sa)
    assert alter_one(c, [(U, None)], [(CMR, 1000, False)])[0] == 0
    assert alter_one(c, [(U, ka)], [(CMR, 1, False)])[0] == 0  # 1 partition/s, burst 11
    (throttle, res), answered = timed(c.create_topics, [("mut-a", 12, 1), ("mut-b", 1, 1)])
    muted_from = time.monotonic()
    assert [(n, e) for n, e, _ in res] == [("mut-a", 0), ("mut-b", kwire.THROTTLING_QUOTA_EXCEEDED)]
    assert 500 < throttle <= 3000, throttle
    assert answered < 0.5 * throttle / 1000, "throttled CreateTopics answered after %.2f s" % answered
    assert "controller_mutation_rate" in res[1][2]
    # a new connection is not muted: it is refused at once too
    with login(mk, ka, sa) as c2:
        (throttle2, res), answered = timed(c2.delete_topics, ["mut-a"], version=5)
        assert res[0][1] == kwire.THROTTLING_QUOTA_EXCEEDED and throttle2 > 0, (throttle2, res)
        assert answered < 0.5 * throttle / 1000, answered
    # the throttled connection is muted: its next request is read after the throttle time
    c.metadata([])
    waited = time.monotonic() - muted_from
    assert waited >= 0.8 * throttle / 1000, "muted for %.2f s only, throttle %d ms" % (waited, throttle)
    # older versions are not refused: accepted, with the throttle time
    throttle, res = c.create_topics([("mut-c", 1, 1)], version=4)
    assert res[0][1] == 0 and throttle > 0, (throttle, res)
    # librdkafka (CreateTopics v4) sees its topic created
    admin = ck.admin.AdminClient(ck_conf(mk, **sasl(ka, sa)))
    fut = admin.create_topics([NewTopic("mut-d", 1, 1)], operation_timeout=10, request_timeout=30)
    assert ck_result(fut["mut-d"]) is None
    # another tenant is not charged
    throttle, res = login(mk, kb, sb).create_topics([("mut-a", 12, 1), ("mut-b", 1, 1)])
    assert [e for _, e, _ in res] == [0, 0] and throttle == 0
    # after the throttle time the bucket has room again (a throttled answer's mute is that wait)
    for _ in range(3):
        throttle, res = c.create_topics([("mut-b", 1, 1)])
        if res[0][1] != kwire.THROTTLING_QUOTA_EXCEEDED:
            break
    assert res[0][1] == 0, res
    assert alter_one(c, [(U, None)], [(CMR, 0, True)])[0] == 0
    assert alter_one(c, [(U, ka)], [(CMR, 0, True)])[0] == 0
    # counted for the tenant under the quota that throttled
    tid = "qa-acme"
    st, q = http(mk, "GET", "/v1/tenants/%s/quotas" % tid)
    assert st == 200 and q["throttle"]["throttled_requests"] >= 3, q
    deadline = time.monotonic() + 5  # the admin tick turns counts into events once a second
    while True:
        st, ev = http(mk, "GET", "/v1/events?type=tenant_throttled")
        msgs = [e["message"] for e in ev["events"] if e["message"].startswith("tenant %s " % tid)]
        if any("controller_mutation_rate" in m for m in msgs) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any("controller_mutation_rate" in m for m in msgs), msgs


@pytest.mark.timeout(60)
def test_controller_mutation_rate_tenant_wide(limits):
    mk = limits
    c = login(mk, KEYS["muts"], SECRET)
    throttle, res = c.create_topics([("tw-a", 12, 1), ("tw-b", 2, 1)])
    assert [e for _, e, _ in res] == [0, kwire.THROTTLING_QUOTA_EXCEEDED], res
    assert throttle > 0 and "tenant-wide" in res[1][2]
    # validate-only is not charged, nor refused
    _, res = c.create_topics([("tw-c", 1, 1)], validate_only=True)
    assert res[0][1] == 0, res


@pytest.mark.timeout(60)
def test_max_partitions(limits):
    mk = limits
    admin = ck.admin.AdminClient(ck_conf(mk, **creds("parts")))

    def create(name, n, validate_only=False):
        futs = admin.create_topics([NewTopic(name, n, 1)], validate_only=validate_only,
                                   operation_timeout=10, request_timeout=30)
        return ck_result(futs[name])

    assert create("p3", 3) is None
    for validate_only in (True, False):
        err = create("p2", 2, validate_only)
        assert err is not None and err.code() == ck.KafkaError.POLICY_VIOLATION, err
        assert "max_partitions 4" in err.str(), err.str()
    assert create("p1", 1) is None  # exactly at the limit
    err = create("p1b", 1)
    assert err is not None and err.code() == ck.KafkaError.POLICY_VIOLATION
    assert set(admin.list_topics(timeout=10).topics) >= {"p3", "p1"}


@pytest.mark.timeout(60)
def test_max_storage_bytes(limits):
    """Produce until the tenant's stored bytes (cached up to a second) pass the limit: then
    every produce is refused with POLICY_VIOLATION naming it."""
    mk = limits
    c = creds("store")
    admin = ck.admin.AdminClient(ck_conf(mk, **c))
    assert ck_result(admin.create_topics([NewTopic("fill", 1, 1)], operation_timeout=10)["fill"]) is None
    p = ck.Producer(ck_conf(mk, acks="all", **{"message.timeout.ms": 10000, "retries": 0}, **c))
    errors = []

    def produce_one():
        got = []
        p.produce("fill", value=b"x" * 3000, partition=0, on_delivery=lambda e, m: got.append(e))
        p.flush(15)
        assert got, "no delivery report"
        return got[0]

    deadline = time.monotonic() + 10
    stored = 0
    while time.monotonic() < deadline:
        e = produce_one()
        if e is not None:
            errors.append(e)
            break
        stored += 1
        time.sleep(0.2)  # the stored bytes are recomputed at most once a second
    assert errors, "no produce was refused"
    assert errors[0].code() == ck.KafkaError.POLICY_VIOLATION, errors[0]
    assert 2 <= stored <= 10, stored  # 4096 bytes: two records fit, the cache may let a few more
    # it stays refused, and the answer (Produce v8's ErrorMessage) names the limit
    e = produce_one()
    assert e is not None and e.code() == ck.KafkaError.POLICY_VIOLATION
    w = login(mk, KEYS["store"], SECRET)
    (topic,) = w.metadata(["fill"])["topics"]
    leader = topic["partitions"][0]["leader"]
    w = login(mk, KEYS["store"], SECRET, broker=leader)
    body = kwire.produce_body(8, "fill", 0, kwire.record_batch([(None, b"y" * 100, [])]))
    ((_, _, err, _, msg),) = kwire.parse_produce(8, w.call(kwire.PRODUCE, 8, body), with_message=True)
    assert err == kwire.POLICY_VIOLATION and "max_storage_bytes 4096" in msg, (kwire.ename(err), msg)


def auth_errors(mk, c):
    return [e.str() for e in ck_auth_error(mk, c)]


@pytest.mark.timeout(60)
def test_max_connections(limits):
    mk = limits
    key = KEYS["conns"]
    held = [login(mk, key, SECRET), login(mk, key, SECRET, broker=2)]  # 2 brokers: tenant-wide
    third = mk.wire()
    err, msg = third.sasl_plain(key, SECRET)
    assert err == kwire.SASL_AUTHENTICATION_FAILED and "max_connections 2" in msg, msg
    assert third.wait_closed(5)[0], "the refused connection stays open"
    errs = auth_errors(mk, creds("conns"))
    assert errs and any("max_connections" in s for s in errs), errs
    held.pop().close()
    # the slot is free once the close is seen
    deadline = time.monotonic() + 5
    while True:
        c = mk.wire()
        err, msg = c.sasl_plain(key, SECRET)
        if err == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert err == 0, msg
    for h in held + [c]:
        h.close()


@pytest.mark.timeout(60)
def test_connection_creation_rate_tenant_wide(limits):
    """1 connection/s over Kafka's 11 one-second windows: ten logins in a burst fit (10 over at
    least 10 s), the next is refused and not counted."""
    mk = limits
    key = KEYS["rate"]
    for i in range(10):
        login(mk, key, SECRET).close()
    c = mk.wire()
    err, msg = c.sasl_plain(key, SECRET)
    assert err == kwire.SASL_AUTHENTICATION_FAILED, (i, msg)
    assert "connection_creation_rate 1/s" in msg, msg
    assert c.wait_closed(5)[0]
    errs = auth_errors(mk, creds("rate"))
    assert errs and any("connection_creation_rate" in s for s in errs), errs


@pytest.mark.timeout(60)
def test_connection_creation_rate_ip_entity(limits):
    mk = limits
    key = KEYS["iprate"]
    c = login(mk, key, SECRET)
    assert alter_one(c, [(IP, "127.0.0.1")], [(CCR, 1, False)])[0] == 0
    for i in range(10):
        login(mk, key, SECRET).close()
    d = mk.wire()
    err, msg = d.sasl_plain(key, SECRET)
    assert err == kwire.SASL_AUTHENTICATION_FAILED and "ip quota" in msg, msg
    # the ip entity is the tenant's: another tenant from the same address is not limited
    login(mk, KEYS["parts"], SECRET).close()
    assert alter_one(c, [(IP, "127.0.0.1")], [(CCR, 0, True)])[0] == 0
    login(mk, key, SECRET).close()


@pytest.mark.timeout(60)
def test_default_tenant_connections_count_at_first_request(limits):
    mk = limits
    held = [mk.wire(), mk.wire()]
    extra = mk.wire()
    extra.api_versions()  # not counted: it could still authenticate into another tenant
    for h in held:
        h.metadata()
    extra.send(kwire.request(kwire.METADATA, 1, extra.next_corr(), kwire.metadata_body(1)))
    assert extra.wait_closed(5)[0], "a third default-tenant connection was served"
    # an authenticated tenant is not counted against the default tenant
    login(mk, KEYS["parts"], SECRET).metadata()
    mk.assert_alive("connection limits")
