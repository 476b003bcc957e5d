"""The storage health manager (src/health/): tracking, probes, the remediation ladder.

Real clients (confluent-kafka) against `minikora serve`; faults through the admin API
(POST /v1/faults, the fault-injection work).  Every wait is bounded and awaits a state the API
shows (an event of the ladder, a field of GET /v1/health, an ISR): short polls, no sleeps as
synchronisation.  Thresholds are set short with --set minikora.health.*.

Covered:
  - GET /v1/health's shape; probes run on every broker (their topics hidden from listings);
    /metrics has the health families and promtool accepts it;
  - a disk stall of the broker that leads an RF 3 topic under an idempotent acks=all producer:
    the ladder restarts the broker, then demotes it; the producer keeps going; once the stall
    is cleared the broker recovers; every acknowledged record is read back (0 lost), and the
    time to recover is printed (docs/RELIABILITY.md has the figures);
  - replacement: with a short replace threshold a stalled broker is replaced by a new id in its
    AZ and cell, its replicas rebuilt there, the old one retired; nothing acknowledged lost;
  - a slow broker (disk-slow) leaves the ISR and keeps replicating, and comes back.
"""

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

import confluent_kafka as ck

from clients import RDK_LOG

FAST = ("--brokers", "3",
        "--set", "minikora.health.check.interval.ms=200",
        "--set", "minikora.health.probe.interval.ms=250",
        "--set", "minikora.health.stall.ms=1500",
        "--set", "minikora.health.restart.grace.ms=1500",
        "--set", "minikora.health.recover.ms=1000")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def api(mk, method, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
    headers = {"Content-Type": "application/json"}
    headers.update(mk.admin_headers())
    req = urllib.request.Request(mk.admin_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text and text[0] in "{[" else text)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, (json.loads(text) if text.startswith("{") else text)


def ok(mk, method, path, body=None):
    status, j = api(mk, method, path, body)
    assert status in (200, 201, 202, 204), (method, path, status, j)
    return j


def last_seq(mk):
    return ok(mk, "GET", "/v1/events")["last_seq"]


def wait_for(what, pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("%s not seen within %.0f s" % (what, timeout))
        time.sleep(0.05)  # poll interval, not synchronisation


def wait_event(mk, etype, since, broker=None, timeout=30):
    """The first event of type etype (of broker) after seq since."""
    def find():
        for e in ok(mk, "GET", "/v1/events?since=%d&type=%s" % (since, etype))["events"]:
            if broker is None or e.get("broker") == broker:
                return e
        return None
    return wait_for("event %s (broker %s)" % (etype, broker), find, timeout)


def health(mk):
    return ok(mk, "GET", "/v1/health")


def health_of(mk, broker):
    return next(b for b in health(mk)["brokers"] if b["id"] == broker)


def add_fault(mk, **spec):
    status, j = api(mk, "POST", "/v1/faults", spec)
    if status == 404:
        pytest.skip("no fault-injection API (POST /v1/faults) in this build")
    assert status in (200, 201), (status, j)
    return j["id"]


def clear_fault(mk, fid):
    status, j = api(mk, "DELETE", "/v1/faults/%s" % fid)
    assert status in (200, 204), (status, j)


def topic_info(mk, topic):
    return ok(mk, "GET", "/v1/topics/%s" % topic)


def partitions(mk, topic):
    t = topic_info(mk, topic)
    t = t.get("topic", t)
    return t["partition_details"]


def create_topic(mk, topic, partitions_=1, rf=3):
    ok(mk, "POST", "/v1/topics", {"name": topic, "partitions": partitions_, "replication_factor": rf,
                                  "configs": {"min.insync.replicas": "2"}})


class Producer:
    """An idempotent acks=all producer that keeps producing numbered records to one partition
    until stopped, and remembers which were acknowledged and when."""

    def __init__(self, bootstrap, topic, partition=0, tag="p"):
        self.p = ck.Producer({"bootstrap.servers": bootstrap, "logger": RDK_LOG, "acks": "all",
                              "enable.idempotence": True, "linger.ms": 2,
                              "message.timeout.ms": 120000, "retry.backoff.ms": 50,
                              "client.id": "health-%s" % tag})
        self.topic, self.partition, self.tag = topic, partition, tag
        self.acked = []           # values, in acknowledgement order
        self.ack_times = []       # monotonic time of each acknowledgement
        self.errors = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def dr(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append(msg.value())
                self.ack_times.append(time.monotonic())
            else:
                self.errors.append(str(err))

    def run(self):
        while not self.stop_ev.wait(0.005):
            try:
                self.p.produce(self.topic, value=b"%s-%08d" % (self.tag.encode(), self.sent),
                               partition=self.partition, on_delivery=self.dr)
                self.sent += 1
            except BufferError:
                pass
            self.p.poll(0)

    def count(self):
        with self.lock:
            return len(self.acked)

    def first_ack_after(self, t):
        with self.lock:
            return next((x for x in self.ack_times if x > t), None)

    def stop(self, timeout=60):
        self.stop_ev.set()
        self.thread.join(10)
        left = self.p.flush(timeout)
        assert left == 0, "%d records still unacknowledged after %d s" % (left, timeout)


def consume_all(bootstrap, topic, partition, upto, timeout=60):
    """Every record of the partition from the start up to offset `upto` (its end), in order."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "logger": RDK_LOG, "group.id": "h-%s" % uuid.uuid4().hex,
                     "enable.auto.commit": False, "isolation.level": "read_committed",
                     "auto.offset.reset": "earliest"})
    try:
        c.assign([ck.TopicPartition(topic, partition, ck.OFFSET_BEGINNING)])
        got = []
        deadline = time.monotonic() + timeout
        next_off = 0
        while next_off < upto and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            got.append(m.value())
            next_off = m.offset() + 1
        return got
    finally:
        c.close()


def high_watermark(bootstrap, topic, partition):
    c = ck.Consumer({"bootstrap.servers": bootstrap, "logger": RDK_LOG, "group.id": "hw-%s" % uuid.uuid4().hex})
    try:
        return c.get_watermark_offsets(ck.TopicPartition(topic, partition), timeout=20)[1]
    finally:
        c.close()


def check_no_loss(mk, topic, prod):
    hw = high_watermark(mk.bootstrap, topic, 0)
    got = consume_all(mk.bootstrap, topic, 0, hw)
    seen = set(got)
    lost = [v for v in prod.acked if v not in seen]
    dups = len(got) - len(seen)
    assert not lost, "%d acknowledged records lost (first %r)" % (len(lost), lost[:3])
    assert dups == 0, "%d duplicated records" % dups
    # in order: the acknowledged records appear in the order they were sent
    order = [v for v in got if v.startswith(prod.tag.encode() + b"-")]
    assert order == sorted(order), "records out of order"
    return len(got)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_health_shape_probes_metrics(minikora):
    mk = minikora(*FAST)
    h = wait_for("probes on every broker",
                 lambda: (lambda j: j if j["brokers"] and all(b["probes"]["ok"] >= 2 for b in j["brokers"]) else None)(health(mk)),
                 30)
    assert h["enabled"] is True and h["probe_tenant"] == "minikora-health"
    th = h["thresholds"]
    for k in ("check_interval_ms", "probe_interval_ms", "stall_ms", "restart_grace_ms", "replace_after_ms",
              "recover_ms", "slow_factor", "slow_min_ms", "slow_for_ms"):
        assert k in th, k
    assert th["stall_ms"] == 1500 and th["check_interval_ms"] == 200
    assert [b["id"] for b in h["brokers"]] == [1, 2, 3]
    for b in h["brokers"]:
        assert b["state"] == "healthy" and b["step"] == 0 and b["fenced"] is False
        assert set(b["io"]) >= {"ops", "errors", "inflight", "oldest_inflight_ms", "p50_ms", "p99_ms"}
        assert b["probes"]["topic"] == "minikora-health~probe-%d" % b["id"]
        assert b["probes"]["failed"] == 0 and b["probes"]["error"] is None
        assert b["probes"]["produce_ms"] > 0 and b["probes"]["last_ok_ms"] > 0
        assert b["az"].startswith("az-") and b["cell"] == 0
    # The probe topics are internal: neither the admin listing nor a Kafka client sees them.
    names = [t["name"] for t in ok(mk, "GET", "/v1/topics")["topics"]]
    assert not any(n.startswith("minikora-health") for n in names), names
    md = ck.admin.AdminClient({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG}).list_topics(timeout=10)
    assert not any("probe" in n for n in md.topics), list(md.topics)
    # Metrics: the families, one state series per broker and state; promtool accepts the text.
    status, text = api(mk, "GET", "/metrics")
    assert status == 200
    for fam in ("minikora_health_state", "minikora_health_ladder_step", "minikora_health_probes_total",
                "minikora_health_probe_produce_seconds", "minikora_health_io_inflight_oldest_seconds"):
        assert "# TYPE %s " % fam in text, fam
    assert 'minikora_health_state{broker="2",state="healthy"} 1' in text
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(180)
def test_disk_stall_ladder_restart_demote_no_loss(minikora):
    mk = minikora(*FAST, "--set", "minikora.health.replace.after.ms=-1")
    topic = "stall-%s" % uuid.uuid4().hex[:6]
    create_topic(mk, topic)
    leader = wait_for("a leader", lambda: partitions(mk, topic)[0]["leader"], 20)
    prod = Producer(mk.bootstrap, topic, tag="stall")
    try:
        wait_for("records acknowledged", lambda: prod.count() >= 200, 30)
        seq = last_seq(mk)
        t_fault = time.monotonic()
        fid = add_fault(mk, type="disk-stall", broker=leader)
        e1 = wait_event(mk, "health_restart", seq, broker=leader, timeout=30)
        t_restart = time.monotonic()
        e2 = wait_event(mk, "health_demoted", e1["seq"], broker=leader, timeout=30)
        hb = health_of(mk, leader)
        assert hb["state"] == "demoted" and hb["step"] == 2 and hb["fenced"] is True
        assert hb["restarts"] >= 1
        # Leadership moved away; the producer goes on through the new leader.
        new_leader = partitions(mk, topic)[0]["leader"]
        assert new_leader not in (leader, -1, None)
        n = prod.count()
        wait_for("the producer going on after the demotion", lambda: prod.count() > n + 100, 60)
        first_ack = prod.first_ack_after(t_fault + 0.001)
        # The stall ends: the broker's storage works again, it is healthy, rejoins the ISR.
        clear_fault(mk, fid)
        t_clear = time.monotonic()
        e3 = wait_event(mk, "health_recovered", e2["seq"], broker=leader, timeout=60)
        t_recovered = time.monotonic()
        wait_for("broker %d back in the ISR" % leader,
                 lambda: leader in partitions(mk, topic)[0]["isr"], 60)
        hb = health_of(mk, leader)
        assert hb["state"] == "healthy" and hb["fenced"] is False
    finally:
        prod.stop()
    total = check_no_loss(mk, topic, prod)
    # Time to recover: for clients, from the stall to the next acknowledged write after the
    # leader's writes stopped (the stall blocks the old leader's appends until the ladder acts).
    stalled_acks = [t for t in prod.ack_times if t > t_fault]
    gaps = [b - a for a, b in zip([t_fault] + stalled_acks, stalled_acks)]
    print("\nHEALTH-FIGURES disk-stall: restart %.2f s after the stall, demote %.2f s after it; longest "
          "gap in acknowledgements %.2f s (first acknowledgement after the stall %.2f s after it); the "
          "broker healthy again %.2f s after the stall cleared (whole episode %d ms); records stored %d, "
          "acknowledged %d, lost 0, duplicated 0"
          % (t_restart - t_fault, (e2["time_ms"] - e1["time_ms"]) / 1000.0 + (t_restart - t_fault),
             max(gaps) if gaps else 0.0, first_ack - t_fault, t_recovered - t_clear,
             health_of(mk, leader)["recover_ms"], total, len(prod.acked)))
    assert first_ack is not None


@pytest.mark.timeout(180)
def test_disk_stall_replacement(minikora):
    mk = minikora(*FAST, "--set", "minikora.health.replace.after.ms=1000")
    topic = "replace-%s" % uuid.uuid4().hex[:6]
    create_topic(mk, topic)
    leader = wait_for("a leader", lambda: partitions(mk, topic)[0]["leader"], 20)
    before = {b["id"]: b for b in health(mk)["brokers"]}
    prod = Producer(mk.bootstrap, topic, tag="repl")
    try:
        wait_for("records acknowledged", lambda: prod.count() >= 100, 30)
        seq = last_seq(mk)
        t0 = time.monotonic()
        add_fault(mk, type="disk-stall", broker=leader)
        e1 = wait_event(mk, "health_restart", seq, broker=leader, timeout=30)
        e2 = wait_event(mk, "health_demoted", e1["seq"], broker=leader, timeout=30)
        e3 = wait_event(mk, "health_replace", e2["seq"], broker=leader, timeout=30)
        wait_event(mk, "health_retired", e3["seq"], broker=leader, timeout=60)
        print("\nHEALTH-FIGURES replacement: broker %d retired, its replicas on a new broker, %.2f s after the "
              "stall" % (leader, time.monotonic() - t0))
        old = health_of(mk, leader)
        assert old["state"] == "retired" and old["replaced_by"], old
        new_id = old["replaced_by"]
        assert new_id not in before
        new = health_of(mk, new_id)
        assert new["az"] == before[leader]["az"] and new["cell"] == before[leader]["cell"]
        assert new["replaces"] == leader
        p = partitions(mk, topic)[0]
        assert leader not in p["replicas"] and new_id in p["replicas"], p
        wait_for("the ISR full with the new broker",
                 lambda: sorted(partitions(mk, topic)[0]["isr"]) == sorted(partitions(mk, topic)[0]["replicas"]),
                 60)
        n = prod.count()
        wait_for("the producer going on", lambda: prod.count() > n + 50, 60)
    finally:
        prod.stop()
    check_no_loss(mk, topic, prod)


@pytest.mark.timeout(150)
def test_slow_broker_leaves_isr_keeps_replicating(minikora):
    mk = minikora("--brokers", "3",
                  "--set", "minikora.health.check.interval.ms=200",
                  "--set", "minikora.health.probe.interval.ms=200",
                  "--set", "minikora.health.stall.ms=20000",
                  "--set", "minikora.health.slow.min.ms=50",
                  "--set", "minikora.health.slow.for.ms=1000",
                  "--set", "minikora.health.recover.ms=1000")
    topic = "slow-%s" % uuid.uuid4().hex[:6]
    create_topic(mk, topic)
    p0 = wait_for("a leader", lambda: (lambda p: p if p["leader"] else None)(partitions(mk, topic)[0]), 20)
    slow = next(b for b in p0["replicas"] if b != p0["leader"])
    prod = Producer(mk.bootstrap, topic, tag="slow")
    try:
        wait_for("records acknowledged", lambda: prod.count() >= 100, 30)
        seq = last_seq(mk)
        t0 = time.monotonic()
        fid = add_fault(mk, type="disk-slow", broker=slow, delay_ms=300)
        e = wait_event(mk, "health_slow", seq, broker=slow, timeout=40)
        t_slow = time.monotonic() - t0
        hb = health_of(mk, slow)
        assert hb["state"] == "slow" and hb["step"] == 4 and hb["fenced"] is True
        wait_for("broker %d out of the ISR" % slow, lambda: slow not in partitions(mk, topic)[0]["isr"], 20)
        # It keeps replicating: its replica's log end still moves while it is out of the ISR.
        def replica_end():
            for r in partitions(mk, topic)[0].get("replica_details", []):
                if r.get("broker") == slow:
                    return r.get("log_end_offset")
            return None
        end0 = replica_end()
        if end0 is not None:
            wait_for("the slow replica still replicating", lambda: (replica_end() or 0) > end0, 30)
        clear_fault(mk, fid)
        t1 = time.monotonic()
        wait_event(mk, "health_recovered", e["seq"], broker=slow, timeout=40)
        wait_for("broker %d back in the ISR" % slow, lambda: slow in partitions(mk, topic)[0]["isr"], 40)
        print("\nHEALTH-FIGURES slow broker: out of the ISR %.2f s after disk-slow 300 ms, back in it %.2f s "
              "after the fault cleared" % (t_slow, time.monotonic() - t1))
    finally:
        prod.stop()
    check_no_loss(mk, topic, prod)


@pytest.mark.timeout(60)
def test_defaults_act_on_a_stalled_disk_within_10s(minikora):
    """No minikora.health.* setting: a stalled disk is acted on (restart) within 10 s."""
    mk = minikora("--brokers", "3")
    topic = "dflt-%s" % uuid.uuid4().hex[:6]
    create_topic(mk, topic)
    leader = wait_for("a leader", lambda: partitions(mk, topic)[0]["leader"], 20)
    prod = Producer(mk.bootstrap, topic, tag="dflt")
    try:
        wait_for("records acknowledged", lambda: prod.count() >= 50, 30)
        seq = last_seq(mk)
        t0 = time.monotonic()
        fid = add_fault(mk, type="disk-stall", broker=leader)
        wait_event(mk, "health_restart", seq, broker=leader, timeout=10)
        took = time.monotonic() - t0
        print("\nHEALTH-FIGURES defaults: a stalled disk restarted %.2f s after the stall" % took)
        assert took < 10
        assert partitions(mk, topic)[0]["leader"] != leader
        clear_fault(mk, fid)
    finally:
        prod.stop()
    check_no_loss(mk, topic, prod)


@pytest.mark.timeout(120)
def test_replacement_survives_a_restart(minikora, tmp_path):
    """The replacement broker (its AZ and cell) and the retired one come back after a restart
    of minikora (cluster.brokers.added, cluster.brokers.retired)."""
    data = tmp_path / "data"
    args = FAST + ("--set", "minikora.health.replace.after.ms=500")
    mk = minikora(*args, data_dir=data)
    topic = "keep-%s" % uuid.uuid4().hex[:6]
    create_topic(mk, topic)
    victim = wait_for("a leader", lambda: partitions(mk, topic)[0]["leader"], 20)
    az = health_of(mk, victim)["az"]
    seq = last_seq(mk)
    add_fault(mk, type="disk-stall", broker=victim)
    e = wait_event(mk, "health_retired", seq, broker=victim, timeout=60)
    new_id = health_of(mk, victim)["replaced_by"]
    wait_for("the ISR full", lambda: len(partitions(mk, topic)[0]["isr"]) == 3, 60)
    mk.stop()
    mk.start()
    brokers = {b["id"]: b for b in ok(mk, "GET", "/v1/brokers")["brokers"]}
    assert new_id in brokers and brokers[new_id]["az"] == az, brokers
    assert brokers[victim]["state"] != "running", brokers[victim]
    assert health_of(mk, victim)["state"] == "retired"
    assert health_of(mk, new_id)["state"] == "healthy" or wait_for(
        "the new broker healthy", lambda: health_of(mk, new_id)["state"] == "healthy", 20)
    p = partitions(mk, topic)[0]
    assert victim not in p["replicas"] and new_id in p["replicas"], p
    assert e["message"]


@pytest.mark.timeout(120)
def test_disk_error_ladder_and_back(minikora):
    """disk-error on a topic's leader: its log directory goes offline and leadership moves (the
    fault layer's Kafka behaviour); the ladder restarts, then demotes the broker, restarting it
    now and then until its logs open again; once the fault is cleared it is healthy and back in
    the ISR.  Nothing acknowledged is lost."""
    mk = minikora(*FAST, "--set", "minikora.health.replace.after.ms=-1")
    topic = "derr-%s" % uuid.uuid4().hex[:6]
    create_topic(mk, topic)
    leader = wait_for("a leader", lambda: partitions(mk, topic)[0]["leader"], 20)
    prod = Producer(mk.bootstrap, topic, tag="derr")
    try:
        wait_for("records acknowledged", lambda: prod.count() >= 100, 30)
        seq = last_seq(mk)
        fid = add_fault(mk, type="disk-error", broker=leader)
        e1 = wait_event(mk, "health_restart", seq, broker=leader, timeout=30)
        e2 = wait_event(mk, "health_demoted", e1["seq"], broker=leader, timeout=30)
        assert partitions(mk, topic)[0]["leader"] != leader
        n = prod.count()
        wait_for("the producer going on", lambda: prod.count() > n + 100, 60)
        clear_fault(mk, fid)
        wait_event(mk, "health_recovered", e2["seq"], broker=leader, timeout=60)
        wait_for("broker %d back in the ISR" % leader, lambda: leader in partitions(mk, topic)[0]["isr"], 60)
    finally:
        prod.stop()
    check_no_loss(mk, topic, prod)


@pytest.mark.timeout(60)
def test_watch_only(minikora):
    """minikora.health.enable=false: a stall is seen and reported, never acted on."""
    mk = minikora(*FAST, "--set", "minikora.health.enable=false")
    assert health(mk)["enabled"] is False
    seq = last_seq(mk)
    fid = add_fault(mk, type="disk-stall", broker=2)
    e = wait_event(mk, "health_stalled", seq, broker=2, timeout=20)
    hb = health_of(mk, 2)
    assert hb["state"] == "stalled" and hb["step"] == 0 and hb["fenced"] is False and hb["restarts"] == 0
    assert hb["no_progress_ms"] >= 1500
    assert not ok(mk, "GET", "/v1/events?since=%d&type=health_restart" % seq)["events"]
    clear_fault(mk, fid)
    wait_for("broker 2 healthy", lambda: health_of(mk, 2)["state"] == "healthy", 20)
    assert e["broker"] == 2
