"""Fault injection (issue 13): POST/GET/DELETE /v1/faults, durations, and the seeded chaos schedule
(/v1/chaos).  Every fault acts on the real I/O path: the storage I/O gate of a broker's logs
(disk-stall, disk-slow, disk-error), the replica files (corrupt, found by the scrubber),
replication rounds (net-partition), the answers of one broker (broker-slow), the broker
lifecycle (crash, az-down) and the bundled S3 server.

Each test runs its own 3-broker cluster (one cell, one replica per AZ), so faults never leak
between tests.  Waits poll the admin API or Metadata (bounded); nothing sleeps to synchronise.
"""

import http.client as httpc
import json
import shutil
import subprocess
import threading
import time
from urllib.parse import urlsplit

import confluent_kafka as ck
import pytest

import kwire
from clients import ck_consumer, ck_create_topic, RDK_LOG
from repl_util import metadata, raw_produce, wait_isr_full, wait_metadata

CLUSTER = ("--brokers", "3", "--azs", "3")
STORAGE_ERROR = 56
REQUEST_TIMED_OUT = 7


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def http(mk, method, path, body=None):
    u = urlsplit(mk.admin_url)
    conn = httpc.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        hdrs = dict(mk.admin_headers())
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        text = r.read().decode()
    finally:
        conn.close()
    return r.status, (json.loads(text) if text.startswith("{") else text)


def api(mk, method, path, body=None, status=200):
    st, j = http(mk, method, path, body)
    assert st == status, "%s %s -> %d %s" % (method, path, st, j)
    return j


def inject(mk, **spec):
    return api(mk, "POST", "/v1/faults", spec, status=201)["id"]


def storage(mk, broker):
    j = api(mk, "GET", "/v1/faults")
    return next(s for s in j["storage"] if s["broker"] == broker)


def events(mk, type_):
    return api(mk, "GET", "/v1/events?type=" + type_)["events"]


def wait_for(what, fn, timeout):
    """Poll fn() until it returns a true value (bounded); returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (AssertionError, OSError, KeyError, StopIteration) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.0f s; last: %r" % (what, timeout, last))
        time.sleep(0.05)  # bounded by `timeout`


def make_topic(mk, topic, partitions=1, config=None):
    err = ck_create_topic(mk.bootstrap, topic, partitions, rf=3, config=config or {})
    assert err is None, err
    return wait_isr_full(mk, topic)


def timed_produce(mk, broker, topic, partition, values, acks=1, timeout_ms=10000):
    """One raw Produce to `broker` -> (error, base_offset, seconds taken)."""
    batch = kwire.record_batch([(None, v, []) for v in values])
    with mk.wire(broker, timeout=max(10.0, timeout_ms / 1000 + 10)) as c:
        v = c.pick(kwire.PRODUCE, 3, 8)
        t0 = time.monotonic()
        resp = c.call(kwire.PRODUCE, v, kwire.produce_body(v, topic, partition, batch, acks, timeout_ms=timeout_ms))
        took = time.monotonic() - t0
    res = kwire.parse_produce(v, resp)
    return res[0][2], res[0][3], took


def consume_values(mk, topic, n, timeout=30):
    c = ck_consumer(mk.bootstrap)
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                assert not m.error(), m.error()
                got.append(m.value())
        return got
    finally:
        c.close()


class Producer:
    """An idempotent acks=all confluent-kafka producer that records what was acknowledged."""

    def __init__(self, mk, topic):
        self.p = ck.Producer({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "acks": "all",
                              "enable.idempotence": True, "linger.ms": 5, "message.timeout.ms": 60000,
                              "retry.backoff.ms": 50, "topic.metadata.refresh.interval.ms": 1000})
        self.topic = topic
        self.acked, self.errors = [], []

    def _dr(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.acked.append(msg.value())

    def send(self, values):
        for v in values:
            self.p.produce(self.topic, value=v, partition=0, on_delivery=self._dr)
            self.p.poll(0)

    def flush(self, secs=60):
        left = self.p.flush(secs)
        assert left == 0, "%d records still in flight after %d s" % (left, secs)
        assert not self.errors, self.errors[:3]


# ---------------------------------------------------------------------------------------------
# The routes
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_routes_validate_list_clear_and_report(minikora):
    mk = minikora(*CLUSTER)
    bad = [
        ({}, "type"),
        ({"type": "disk-melt", "broker": 1}, "unknown fault type"),
        ({"type": "disk-stall"}, "broker"),
        ({"type": "disk-slow", "broker": 1}, "delay_ms"),
        ({"type": "disk-slow", "broker": 1, "delay_ms": 0}, "delay_ms"),
        ({"type": "disk-slow", "broker": 1, "delay_ms": 10 ** 9}, "delay_ms"),
        ({"type": "disk-stall", "broker": 99}, "no broker 99"),
        ({"type": "disk-error", "broker": 1, "ops": "everything"}, "ops"),
        ({"type": "net-partition"}, "az"),
        ({"type": "net-partition", "az": "az-9"}, "az-9"),
        ({"type": "disk-stall", "broker": 1, "duration_ms": -5}, "duration_ms"),
        ({"type": "disk-stall", "broker": 1, "colour": "red"}, "colour"),
        ({"type": "crash", "broker": "one"}, "broker"),
    ]
    for body, word in bad:
        st, j = http(mk, "POST", "/v1/faults", body)
        assert st == 400, (body, st, j)
        assert word in j["message"], (body, j)
    st, j = http(mk, "POST", "/v1/faults", "not json")
    assert st == 400, j
    assert http(mk, "DELETE", "/v1/faults/424242")[0] == 404
    assert http(mk, "DELETE", "/v1/faults/abc")[0] == 404

    a = inject(mk, type="disk-slow", broker=2, delay_ms=30)
    b = inject(mk, type="broker-slow", broker=3, delay_ms=20)
    c = inject(mk, type="disk-error", broker=1, ops="fsync")
    j = api(mk, "GET", "/v1/faults")
    by = {f["id"]: f for f in j["faults"]}
    assert set(by) == {a, b, c}, j
    assert by[a]["type"] == "disk-slow" and by[a]["broker"] == 2 and by[a]["delay_ms"] == 30, by[a]
    assert by[c]["ops"] == "fsync" and by[c]["source"] == "api", by[c]
    assert j["injected_by_type"]["disk-slow"] == 1 and j["injected_total"] == 3, j
    assert {s["broker"] for s in j["storage"]} == {1, 2, 3}, j["storage"]
    st, text = http(mk, "GET", "/metrics")
    assert 'minikora_faults_active{type="disk-slow",broker="2",az=""} 1' in text, text[-2000:]
    assert 'minikora_faults_injected_total{type="broker-slow"} 1' in text
    assert "minikora_storage_io_operations_total" in text
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        out = p.stdout.decode() + p.stderr.decode()
        assert p.returncode in (0, 3), out[-3000:]
        assert "fault" not in out and "storage_io" not in out and "chaos" not in out, out[-3000:]

    assert api(mk, "DELETE", "/v1/faults/%d" % a)["cleared"] is True
    assert http(mk, "DELETE", "/v1/faults/%d" % a)[0] == 404
    assert api(mk, "DELETE", "/v1/faults")["cleared"] == 2
    assert api(mk, "GET", "/v1/faults")["faults"] == []
    inj, clr = events(mk, "fault_injected"), events(mk, "fault_cleared")
    assert len(inj) == 3 and len(clr) == 3, (inj, clr)
    assert any("disk-slow broker 2" in e["message"] for e in inj), inj


@pytest.mark.timeout(60)
def test_duration_clears_by_itself(minikora):
    mk = minikora(*CLUSTER)
    fid = inject(mk, type="broker-slow", broker=1, delay_ms=10, duration_ms=300)
    ev = wait_for("the fault_cleared event", lambda: [e for e in events(mk, "fault_cleared")
                                                      if ("fault %d " % fid) in e["message"]], 10)
    assert "duration_ms passed" in ev[0]["message"], ev
    assert api(mk, "GET", "/v1/faults")["faults"] == []


# ---------------------------------------------------------------------------------------------
# Disk faults in the storage I/O gate
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_disk_slow_raises_produce_latency_on_that_broker(minikora):
    mk = minikora(*CLUSTER)
    leader = make_topic(mk, "slowdisk")[0]["leader"]
    base = [timed_produce(mk, leader, "slowdisk", 0, [b"warm"])[2] for _ in range(3)]
    fid = inject(mk, type="disk-slow", broker=leader, delay_ms=400)
    slow = []
    for i in range(3):
        err, off, took = timed_produce(mk, leader, "slowdisk", 0, [b"slow-%d" % i])
        assert err == 0, err
        slow.append(took)
    assert min(slow) >= 0.39, (base, slow)
    assert max(base) < 0.3, base
    st = storage(mk, leader)
    assert st["p99_us"] >= 350000 and st["held"] >= 3, st
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    err, _, took = timed_produce(mk, leader, "slowdisk", 0, [b"fast"])
    assert err == 0 and took < 0.3, took


@pytest.mark.timeout(120)
def test_disk_stall_holds_produces_and_clearing_releases_them(minikora):
    mk = minikora(*CLUSTER)
    leader = make_topic(mk, "stalled")[0]["leader"]
    prod = Producer(mk, "stalled")
    prod.send([b"before-%d" % i for i in range(20)])
    prod.flush()
    fid = inject(mk, type="disk-stall", broker=leader)

    # A produce with a short timeout hangs and then times out, as Kafka answers.
    err, _, took = timed_produce(mk, leader, "stalled", 0, [b"timed-out"], acks=-1, timeout_ms=1500)
    assert err == REQUEST_TIMED_OUT and took >= 1.4, (err, took)

    # The producer keeps sending; nothing is acknowledged while the disk hangs, and the gate's
    # oldest in-flight operation ages.
    prod.send([b"during-%d" % i for i in range(20)])
    wait_for("a held append older than 1 s", lambda: storage(mk, leader)["oldest_inflight_ms"] > 1000, 20)
    st = storage(mk, leader)
    assert st["stalled"] and st["inflight"] >= 1, st
    assert len(prod.acked) == 20, len(prod.acked)
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    prod.flush()
    assert len(prod.acked) == 40
    got = consume_values(mk, "stalled", 40)
    for v in prod.acked:
        assert v in got, v
    wait_for("the held operations are gone", lambda: storage(mk, leader)["oldest_inflight_ms"] == 0, 10)


@pytest.mark.timeout(120)
def test_disk_stall_on_a_follower_stops_it_and_the_isr_shrinks(minikora):
    mk = minikora(*CLUSTER, "--set", "replica.lag.time.max.ms=1000")
    leader = make_topic(mk, "slowfollower")[0]["leader"]
    follower = next(b for b in (1, 2, 3) if b != leader)
    fid = inject(mk, type="disk-stall", broker=follower)
    prod = Producer(mk, "slowfollower")
    prod.send([b"r-%d" % i for i in range(30)])
    prod.flush()  # acknowledged once the stalled follower has left the ISR
    parts = wait_metadata(mk, "slowfollower", lambda p: follower not in p[0]["isr"], 15, "the follower leaves the ISR")
    assert parts[0]["leader"] == leader, parts
    wait_for("its held append ages", lambda: storage(mk, follower)["oldest_inflight_ms"] > 500, 10)
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    wait_isr_full(mk, "slowfollower", timeout=20)
    assert sorted(consume_values(mk, "slowfollower", 30)) == sorted(prod.acked)


@pytest.mark.timeout(120)
def test_disk_error_storage_error_and_leadership_moves(minikora):
    mk = minikora(*CLUSTER)
    leader = make_topic(mk, "diskerr")[0]["leader"]
    prod = Producer(mk, "diskerr")
    prod.send([b"a-%d" % i for i in range(50)])
    prod.flush()

    inject(mk, type="disk-error", broker=leader, ops="writes")
    err, _ = raw_produce(mk, leader, "diskerr", 0, [b"x"], acks=1)
    assert err == STORAGE_ERROR, err
    parts = wait_metadata(mk, "diskerr", lambda p: p[0]["leader"] not in (leader, -1), 15,
                          "leadership moved away from broker %d" % leader)
    assert leader not in parts[0]["isr"], parts
    wait_for("the log directory offline", lambda: storage(mk, leader)["offline"], 10)

    # The same idempotent producer goes on with the new leader: nothing acknowledged is lost.
    prod.send([b"b-%d" % i for i in range(50)])
    prod.flush()
    got = consume_values(mk, "diskerr", 100)
    assert sorted(got) == sorted(prod.acked) and len(got) == 100, (len(got), len(prod.acked))
    assert "minikora_storage_log_dir_offline{broker=\"%d\"} 1" % leader in http(mk, "GET", "/metrics")[1]

    # Clearing it restarts the broker (a new disk): its replica catches up and rejoins.
    api(mk, "DELETE", "/v1/faults")
    wait_isr_full(mk, "diskerr", timeout=30)
    assert not storage(mk, leader)["offline"]


# ---------------------------------------------------------------------------------------------
# Other faults
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_corrupt_is_found_and_repaired_by_the_scrubber(minikora):
    mk = minikora(*CLUSTER, "--set", "minikora.scrub.interval.ms=300",
                  "--set", "minikora.scrub.rate.bytes.per.sec=50000000")
    leader = make_topic(mk, "rot")[0]["leader"]
    prod = Producer(mk, "rot")
    for i in range(10):
        prod.send([b"v-%d-%d" % (i, k) + b"." * 200 for k in range(5)])
        prod.flush()
    follower = next(b for b in (1, 2, 3) if b != leader)
    r = api(mk, "POST", "/v1/faults", {"type": "corrupt", "topic": "rot", "partition": 0, "broker": follower},
            status=201)
    assert r["broker"] == follower and r["partition"] == 0 and r["active"] is False, r
    j = wait_for("the scrubber repairs it", lambda: (lambda j: j if j["total"]["corruptions_repaired"] >= 1 else None)(
        api(mk, "GET", "/v1/integrity")), 30)
    b = next(x for x in j["brokers"] if x["id"] == follower)
    assert b["corruptions_found"] >= 1 and b["corruptions_repaired"] >= 1, b
    assert any("corrupt" in e["message"] for e in events(mk, "fault_injected"))
    wait_isr_full(mk, "rot")
    got = consume_values(mk, "rot", 50)
    assert sorted(got) == sorted(prod.acked)


@pytest.mark.timeout(120)
def test_net_partition_shrinks_the_isr_and_heals(minikora):
    mk = minikora(*CLUSTER, "--set", "replica.lag.time.max.ms=1000")
    parts = make_topic(mk, "cut")
    leader = parts[0]["leader"]
    racks, _ = metadata(mk, "cut")
    follower = next(b for b in (1, 2, 3) if b != leader)
    az = racks[follower]
    fid = inject(mk, type="net-partition", az=az)
    # Clients still reach the partitioned AZ's broker.
    with mk.wire(follower) as c:
        assert c.metadata(["cut"])["brokers"]
    for i in range(5):
        assert raw_produce(mk, leader, "cut", 0, [b"p-%d" % i], acks=1)[0] == 0
    wait_metadata(mk, "cut", lambda p: follower not in p[0]["isr"] and leader in p[0]["isr"], 15,
                  "broker %d (in %s) leaves the ISR" % (follower, az))
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    wait_isr_full(mk, "cut", timeout=20)


@pytest.mark.timeout(120)
def test_net_partition_of_the_leaders_az_moves_leadership(minikora):
    # The leader's side is cut off: as Kafka's controller fences a broker it cannot hear from,
    # leadership moves to an in-sync replica on the other side; acks=all data stays safe.
    mk = minikora(*CLUSTER, "--set", "replica.lag.time.max.ms=1000")
    leader = make_topic(mk, "isolated")[0]["leader"]
    racks, _ = metadata(mk, "isolated")
    prod = Producer(mk, "isolated")
    prod.send([b"before-%d" % i for i in range(20)])
    prod.flush()
    fid = inject(mk, type="net-partition", az=racks[leader])
    parts = wait_metadata(mk, "isolated", lambda p: p[0]["leader"] not in (leader, -1), 15,
                          "leadership leaves the partitioned AZ %s" % racks[leader])
    wait_metadata(mk, "isolated", lambda p: leader not in p[0]["isr"], 15, "the cut-off broker leaves the ISR")
    prod.send([b"after-%d" % i for i in range(20)])
    prod.flush()
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    wait_isr_full(mk, "isolated", timeout=20)
    got = consume_values(mk, "isolated", 40)
    assert sorted(got) == sorted(prod.acked) and len(got) == 40, (len(got), parts)


@pytest.mark.timeout(60)
def test_broker_slow_adds_request_latency(minikora):
    mk = minikora(*CLUSTER)
    leader = make_topic(mk, "slowbroker")[0]["leader"]
    fid = inject(mk, type="broker-slow", broker=leader, delay_ms=500)
    err, _, took = timed_produce(mk, leader, "slowbroker", 0, [b"x"])
    assert err == 0 and took >= 0.49, took
    other = next(b for b in (1, 2, 3) if b != leader)
    t0 = time.monotonic()
    with mk.wire(other) as c:
        c.metadata(["slowbroker"])
    assert time.monotonic() - t0 < 0.4
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    err, _, took = timed_produce(mk, leader, "slowbroker", 0, [b"y"])
    assert err == 0 and took < 0.4, took


@pytest.mark.timeout(90)
def test_crash_and_az_down_start_again_when_cleared(minikora):
    mk = minikora(*CLUSTER)
    make_topic(mk, "lifecycle")
    fid = inject(mk, type="crash", broker=2)
    assert api(mk, "GET", "/v1/brokers/2")["broker"]["state"] != "running"
    assert http(mk, "POST", "/v1/faults", {"type": "crash", "broker": 2})[0] == 409
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    assert api(mk, "GET", "/v1/brokers/2")["broker"]["state"] == "running"
    az = api(mk, "GET", "/v1/brokers/3")["broker"]["az"]
    fid = inject(mk, type="az-down", az=az)
    assert api(mk, "GET", "/v1/brokers/3")["broker"]["state"] != "running"
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    assert api(mk, "GET", "/v1/brokers/3")["broker"]["state"] == "running"
    wait_isr_full(mk, "lifecycle", timeout=30)


@pytest.mark.timeout(60)
def test_s3_faults_use_the_bundled_server_switch(minikora):
    mk = minikora(*CLUSTER)
    fid = inject(mk, type="s3-slow", delay_ms=50)
    assert api(mk, "GET", "/v1/s3")["fault"]["type"] == "slow"
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    assert api(mk, "GET", "/v1/s3")["fault"]["type"] == "none"
    cid = inject(mk, type="s3-down", side="client")
    f = api(mk, "GET", "/v1/faults")["faults"][0]
    assert f["id"] == cid and f["side"] == "client", f
    assert api(mk, "GET", "/v1/s3")["fault"]["type"] == "none"  # the server is untouched


# ---------------------------------------------------------------------------------------------
# Chaos
# ---------------------------------------------------------------------------------------------
def chaos_run(mk, seed):
    spec = {"seed": seed, "rate_per_min": 600, "duration_ms": 2500, "fault_duration_ms": 300,
            "types": ["disk-slow", "broker-slow", "net-partition", "disk-stall"]}
    api(mk, "POST", "/v1/chaos", spec, status=201)
    assert http(mk, "POST", "/v1/chaos", spec)[0] == 409
    j = wait_for("the chaos run ends", lambda: (lambda c: c if not c["active"] else None)(
        api(mk, "GET", "/v1/chaos")["chaos"]), 20)
    wait_for("its faults are cleared", lambda: api(mk, "GET", "/v1/faults")["faults"] == [], 10)
    return [(e["offset_ms"], e["type"], e.get("broker"), e["az"], e["outcome"].split(":")[0]) for e in j["events"]]


@pytest.mark.timeout(120)
def test_chaos_same_seed_same_schedule(minikora):
    mk = minikora(*CLUSTER)
    make_topic(mk, "chaotic")
    one = chaos_run(mk, 7)
    two = chaos_run(mk, 7)
    other = chaos_run(mk, 8)
    assert len(one) >= 10, one
    assert one == two
    assert one != other
    assert sum(1 for e in one if e[4] == "injected") >= 5, one
    # At most one AZ disturbed at once (stall and partition are disruptive).
    assert events(mk, "chaos_started") and events(mk, "chaos_stopped")
    st = api(mk, "DELETE", "/v1/chaos")
    assert st["stopped"] is False
    wait_isr_full(mk, "chaotic", timeout=30)


@pytest.mark.timeout(120)
def test_chaos_default_types_under_a_producer_loses_nothing(minikora):
    mk = minikora(*CLUSTER, "--set", "replica.lag.time.max.ms=1000")
    make_topic(mk, "chaos-data")
    prod = Producer(mk, "chaos-data")
    api(mk, "POST", "/v1/chaos", {"seed": 3, "rate_per_min": 240, "duration_ms": 5000, "fault_duration_ms": 800},
        status=201)
    sent = 0
    deadline = time.monotonic() + 30
    while api(mk, "GET", "/v1/chaos")["chaos"]["active"]:
        assert time.monotonic() < deadline, "the chaos run did not end"
        prod.send([b"c-%d" % (sent + i) for i in range(10)])
        sent += 10
        prod.p.poll(0.1)
    prod.flush(90)
    j = api(mk, "GET", "/v1/chaos")["chaos"]
    assert j["done"] == j["planned"] and j["planned"] >= 10, j
    assert api(mk, "GET", "/v1/faults")["faults"] == []
    assert all(b["state"] == "running" for b in api(mk, "GET", "/v1/brokers")["brokers"])
    wait_isr_full(mk, "chaos-data", timeout=30)
    got = consume_values(mk, "chaos-data", sent, timeout=60)
    assert len(prod.acked) == sent and sorted(got) == sorted(prod.acked), (sent, len(prod.acked), len(got))


@pytest.mark.timeout(120)
def test_s3_client_side_error_fails_copies_until_cleared(minikora):
    from test_tiering import FAST, partition_of, produce
    mk = minikora("--brokers", "1", *FAST)
    assert ck_create_topic(mk.bootstrap, "tiered", 1, rf=1, config={"segment.bytes": str(256 * 1024)}) is None
    wait_for("the topic", lambda: metadata(mk, "tiered")[1][0]["leader"] == 1, 20)
    produce(mk.bootstrap, "tiered", 0, 2000)
    wait_for("first segments copied", lambda: partition_of(mk, "tiered")["local_log_start_offset"] > 500, 30)
    failed0 = api(mk, "GET", "/v1/tier")["uploads"]["failed"]
    fid = inject(mk, type="s3-error", side="client")
    produce(mk.bootstrap, "tiered", 2000, 2000)
    st = wait_for("copies fail on the client side", lambda: (lambda x: x if x["uploads"]["failed"] >= failed0 + 2
                                                             else None)(api(mk, "GET", "/v1/tier")), 30)
    assert "injected client-side fault" in json.dumps(st), st["s3"]
    assert api(mk, "GET", "/v1/s3")["fault"]["type"] == "none"  # the server itself is fine
    start = partition_of(mk, "tiered")["local_log_start_offset"]
    api(mk, "DELETE", "/v1/faults/%d" % fid)
    wait_for("copies resume", lambda: partition_of(mk, "tiered")["local_log_start_offset"] > max(start, 2500), 30)
