"""Tenants bound to SASL credentials, with namespaces (issue 10).

Tenants and API keys are made through the admin API; real clients (confluent-kafka,
kafka-python) authenticate with SASL PLAIN and SCRAM-SHA-512 over SASL_PLAINTEXT; two
tenants own a topic of the same name and each sees only its own records and names.  Denied
cases assert the exact Kafka error; bad SASL input over the raw wire leaves the process alive.
"""

import json
import re
import struct
import subprocess
import time
import urllib.error
import urllib.request

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import NewTopic

import kwire
from clients import RDK_LOG, ck_result, make_records

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
UNSUPPORTED_SASL_MECHANISM = 33
ILLEGAL_SASL_STATE = 34
SASL_AUTHENTICATION_FAILED = 58


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def http(mk, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(mk.admin_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **mk.admin_headers()})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def new_tenant(mk, tid):
    st, t = http(mk, "POST", "/v1/tenants", {"id": tid})
    assert st == 201, t
    st, k = http(mk, "POST", "/v1/tenants/%s/keys" % tid)
    assert st == 201, k
    assert len(k["key"]) == 16 and len(k["secret"]) == 48
    return t, k["key"], k["secret"]


def sasl(key, secret, mech="PLAIN"):
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mech,
            "sasl.username": key, "sasl.password": secret}


def ck_conf(mk, **extra):
    conf = {"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "socket.timeout.ms": 10000}
    conf.update(extra)
    return conf


def ck_create(mk, name, creds, partitions=1):
    admin = ck.admin.AdminClient(ck_conf(mk, **creds))
    futs = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10,
                               request_timeout=30)
    return ck_result(futs[name])


def ck_topics(mk, creds):
    admin = ck.admin.AdminClient(ck_conf(mk, **creds))
    return set(admin.list_topics(timeout=10).topics)


def ck_produce(mk, topic, values, creds):
    p = ck.Producer(ck_conf(mk, acks="all", **creds))
    errors = []
    for v in values:
        p.produce(topic, value=v, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert p.flush(30) == 0
    assert not errors, errors


def ck_consume_all(mk, topic, n, creds, timeout=30):
    c = ck.Consumer(ck_conf(mk, **{"group.id": "g-" + topic, "auto.offset.reset": "earliest",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 100},
                            **creds))
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got, deadline = [], time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.5):
                assert not m.error(), m.error()
                got.append(m.value())
        # a little longer: nothing more than n may arrive (the other tenant's records)
        for m in c.consume(num_messages=100, timeout=0.5):
            if not m.error():
                got.append(m.value())
        return got
    finally:
        c.close()


def ck_auth_error(mk, creds):
    """Connect with creds and return the error code librdkafka reports for the failure."""
    errs = []
    admin = ck.admin.AdminClient(ck_conf(mk, error_cb=lambda e: errs.append(e), **creds))
    with pytest.raises(ck.KafkaException):
        admin.list_topics(timeout=5)
    deadline = time.monotonic() + 10
    while not errs and time.monotonic() < deadline:
        admin.poll(0.2)  # serves error_cb
    return [e for e in errs if e.code() == ck.KafkaError._AUTHENTICATION]


def kp_kwargs(key, secret, mech="PLAIN"):
    return dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mech,
                sasl_plain_username=key, sasl_plain_password=secret)


def sasl_conn(mk, mechanism, version=1):
    """A raw connection after SaslHandshake(mechanism); returns (conn, error, mechanisms)."""
    c = mk.wire()
    body = c.call(SASL_HANDSHAKE, version, kwire.string(mechanism))
    r = kwire.Reader(body)
    err = r.i16()
    mechs = r.array(lambda rr: rr.string())
    return c, err, mechs


def sasl_authenticate(c, token):
    body = c.call(SASL_AUTHENTICATE, 1, kwire.bytes_(token))
    r = kwire.Reader(body)
    return r.i16(), r.string(), r.bytes_()


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tenants(module_cluster):
    mk = module_cluster
    a, ka, sa = new_tenant(mk, "acme")
    b, kb, sb = new_tenant(mk, "globex")
    return {"a": (a, ka, sa), "b": (b, kb, sb)}


@pytest.mark.timeout(120)
def test_admin_routes(cluster, tenants):
    mk = cluster
    st, body = http(mk, "GET", "/v1/tenants")
    assert st == 200
    ids = {t["id"]: t for t in body["tenants"]}
    assert {"default", "acme", "globex"} <= set(ids)
    assert body["tenants"][0]["id"] == "default"  # listed first
    for tid in ("acme", "globex"):
        assert 0 <= ids[tid]["cell"] < 2  # 6 brokers, 3 AZs: two cells
    assert -1 <= ids["default"]["cell"] < 2  # -1: any cell
    st, one = http(mk, "GET", "/v1/tenants/acme")
    assert st == 200 and one["keys"] == [tenants["a"][1]]
    assert http(mk, "POST", "/v1/tenants", {"id": "acme"})[0] == 409
    assert http(mk, "POST", "/v1/tenants", {"id": "Bad_Id"})[0] == 400
    assert http(mk, "POST", "/v1/tenants", {"id": "default"})[0] == 400
    assert http(mk, "GET", "/v1/tenants/nope")[0] == 404
    # the default tenant can be read, not changed
    st, d = http(mk, "GET", "/v1/tenants/default")
    assert st == 200 and d["id"] == "default" and d["keys"] == [], d
    assert http(mk, "POST", "/v1/tenants/default/keys")[0] == 404
    assert http(mk, "DELETE", "/v1/tenants/default")[0] == 404
    # each cell of /v1/cluster names the tenants placed there
    st, cl = http(mk, "GET", "/v1/cluster")
    for tid in ("acme", "globex"):
        assert [c["id"] for c in cl["cells"] if tid in c["tenants"]] == [ids[tid]["cell"]], cl["cells"]
    assert http(mk, "DELETE", "/v1/tenants/acme/keys/NOPE")[0] == 404


@pytest.mark.timeout(180)
def test_two_tenants_same_topic_isolated(cluster, tenants):
    mk = cluster
    _, ka, sa = tenants["a"]
    _, kb, sb = tenants["b"]
    ca, cb = sasl(ka, sa, "PLAIN"), sasl(kb, sb, "SCRAM-SHA-512")
    assert ck_create(mk, "orders", ca) is None
    assert ck_create(mk, "orders", cb) is None
    # a second create within one tenant is refused as Kafka does
    assert ck_create(mk, "orders", ca).code() == ck.KafkaError.TOPIC_ALREADY_EXISTS
    # 3 partitions x RF 3 in each tenant: every replica in the tenant's cell (P2C over cells
    # would put some elsewhere)
    for i, creds in enumerate((ca, cb)):
        admin = ck.admin.AdminClient(ck_conf(mk, **creds))
        fut = admin.create_topics([NewTopic("wide", 3, 3)], operation_timeout=10)
        assert ck_result(fut["wide"]) is None
    st, brokers = http(mk, "GET", "/v1/brokers")
    cell_of = {b["id"]: b["cell"] for b in brokers["brokers"]}
    for tid in ("acme", "globex"):
        tcell = http(mk, "GET", "/v1/tenants/" + tid)[1]["cell"]
        st, topic = http(mk, "GET", "/v1/topics/%s~wide" % tid)
        reps = [r for p in topic["topic"]["partition_details"] for r in p["replicas"]]
        assert len(reps) == 9 and {cell_of[r] for r in reps} == {tcell}, (tid, tcell, reps)
    # an explicit assignment outside the tenant's cell is refused
    tcell = http(mk, "GET", "/v1/tenants/acme")[1]["cell"]
    outside = [b for b, c in cell_of.items() if c != tcell][0]
    admin = ck.admin.AdminClient(ck_conf(mk, **ca))
    fut = admin.create_topics([NewTopic("elsewhere", 1, replica_assignment=[[outside]])],
                              operation_timeout=10)
    err = ck_result(fut["elsewhere"])
    assert err is not None and err.code() == ck.KafkaError.INVALID_REPLICA_ASSIGNMENT, err
    ck_produce(mk, "orders", [b"a-%d" % i for i in range(5)], ca)
    ck_produce(mk, "orders", [b"b-%d" % i for i in range(7)], cb)
    got_a = ck_consume_all(mk, "orders", 5, ca)
    got_b = ck_consume_all(mk, "orders", 7, cb)
    assert got_a == [b"a-%d" % i for i in range(5)]
    assert got_b == [b"b-%d" % i for i in range(7)]
    # Metadata shows only the tenant's own names, never a prefix form
    ta, tb, td = ck_topics(mk, ca), ck_topics(mk, cb), ck_topics(mk, {})
    assert "orders" in ta and "orders" in tb
    assert not [t for t in ta | tb | td if "~" in t or "acme" in t or "globex" in t]
    assert "orders" not in td  # the default tenant does not see them
    # each tenant's topics live in its own cell
    for tid in ("acme", "globex"):
        st, t = http(mk, "GET", "/v1/tenants/" + tid)
        assert st == 200 and sorted(t["topics"]) == ["orders", "wide"] and t["partitions"] == 4
        st, topic = http(mk, "GET", "/v1/topics/%s~orders" % tid)
        assert st == 200, topic
        assert topic["topic"]["cell"] == t["cell"]


@pytest.mark.timeout(180)
def test_kafka_python_plain_and_scram(cluster, tenants):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    mk = cluster
    _, ka, sa = tenants["a"]
    servers = mk.bootstrap.split(",")
    for mech, topic in (("PLAIN", "kp-plain"), ("SCRAM-SHA-512", "kp-scram")):
        assert ck_create(mk, topic, sasl(ka, sa)) is None
        p = KafkaProducer(bootstrap_servers=servers, acks="all", **kp_kwargs(ka, sa, mech))
        for i in range(3):
            p.send(topic, value=b"%s-%d" % (mech.encode(), i), partition=0).get(timeout=30)
        p.close()
        c = KafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False,
                          auto_offset_reset="earliest", fetch_max_wait_ms=100,
                          **kp_kwargs(ka, sa, mech))
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            c.seek_to_beginning(tp)
            got, deadline = [], time.monotonic() + 30
            while len(got) < 3 and time.monotonic() < deadline:
                for msgs in c.poll(timeout_ms=500).values():
                    got += [m.value for m in msgs]
            assert got == [b"%s-%d" % (mech.encode(), i) for i in range(3)]
            assert topic in c.topics()
            assert not [t for t in c.topics() if "~" in t]
        finally:
            c.close()


@pytest.mark.timeout(120)
def test_wrong_password_and_revoked_key(cluster, tenants):
    mk = cluster
    _, ka, sa = tenants["a"]
    for mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        assert ck_auth_error(mk, sasl(ka, sa[:-1] + ("y" if sa[-1] != "y" else "z"), mech)), mech
    assert ck_auth_error(mk, sasl("NOSUCHKEY0000000", sa))
    # revoke: a key that worked stops working, and its open connections are closed
    st, k = http(mk, "POST", "/v1/tenants/acme/keys")
    assert st == 201
    creds = sasl(k["key"], k["secret"], "SCRAM-SHA-256")
    assert "orders" in ck_topics(mk, creds)
    c = mk.wire()
    err, _, _ = sasl_authenticate_plain(c, k["key"], k["secret"])
    assert err == 0
    st, r = http(mk, "DELETE", "/v1/tenants/acme/keys/" + k["key"])
    assert st == 200 and r["connections_closed"] >= 1
    assert c.wait_closed(5)[0]
    assert ck_auth_error(mk, creds)
    # raw wire: the exact Kafka error
    c, err, _ = sasl_conn(mk, "PLAIN")
    assert err == 0
    err, msg, _ = sasl_authenticate(c, b"\0%s\0%s" % (k["key"].encode(), k["secret"].encode()))
    assert err == SASL_AUTHENTICATION_FAILED and "Authentication failed" in msg
    # one guess per connection: a second attempt closes it
    c.send(kwire.request(SASL_HANDSHAKE, 1, c.next_corr(), kwire.string("PLAIN")))
    assert c.wait_closed(5)[0]
    c.close()


def sasl_authenticate_plain(c, key, secret):
    body = c.call(SASL_HANDSHAKE, 1, kwire.string("PLAIN"))
    assert struct.unpack(">h", body[:2])[0] == 0
    return sasl_authenticate(c, b"\0%s\0%s" % (key.encode(), secret.encode()))


@pytest.mark.timeout(120)
def test_bad_sasl_input_leaves_process_alive(cluster, tenants):
    mk = cluster
    c, err, mechs = sasl_conn(mk, "GSSAPI")
    assert err == UNSUPPORTED_SASL_MECHANISM
    assert mechs == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    c.close()
    garbage = [b"", b"\0", b"\0\0\0", b"\xff" * 300, b"n,,n=,r=", b"p=tls-unique,,n=a,r=b",
               b"n,,n=AAAAAAAAAAAAAAAA,r=" + b"x" * 200, b"c=biws,r=x,p=AAAA", b"y" * 5000]
    for mech in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        for g in garbage:
            c, err, _ = sasl_conn(mk, mech)
            assert err == 0
            err, msg, _ = sasl_authenticate(c, g)
            assert err == SASL_AUTHENTICATION_FAILED, (mech, g, err, msg)
            assert msg and "~" not in msg
            c.close()
    # an interrupted SCRAM exchange: client-first, then a bogus client-final
    _, ka, _ = tenants["a"]
    c, err, _ = sasl_conn(mk, "SCRAM-SHA-256")
    err, _, server_first = sasl_authenticate(c, b"n,,n=%s,r=abcdef" % ka.encode())
    assert err == 0 and server_first.startswith(b"r=abcdef")
    nonce = server_first.split(b",")[0][2:]
    err, msg, _ = sasl_authenticate(c, b"c=biws,r=%s,p=%s" % (nonce, b"A" * 44))
    assert err == SASL_AUTHENTICATION_FAILED
    c.close()
    # SaslAuthenticate without a handshake
    c = mk.wire()
    err, _, _ = sasl_authenticate(c, b"\0a\0b")
    assert err == ILLEGAL_SASL_STATE
    c.close()
    # v0 handshake, then a bare garbage token: the connection is closed
    c, err, _ = sasl_conn(mk, "PLAIN", version=0)
    assert err == 0
    c.send(struct.pack(">i", 12) + b"\0nokey\0nopwd")
    assert c.wait_closed(5)[0]
    mk.assert_alive("bad SASL tokens")


@pytest.mark.timeout(180)
def test_auth_required_and_restart(minikora, tmp_path):
    mk = minikora("--set", "minikora.auth.required=true", data_dir=tmp_path / "d", ephemeral=False)
    _, key, secret = new_tenant(mk, "initech")
    creds = sasl(key, secret, "SCRAM-SHA-512")
    assert ck_create(mk, "t1", creds) is None
    ck_produce(mk, "t1", [b"x", b"y"], creds)
    # unauthenticated: Metadata closes the connection (Kafka's behaviour on a SASL listener)
    c = mk.wire()
    c.api_versions()  # allowed before authentication
    c.send(kwire.request(3, 1, c.next_corr(), kwire.metadata_body(1)))
    assert c.wait_closed(5)[0]
    admin = ck.admin.AdminClient(ck_conf(mk))
    with pytest.raises(ck.KafkaException):
        admin.list_topics(timeout=3)
    # an oversize frame before authentication is refused before it is read
    c = mk.wire()
    c.send(struct.pack(">i", 600 * 1024) + b"\0" * 64)
    assert c.wait_closed(5)[0]
    mk.assert_alive("pre-auth frames")
    # tenants, keys and the tenant's data survive a restart
    mk.restart()
    st, t = http(mk, "GET", "/v1/tenants/initech")
    assert st == 200 and t["keys"] == [key] and t["topics"] == ["t1"]
    assert ck_consume_all(mk, "t1", 2, creds) == [b"x", b"y"]
    # deleting the tenant removes its topics and its keys
    st, r = http(mk, "DELETE", "/v1/tenants/initech")
    assert st == 200 and r["topics_deleted"] == 1
    assert http(mk, "GET", "/v1/tenants/initech")[0] == 404
    assert ck_auth_error(mk, creds)
    st, topics = http(mk, "GET", "/v1/topics")
    assert not [x for x in json.dumps(topics).split('"') if x.startswith("initech~")]


@pytest.mark.timeout(180)
def test_listings_and_names_of_other_tenants(cluster, tenants):
    from confluent_kafka.admin import ConfigResource
    mk = cluster
    _, ka, sa = tenants["a"]
    _, kb, sb = tenants["b"]
    ca, cb = sasl(ka, sa), sasl(kb, sb, "SCRAM-SHA-256")
    assert ck_create(mk, "secret-b", cb) is None
    admin_a = ck.admin.AdminClient(ck_conf(mk, **ca))
    # DescribeConfigs and DeleteTopics of B's name from A: as if it did not exist
    fut = admin_a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "secret-b")])
    err = ck_result(list(fut.values())[0])
    assert err is not None and err.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert "~" not in str(err)
    fut = admin_a.delete_topics(["secret-b"], operation_timeout=10)
    err = ck_result(fut["secret-b"])
    assert err is not None and err.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert "secret-b" in ck_topics(mk, cb) and "secret-b" not in ck_topics(mk, ca)
    # own topic: DescribeConfigs works and names no internal name
    fut = admin_a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "orders")])
    cfg = list(fut.values())[0].result(timeout=30)
    assert "retention.ms" in cfg and not [v for v in cfg.values() if v.value and "~" in v.value]
    # the same group id in both tenants: two groups, each listed only to its tenant
    offsets = {}
    for creds, off in ((ca, 3), (cb, 5)):
        c = ck.Consumer(ck_conf(mk, **{"group.id": "shared-g", "enable.auto.commit": False}, **creds))
        c.commit(offsets=[ck.TopicPartition("orders", 0, off)], asynchronous=False)
        offsets[off] = c.committed([ck.TopicPartition("orders", 0)], timeout=10)[0].offset
        c.close()
    assert offsets == {3: 3, 5: 5}
    groups_a = {g.id for g in admin_a.list_groups(timeout=10)}
    groups_d = {g.id for g in ck.admin.AdminClient(ck_conf(mk)).list_groups(timeout=10)}
    assert "shared-g" in groups_a and not [g for g in groups_a if "~" in g]
    assert "shared-g" not in groups_d and not [g for g in groups_d if "~" in g]
    st, t = http(mk, "GET", "/v1/tenants/globex")
    assert "shared-g" in t["groups"] and "secret-b" in t["topics"]


@pytest.mark.timeout(120)
def test_tenants_declared_in_config(minikora, tmp_path):
    """A --config file declares a tenant and its key, so a CI job starts with them ready;
    they stay after a restart, and a malformed declaration stops the start with the reason."""
    key, secret = "CIKEY00000000001", "ci-secret-1"
    cfg = tmp_path / "mk.properties"
    cfg.write_text("minikora.tenant.ci.keys=%s:%s\n" % (key, secret))
    mk = minikora("--config", str(cfg), data_dir=tmp_path / "data")
    creds = sasl(key, secret)
    st, t = http(mk, "GET", "/v1/tenants/ci")
    assert st == 200 and t["id"] == "ci", t
    ck_create(mk, "jobs", creds)
    ck_produce(mk, "jobs", [b"a", b"b"], creds)
    assert sorted(ck_consume_all(mk, "jobs", 2, creds)) == [b"a", b"b"]
    assert "jobs" not in ck_topics(mk, {})            # the default tenant does not see it
    assert ck_auth_error(mk, sasl(key, "wrong-secret"))
    mk.restart()
    assert sorted(ck_consume_all(mk, "jobs", 2, creds)) == [b"a", b"b"]
    mk.stop()

    bad = tmp_path / "bad.properties"
    bad.write_text("minikora.tenant.ci2.keys=short:x\n")
    p = subprocess.run([str(mk.argv()[0]), "serve", "--ephemeral", "--port", "0", "--admin-port", "-1",
                        "--config", str(bad)], capture_output=True, timeout=30)
    assert p.returncode == 1, p
    assert b"minikora.tenant.ci2.keys" in p.stderr, p.stderr


@pytest.mark.timeout(120)
def test_tenant_label_in_metrics_and_rates(minikora):
    """Per-tenant figures: /metrics carries a `tenant` label and /v1/rates a tenants list; two
    tenants' topics of the same name are counted apart."""
    mk = minikora()
    creds = {}
    for tid in ("alpha", "beta"):
        _, key, secret = new_tenant(mk, tid)
        creds[tid] = sasl(key, secret)
        ck_create(mk, "orders", creds[tid])
    ck_produce(mk, "orders", [b"x" * 100] * 5, creds["alpha"])
    ck_produce(mk, "orders", [b"y" * 100] * 2, creds["beta"])

    def metric(text, name, label):
        m = re.search(r'^%s\{%s\} (\S+)$' % (re.escape(name), re.escape(label)), text, re.M)
        return float(m.group(1)) if m else None

    req = urllib.request.Request(mk.admin_url + "/metrics")
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    assert metric(text, "minikora_tenant_messages_in_total", 'tenant="alpha"') == 5, text[-2000:]
    assert metric(text, "minikora_tenant_messages_in_total", 'tenant="beta"') == 2
    assert metric(text, "minikora_tenant_requests_total", 'tenant="alpha"') > 0
    # the two "orders" topics are two series, under the internal names of the admin view
    assert metric(text, "kafka_server_brokertopicmetrics_messagesin_total", 'topic="alpha~orders"') == 5
    assert metric(text, "kafka_server_brokertopicmetrics_messagesin_total", 'topic="beta~orders"') == 2
    st, rates = http(mk, "GET", "/v1/rates")
    assert st == 200 and {t["tenant"] for t in rates["tenants"]} >= {"alpha", "beta"}, rates


@pytest.mark.timeout(120)
def test_tenant_storage_rates_and_clients(minikora):
    """GET /v1/tenants gives each tenant's partitions, storage (its leader logs) and its /v1/rates
    figures; GET /v1/tenants/{id} its busiest clients, counted apart from another tenant's and
    from the default tenant's."""
    mk = minikora()
    creds = {}
    for tid in ("alpha", "beta"):
        _, key, secret = new_tenant(mk, tid)
        creds[tid] = sasl(key, secret)

    def entry(tid):
        st, body = http(mk, "GET", "/v1/tenants")
        assert st == 200
        return {t["id"]: t for t in body["tenants"]}[tid]

    a0 = entry("alpha")
    assert (a0["partitions"], a0["storage_bytes"], a0["bytes_in_total"]) == (0, 0, 0), a0
    assert ck_create(mk, "events", creds["alpha"], partitions=3) is None
    p = ck.Producer(ck_conf(mk, acks="all", **{"client.id": "alpha-writer"}, **creds["alpha"]))
    for i in range(50):
        p.produce("events", value=b"v" * 200, partition=i % 3)
    assert p.flush(30) == 0
    a1 = entry("alpha")
    assert a1["partitions"] == 3
    assert a1["storage_bytes"] >= 50 * 200, a1  # at least the record values
    assert a1["bytes_in_total"] >= 50 * 200 and a1["records_in_total"] == 50, a1
    assert a1["bytes_in_per_sec"] > 0 and a1["requests_per_sec"] > 0, a1
    # the storage is what /v1/topics says of the tenant's topic
    st, topic = http(mk, "GET", "/v1/topics/alpha~events")
    assert st == 200 and topic["topic"]["size_bytes"] == a1["storage_bytes"]
    # storage grows with the next produce
    ck_produce(mk, "events", [b"w" * 500] * 10, creds["alpha"])
    assert entry("alpha")["storage_bytes"] > a1["storage_bytes"]
    assert entry("beta")["storage_bytes"] == 0
    # the busiest clients: alpha-writer first (it sent the bytes), with its rates
    st, one = http(mk, "GET", "/v1/tenants/alpha")
    assert st == 200 and one["storage_bytes"] > a1["storage_bytes"]
    assert one["clients"] and one["clients"][0]["client_id"] == "alpha-writer", one["clients"]
    w = one["clients"][0]
    assert w["bytes_in_total"] >= 50 * 200 and w["records_in_total"] == 50 and w["bytes_in_per_sec"] > 0, w
    assert len(one["clients"]) <= 10
    # a client id used in two tenants and without a tenant is three entries
    for who in ("beta", None):
        c = ck.Producer(ck_conf(mk, **{"client.id": "alpha-writer"}, **(creds[who] if who else {})))
        c.list_topics(timeout=10)
        c.flush(5)
    st, beta = http(mk, "GET", "/v1/tenants/beta")
    b = [c for c in beta["clients"] if c["client_id"] == "alpha-writer"]
    assert b and b[0]["bytes_in_total"] == 0 and b[0]["requests_total"] > 0, beta["clients"]
    st, dflt = http(mk, "GET", "/v1/tenants/default")
    d = [c for c in dflt["clients"] if c["client_id"] == "alpha-writer"]
    assert d and d[0]["bytes_in_total"] == 0, dflt["clients"]
    # ... and alpha's alpha-writer is as it was (the other 10 records came from "rdkafka")
    st, one = http(mk, "GET", "/v1/tenants/alpha")
    mine = {c["client_id"]: c for c in one["clients"]}
    assert mine["alpha-writer"]["records_in_total"] == 50 and mine["rdkafka"]["records_in_total"] == 10, mine
