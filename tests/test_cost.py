"""Cross-AZ bytes per tenant and their cost (what Kora optimises), in the admin API and /metrics.

One cluster of 3 brokers over 3 AZs (one cell: every RF 3 topic has a replica in each AZ) with
`minikora.cost.cross.az.per.gb` set, two tenants made through the admin API, real clients
(confluent-kafka over SASL PLAIN) and raw Kafka wire for the rack-per-connection cases:

* replication: a tenant's RF 3 topic copies every produced byte to two followers in other AZs,
  so its replication_bytes are exactly twice its bytes in; another tenant's RF 1 topic costs 0;
* client: the rack a consumer names (client.rack, Fetch v11+ RackId) decides; a connection that
  named another AZ counts its Produce bytes too; one that named none counts nothing;
* cost = bytes / 1e9 * price, in GET /v1/tenants/{id}, /v1/rates and /metrics; promtool checks
  /metrics when it is installed;
* fetch from follower (replica.selector.class, KIP-392): a consumer in a follower's AZ crosses
  nothing, and everything it reads when the setting is empty (leader only);
* a bad price stops the start (exit 2); the default price is 0.02 per GB.
"""

import json
import math
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import NewTopic

import kwire
from cluster import BIN, Cluster
from clients import RDK_LOG, ck_result
from conftest import shared_cluster

PRICE = 0.5          # per GB: set with --set, so a wrong default would show
VALUE = 1000         # bytes per record value
N = 200              # records per produce


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def module_mk(request):
    with Cluster("--brokers", "3", "--azs", "3", "--set",
                 "minikora.cost.cross.az.per.gb=%g" % PRICE, name=request.module.__name__) as mk:
        yield mk


@pytest.fixture
def mk(module_mk, request):
    yield from shared_cluster(module_mk, request)


def http(mk, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(mk.admin_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **mk.admin_headers()})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (raw.decode() if path == "/metrics" else json.loads(raw or b"null"))
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


_tenants = {}


def tenant(mk, tid):
    """Tenant tid (made once per cluster) -> confluent-kafka SASL PLAIN settings."""
    key = (id(mk), mk.starts, tid)
    if key not in _tenants:
        st, t = http(mk, "POST", "/v1/tenants", {"id": tid})
        assert st == 201, t
        st, k = http(mk, "POST", "/v1/tenants/%s/keys" % tid)
        assert st == 201, k
        _tenants[key] = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                         "sasl.username": k["key"], "sasl.password": k["secret"]}
    return _tenants[key]


def conf(mk, creds, **extra):
    c = {"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "socket.timeout.ms": 10000}
    c.update(creds)
    c.update(extra)
    return c


def create(mk, creds, name, rf):
    admin = ck.admin.AdminClient(conf(mk, creds))
    futs = admin.create_topics([NewTopic(name, 1, rf)], operation_timeout=10, request_timeout=30)
    ck_result(futs[name])


def produce(mk, creds, topic, n=N, size=VALUE):
    """n records of `size` bytes, acks=all (so every in-sync follower has them on return)."""
    p = ck.Producer(conf(mk, creds, acks="all", **{"linger.ms": 5}))
    errors = []
    for i in range(n):
        p.produce(topic, value=b"%06d" % i + b"x" * (size - 6),
                  on_delivery=lambda err, msg: err and errors.append(err))
    assert p.flush(30) == 0, "records left unsent"
    assert not errors, errors[:3]


def consume(mk, creds, topic, n, rack=None):
    """Read n records of partition 0 from the start, with client.rack when given."""
    extra = {"group.id": "cost-%s" % time.monotonic_ns(), "enable.auto.commit": False,
             "fetch.wait.max.ms": 50}
    if rack is not None:
        extra["client.rack"] = rack
    c = ck.Consumer(conf(mk, creds, **extra))
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got, deadline = 0, time.monotonic() + 30
        while got < n and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                got += 1
        assert got == n, "read %d of %d records of %s (rack %s)" % (got, n, topic, rack)
    finally:
        c.close()


def cross_az(mk, tid):
    st, t = http(mk, "GET", "/v1/tenants/%s" % tid)
    assert st == 200, t
    return t["cross_az"]


def rates_tenant(mk, tid):
    st, r = http(mk, "GET", "/v1/rates")
    assert st == 200, r
    return {t["tenant"]: t for t in r["tenants"]}.get(tid)


def default_xaz(mk):
    """The default tenant's cross-AZ figures from /v1/rates (it has no GET /v1/tenants/{id})."""
    t = rates_tenant(mk, "default")
    return t["cross_az_bytes"] if t else 0


def leader_and_az(mk, internal_topic):
    st, t = http(mk, "GET", "/v1/topics/%s" % internal_topic)
    assert st == 200, t
    leader = t["topic"]["partition_details"][0]["leader"]
    st, c = http(mk, "GET", "/v1/cluster")
    azs = {b["id"]: b["az"] for b in c["brokers"]}
    return leader, azs


def assert_cost(x, price=PRICE):
    assert x["bytes"] == x["replication_bytes"] + x["client_bytes"], x
    assert x["price_per_gb"] == pytest.approx(price), x
    assert x["cost"] == pytest.approx(x["bytes"] / 1e9 * price, rel=1e-9, abs=1e-12), x


# ---------------------------------------------------------------------------------------------
# replication
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_replication_bytes_per_tenant_and_cost(mk):
    """acme's RF 3 topic: every byte in is copied to 2 followers in other AZs; zeta's RF 1
    topic (with as much traffic) crosses nothing; cost = bytes / 1e9 * price."""
    acme, zeta = tenant(mk, "acme"), tenant(mk, "zeta")
    create(mk, acme, "orders", 3)
    create(mk, zeta, "orders", 1)
    a0, z0 = cross_az(mk, "acme"), cross_az(mk, "zeta")
    in0 = (rates_tenant(mk, "acme") or {}).get("bytes_in_total", 0)
    produce(mk, acme, "orders")
    produce(mk, zeta, "orders")

    a, z = cross_az(mk, "acme"), cross_az(mk, "zeta")
    bytes_in = rates_tenant(mk, "acme")["bytes_in_total"] - in0
    repl = a["replication_bytes"] - a0["replication_bytes"]
    assert repl >= 2 * N * VALUE, (a0, a, "payload %d" % (N * VALUE))
    # the followers copy exactly the batches the leader appended, and both are in other AZs
    assert repl == 2 * bytes_in, (repl, bytes_in)
    assert a["client_bytes"] == a0["client_bytes"] == 0, "a producer names no rack: %s" % a
    assert_cost(a)
    assert a["cost"] > 0
    # zeta: RF 1, so nothing crosses; its traffic was counted all the same
    assert z == z0 and z["bytes"] == 0 and z["cost"] == 0, z
    assert rates_tenant(mk, "zeta")["bytes_in_total"] >= N * VALUE
    assert_cost(z)

    # /v1/rates carries the same totals
    ra = rates_tenant(mk, "acme")
    assert ra["cross_az_bytes"] == a["bytes"], (ra, a)
    assert ra["cross_az_cost"] == pytest.approx(a["cost"], rel=1e-9), (ra, a)
    assert rates_tenant(mk, "zeta")["cross_az_bytes"] == 0
    # a tenant with no traffic at all has zeros too
    tenant(mk, "idle")
    assert cross_az(mk, "idle") == {"bytes": 0, "replication_bytes": 0, "client_bytes": 0,
                                    "cost": 0, "price_per_gb": PRICE}


# ---------------------------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_client_bytes_follow_the_consumer_rack(mk):
    """RF 1 (no follower to read from): a consumer in the leader's AZ crosses nothing, one in
    another AZ crosses exactly the record bytes it fetched."""
    acme = tenant(mk, "acme")
    create(mk, acme, "solo", 1)
    produce(mk, acme, "solo", n=100)
    leader, azs = leader_and_az(mk, "acme~solo")
    other = [az for b, az in azs.items() if az != azs[leader]][0]

    x0 = cross_az(mk, "acme")
    consume(mk, acme, "solo", 100, rack=azs[leader])
    consume(mk, acme, "solo", 100)  # no rack: unknown, counts nothing
    x1 = cross_az(mk, "acme")
    assert x1["client_bytes"] == x0["client_bytes"], (x0, x1)

    out0 = rates_tenant(mk, "acme")["bytes_out_total"]
    consume(mk, acme, "solo", 100, rack=other)
    x2 = cross_az(mk, "acme")
    fetched = rates_tenant(mk, "acme")["bytes_out_total"] - out0
    assert fetched >= 100 * VALUE
    assert x2["client_bytes"] - x1["client_bytes"] == fetched, (x1, x2, fetched)
    assert x2["replication_bytes"] == x1["replication_bytes"], "RF 1 replicated: %s" % x2
    assert_cost(x2)


@pytest.mark.timeout(60)
def test_connection_remembers_its_rack_for_produce(mk, topic_name):
    """Raw wire, default tenant: a Produce on a connection that has not named a rack counts
    nothing; once a Fetch v11 names another AZ, the same connection's Produce bytes count."""
    topic = topic_name()
    st, body = http(mk, "POST", "/v1/topics", {"name": topic, "partitions": 1,
                                               "replication_factor": 1})
    assert st == 201, body
    leader, azs = leader_and_az(mk, topic)
    other = [az for b, az in azs.items() if az != azs[leader]][0]
    batch = kwire.record_batch([(None, b"v" * 500, []) for _ in range(10)])
    with mk.wire(leader) as c:
        d0 = default_xaz(mk)
        assert c.produce_one(topic, 0, batch, acks=1)[0] == 0
        assert default_xaz(mk) == d0, "a connection with no rack was counted"
        # the rack of the leader's own AZ: still nothing
        assert c.fetch(topic, 0, 0, version=11, max_wait_ms=0, rack=azs[leader])[0]["error"] == 0
        assert c.produce_one(topic, 0, batch, acks=1)[0] == 0
        assert default_xaz(mk) == d0
        # another AZ: the fetch's records and the produce's batch both crossed
        p = c.fetch(topic, 0, 0, version=11, max_wait_ms=0, rack=other)[0]
        assert p["error"] == 0 and p["preferred_read_replica"] == -1, p
        d1 = default_xaz(mk)
        assert d1 - d0 == len(p["records"]) == 2 * len(batch), (d0, d1, len(p["records"]))
        assert c.produce_one(topic, 0, batch, acks=1)[0] == 0
        assert default_xaz(mk) - d1 == len(batch)
    # a new connection starts unknown again
    with mk.wire(leader) as c:
        d2 = default_xaz(mk)
        assert c.produce_one(topic, 0, batch, acks=1)[0] == 0
        assert default_xaz(mk) == d2


# ---------------------------------------------------------------------------------------------
# fetch from follower (KIP-392) and what it saves
# ---------------------------------------------------------------------------------------------
def follower_az_read(mk, topic):
    """acme produces to an RF 3 topic, then a consumer in a follower's AZ reads it all:
    -> (client cross-AZ bytes of that read, record bytes it fetched)."""
    acme = tenant(mk, "acme")
    create(mk, acme, topic, 3)
    produce(mk, acme, topic, n=100)
    leader, azs = leader_and_az(mk, "acme~" + topic)
    follower_az = [az for b, az in azs.items() if b != leader][0]
    x0, out0 = cross_az(mk, "acme"), rates_tenant(mk, "acme")["bytes_out_total"]
    consume(mk, acme, topic, 100, rack=follower_az)
    x1, out1 = cross_az(mk, "acme"), rates_tenant(mk, "acme")["bytes_out_total"]
    assert out1 - out0 >= 100 * VALUE, (out0, out1)
    return x1["client_bytes"] - x0["client_bytes"], out1 - out0


@pytest.mark.timeout(120)
def test_fetch_from_follower_cuts_client_cross_az_bytes(mk, minikora):
    """With RackAwareReplicaSelector (minikora's default) a consumer in a follower's AZ is sent
    to that follower and crosses nothing; with replica.selector.class empty (Kafka's default:
    the leader) the same read crosses AZs byte for byte."""
    saved, fetched = follower_az_read(mk, "ffr")
    assert saved == 0, "rack-aware: %d of %d fetched bytes crossed AZs" % (saved, fetched)
    leader_only = minikora("--brokers", "3", "--azs", "3", "--set", "replica.selector.class=")
    crossed, fetched = follower_az_read(leader_only, "ffr")
    assert crossed == fetched, "leader only: %d crossed of %d fetched" % (crossed, fetched)


# ---------------------------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------------------------
def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in labels.items())
    for line in text.splitlines():
        m = re.match(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), line)
        if m and sorted(m.group(1).split(",")) == sorted(want.split(",")):
            return float(m.group(2))
    return None


@pytest.mark.timeout(90)
def test_metrics_per_tenant(mk):
    acme = tenant(mk, "acme")
    create(mk, acme, "metered", 3)
    produce(mk, acme, "metered", n=50)
    st, text = http(mk, "GET", "/metrics")
    assert st == 200
    x = cross_az(mk, "acme")
    assert metric(text, "minikora_tenant_cross_az_bytes_total", tenant="acme",
                  kind="replication") == x["replication_bytes"] > 0
    assert metric(text, "minikora_tenant_cross_az_bytes_total", tenant="acme",
                  kind="client") == x["client_bytes"]
    assert metric(text, "minikora_tenant_cross_az_cost_total", tenant="acme") == \
        pytest.approx(x["cost"], rel=1e-8)
    assert "# TYPE minikora_tenant_cross_az_bytes_total counter" in text
    assert "# TYPE minikora_tenant_cross_az_cost_total counter" in text
    # the whole text parses as Prometheus exposition format
    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert "minikora_tenant_cross_az_bytes" in fams and "minikora_tenant_cross_az_cost" in fams


@pytest.mark.timeout(60)
def test_metrics_pass_promtool(mk):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    tenant(mk, "acme")
    st, text = http(mk, "GET", "/metrics")
    assert st == 200 and "minikora_tenant_cross_az_cost_total" in text

    def check(t):
        p = subprocess.run([promtool, "check", "metrics"], input=t.encode(), capture_output=True,
                           timeout=30)
        return p.returncode, (p.stdout.decode() + p.stderr.decode())

    # The whole text parses (exit 1 would be a parse error); lint findings (exit 3) name none of
    # the cross-AZ families.  (kafka_server_socketservermetrics_connection_count, Kafka's JMX
    # name for a gauge, is a finding of its own, older than these families.)
    rc, out = check(text)
    assert rc in (0, 3), out[-3000:]
    assert "cross_az" not in out, out[-3000:]
    # The cross-AZ families alone pass with no finding at all.
    ours = "\n".join(l for l in text.splitlines() if "minikora_tenant_cross_az_" in l) + "\n"
    assert ours.count("# TYPE") == 2, ours
    rc, out = check(ours)
    assert rc == 0, out[-3000:]


# ---------------------------------------------------------------------------------------------
# the price setting
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_price_default_and_bad_values(minikora):
    bad = [("minikora.cost.cross.az.per.gb", v) for v in ("-1", "abc", "nan", "inf", "")]
    bad += [("replica.selector.class", "org.apache.kafka.common.replica.Other")]
    for name, v in bad:
        p = subprocess.run([str(BIN), "serve", "--ephemeral", "--port", "0", "--set",
                            "%s=%s" % (name, v)], capture_output=True, timeout=30)
        assert p.returncode == 2, (name, v, p.returncode, p.stderr[-500:])
        assert name.encode() in p.stderr, p.stderr[-500:]
    m = minikora("--brokers", "3", "--azs", "3")
    st, _ = http(m, "POST", "/v1/tenants", {"id": "dflt"})
    assert st == 201
    x = cross_az(m, "dflt")
    assert x["price_per_gb"] == pytest.approx(0.02) and x["bytes"] == 0 and x["cost"] == 0, x
    assert not math.isnan(x["cost"])
