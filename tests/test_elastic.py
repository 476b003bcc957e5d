"""Elasticity: brokers added, drained and removed at runtime; the within-cell partition balancer.

* POST /v1/brokers adds a broker to a cell in an AZ; POST /v1/brokers/{id}/drain moves every
  replica off a broker online (repl/'s reassignment) while an idempotent acks=all producer runs:
  every acknowledged record is read back once; GET /v1/brokers/{id} shows the progress (state
  draining, then drained, replicas left).
* DELETE /v1/brokers/{id} retires a drained broker: it leaves Metadata, its listener closes, and a
  restart keeps it retired.  It is refused (409) while the broker holds replicas or is the last
  broker of its AZ in its cell.
* The partition balancer evens replicas and leaders over a cell's brokers after a broker joined
  it, on demand (POST /v1/cells/{n}/rebalance) and by itself (minikora.balancer.partitions.enable),
  and a balanced cell makes no further move.
Waits poll the admin API with bounded deadlines (wait_for); nothing sleeps to synchronise.
"""

import socket
import threading
import time
import urllib.request

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import NewTopic

from cluster import Cluster
from clients import ck_close_bounded, ck_result
from test_placement import wait_for
from test_tenants import ck_conf, http


def broker(mk, bid):
    st, j = http(mk, "GET", "/v1/brokers/%d" % bid)
    assert st == 200, j
    return j["broker"]


def brokers(mk):
    st, j = http(mk, "GET", "/v1/brokers")
    assert st == 200, j
    return {b["id"]: b for b in j["brokers"]}


def replicas_of(mk, topic):
    st, t = http(mk, "GET", "/v1/topics/%s" % topic)
    assert st == 200, t
    return [p["replicas"] for p in t["topic"]["partition_details"]]


def metadata_brokers(mk):
    admin = ck.admin.AdminClient(ck_conf(mk))
    return set(admin.list_topics(timeout=10).brokers)


def create_topic(mk, name, partitions, rf):
    admin = ck.admin.AdminClient(ck_conf(mk))
    fut = admin.create_topics([NewTopic(name, partitions, rf)], operation_timeout=10)
    assert ck_result(fut[name]) is None


def read_all(mk, topic, partitions, want):
    c = ck.Consumer(ck_conf(mk, **{"group.id": "check-%s" % topic, "auto.offset.reset": "earliest",
                                   "enable.auto.commit": False}))
    stored = []
    try:
        c.assign([ck.TopicPartition(topic, i, ck.OFFSET_BEGINNING) for i in range(partitions)])
        deadline = time.monotonic() + 60
        while len(stored) < want and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                assert not m.error(), m.error()
                stored.append(m.value())
        for m in c.consume(num_messages=1000, timeout=1.0):
            if not m.error():
                stored.append(m.value())
    finally:
        ck_close_bounded(c)
    return stored


class Producer:
    """An idempotent acks=all producer on its own thread until stop()."""

    def __init__(self, mk, topic):
        self.acked, self.errors, self.stopping = [], [], threading.Event()
        self.mk, self.topic = mk, topic
        self.t = threading.Thread(target=self.run, daemon=True)  # a failed test must not hold exit
        self.t.start()

    def run(self):
        p = ck.Producer(ck_conf(self.mk, acks="all", **{"enable.idempotence": True, "linger.ms": 5}))
        i = 0

        def dr(err, msg):
            (self.errors.append(err) if err else self.acked.append(msg.value()))
        while not self.stopping.is_set():
            try:
                p.produce(self.topic, value=b"r-%07d" % i, on_delivery=dr)
                i += 1
            except BufferError:
                p.poll(0.05)
            p.poll(0)
            if i % 200 == 0:
                time.sleep(0.01)  # a steady rate, not a synchronisation
        assert p.flush(60) == 0

    def stop(self):
        self.stopping.set()
        if not self.t.is_alive():
            return
        self.t.join(90)
        assert not self.t.is_alive()


@pytest.mark.timeout(240)
def probed(mk, broker_id):
    """Whether the health manager's probe partition of a broker exists and has served a probe."""
    st, h = http(mk, "GET", "/v1/health")
    assert st == 200, h
    return any(b["id"] == broker_id and b["probes"]["ok"] > 0 for b in h["brokers"])


@pytest.mark.timeout(240)
def test_drain_and_remove_under_load(tmp_path):
    data = tmp_path / "data"
    mk = Cluster("--brokers", "3", "--azs", "3", "--set", "minikora.balancer.enable=false",
                 "--set", "minikora.health.probe.interval.ms=100",
                 data_dir=data, name="drain").start()
    prod = None
    try:
        create_topic(mk, "stream", 6, 3)
        # a second broker in az-1 of cell 0, so that broker 1 can go
        st, j = http(mk, "POST", "/v1/brokers", {"az": "az-1", "cell": 0})
        assert st == 201, j
        assert j["broker"]["id"] == 4 and j["broker"]["az"] == "az-1" and j["broker"]["cell"] == 0
        assert j["broker"]["state"] == "running" and j["broker"]["replicas"] == 0
        assert 4 in metadata_brokers(mk)
        assert http(mk, "POST", "/v1/brokers", {"az": "az-9", "cell": 0})[0] == 400
        assert http(mk, "POST", "/v1/brokers", {"az": "az-1", "cell": 7})[0] == 400

        # refusals before anything moved
        st, e = http(mk, "DELETE", "/v1/brokers/1")
        assert st == 409 and e["error"] == "broker_has_replicas" and "drain it first" in e["message"], e
        st, e = http(mk, "DELETE", "/v1/brokers/2")
        assert st == 409 and e["error"] == "broker_has_replicas", e
        assert http(mk, "DELETE", "/v1/brokers/99")[0] == 404

        prod = Producer(mk, "stream")
        wait_for(lambda: len(prod.acked) > 2000, 60, "records acknowledged before the drain")
        # the broker's own health probe partition is no replica to drain or to move
        wait_for(lambda: probed(mk, 1), 30, "broker 1's health probe")
        st, j = http(mk, "POST", "/v1/brokers/1/drain")
        assert st == 202, j
        assert j["broker"]["state"] in ("draining", "drained") and j["broker"]["drain"]["replicas"] == 6, j
        assert http(mk, "POST", "/v1/brokers/1/drain")[0] == 409
        wait_for(lambda: broker(mk, 1)["state"] == "drained", 90, "broker 1 to be drained")
        b1 = broker(mk, 1)
        assert b1["drain"]["replicas_left"] == 0 and b1["replicas"] == 0 and b1["leaders"] == 0, b1
        for reps in replicas_of(mk, "stream"):
            assert 1 not in reps and 4 in reps and len(reps) == 3, reps
        before = len(prod.acked)
        wait_for(lambda: len(prod.acked) > before + 2000, 60, "records acknowledged after the drain")

        # broker 4 now holds replicas; broker 2 is the last of az-2 in cell 0
        st, e = http(mk, "DELETE", "/v1/brokers/4")
        assert st == 409 and e["error"] == "broker_has_replicas", e
        port1 = mk.brokers[0][1]
        st, j = http(mk, "DELETE", "/v1/brokers/1")
        assert st == 200 and j["broker"]["state"] == "retired" and not j["broker"]["running"], j
        st, e = http(mk, "DELETE", "/v1/brokers/1")
        assert st == 409, e
        assert http(mk, "POST", "/v1/brokers/1/start")[0] == 409
        assert http(mk, "POST", "/v1/brokers/1/drain")[0] == 409
        # an empty broker in an AZ that has another goes at once
        st, e = http(mk, "POST", "/v1/brokers", {"az": "az-2", "cell": 0})
        assert st == 201 and e["broker"]["id"] == 5, e
        wait_for(lambda: probed(mk, 5), 30, "broker 5's health probe")  # dropped with the broker
        st, e = http(mk, "DELETE", "/v1/brokers/5")
        assert st == 200, e
        # a drain with nowhere to go (rf 3 over the cell's 3 AZs) stays, and can be cancelled
        st, e = http(mk, "POST", "/v1/brokers/3/drain")
        assert st == 202, e
        wait_for(lambda: broker(mk, 3)["drain"]["stuck"] == 6, 30, "broker 3's drain to find no place")
        st, e = http(mk, "DELETE", "/v1/brokers/3")
        assert st == 409 and e["error"] == "broker_has_replicas", e
        assert http(mk, "DELETE", "/v1/brokers/3/drain")[0] == 200
        assert broker(mk, 3)["state"] == "running"
        # the last broker of its AZ in its cell stays, even empty
        st, c = http(mk, "POST", "/v1/cells")
        assert st == 201 and c["brokers"] == [6, 7, 8], c
        st, e = http(mk, "DELETE", "/v1/brokers/6")
        assert st == 409 and e["error"] == "last_in_az" and "az-1" in e["message"], e

        # retired: out of Metadata, its listener closed
        assert metadata_brokers(mk) == {2, 3, 4, 6, 7, 8}
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port1), timeout=2).close()
        prod.stop()
        assert not prod.errors, prod.errors[:5]
        stored = read_all(mk, "stream", 6, len(prod.acked))
        assert len(stored) == len(set(stored)), "duplicates in the log"
        assert set(prod.acked) <= set(stored), "acknowledged records lost: %d" % len(set(prod.acked) - set(stored))
        st, ev = http(mk, "GET", "/v1/events?type=broker_drained")
        assert st == 200 and any(e["broker"] == 1 for e in ev["events"]), ev
        st, ev = http(mk, "GET", "/v1/events?type=broker_removed")
        assert st == 200 and {e["broker"] for e in ev["events"]} >= {1, 5}, ev
        with urllib.request.urlopen(mk.admin_url + "/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "minikora_brokers_removed_total 2" in metrics, metrics
        assert "minikora_broker_drains_done_total" in metrics
        # the removed brokers' probe partitions went with them (1 and 5), the others' stay
        probes = lambda: sorted(p.name for p in data.rglob("*probe-*") if p.is_dir())  # noqa: E731
        wait_for(lambda: not any("probe-1-" in n or "probe-5-" in n for n in probes()), 30,
                 "the removed brokers' probe partitions to go: %s" % probes())
        assert any("probe-2-" in n for n in probes()), probes()
    finally:
        if prod:
            prod.stopping.set()
        mk.stop()

    # a restart keeps broker 1 retired and the added brokers
    mk = Cluster("--brokers", "3", "--azs", "3", "--set", "minikora.balancer.enable=false",
                 data_dir=data, name="drain2").start()
    try:
        bs = brokers(mk)
        assert bs[1]["state"] == "retired" and not bs[1]["running"], bs[1]
        assert bs[4]["running"] and bs[4]["cell"] == 0 and bs[4]["az"] == "az-1", bs[4]
        assert bs[5]["state"] == "retired"
        assert metadata_brokers(mk) == {2, 3, 4, 6, 7, 8}
        for reps in replicas_of(mk, "stream"):
            assert 1 not in reps, reps
        stored = read_all(mk, "stream", 6, len(prod.acked))
        assert set(prod.acked) <= set(stored)
        assert len(stored) == len(set(stored))
    finally:
        mk.stop()


def spread(mk, ids):
    bs = brokers(mk)
    return [bs[i]["replicas"] for i in ids], [bs[i]["leaders"] for i in ids]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("automatic", [False, True])
def test_partition_balancer_evens_a_cell(automatic):
    extra = ["--brokers", "3", "--azs", "3", "--set", "minikora.balancer.enable=false",
             "--set", "minikora.balancer.partitions.interval.ms=300"]
    if automatic:
        extra += ["--set", "minikora.balancer.partitions.enable=true"]
    with Cluster(*extra, name="pbal") as mk:
        create_topic(mk, "skew", 12, 1)
        create_topic(mk, "skew3", 3, 3)
        st, j = http(mk, "POST", "/v1/brokers", {"az": "az-2", "cell": 0})
        assert st == 201, j
        new = j["broker"]["id"]
        ids = [1, 2, 3, new]
        reps, _ = spread(mk, ids)
        assert reps[-1] == 0 and max(reps) - min(reps) >= 2, reps
        assert http(mk, "POST", "/v1/cells/9/rebalance")[0] == 404

        def even():
            if not automatic:
                st, r = http(mk, "POST", "/v1/cells/0/rebalance")
                assert st == 200, r
            st, c = http(mk, "GET", "/v1/cells")
            reps, leaders = spread(mk, ids)
            idle = st == 200 and all(d["replicas_left"] == 0 for d in c["drains"])
            moving = any(len(r) > (1 if i < 12 else 3)
                         for i, r in enumerate(replicas_of(mk, "skew") + replicas_of(mk, "skew3")))
            return idle and not moving and max(reps) - min(reps) <= 1 and max(leaders) - min(leaders) <= 1
        wait_for(even, 90, "the cell's replicas and leaders to even out")
        reps, leaders = spread(mk, ids)
        assert reps[-1] >= 4, reps
        # one replica per AZ is kept for the rf 3 topic
        az = {b["id"]: b["az"] for b in brokers(mk).values()}
        for r in replicas_of(mk, "skew3"):
            assert len({az[x] for x in r}) == 3, r
        # a balanced cell: an on-demand pass moves nothing (no churn)
        st, r = http(mk, "POST", "/v1/cells/0/rebalance")
        assert st == 200 and r["moves"] == 0 and r["replica_skew"] <= 1, r
        st, ev = http(mk, "GET", "/v1/events?type=cell_rebalance")
        assert st == 200 and ev["events"], ev
        st, c = http(mk, "GET", "/v1/cells")
        assert c["partition_balancer"]["replica_moves"] >= 4 and c["partition_balancer"]["enabled"] == automatic, c
        mk.assert_alive()


@pytest.mark.timeout(60)
def test_unregister_broker_wire():
    """Kafka's UnregisterBroker (API 64, v0, flexible) is the same removal as DELETE /v1/brokers/{id}."""
    import kwire

    def unregister(c, bid):
        body = c.call(64, 0, kwire.i32(bid) + kwire.TAGS, flexible_req=True)
        r = kwire.Reader(body)
        r.i32()  # ThrottleTimeMs
        return r.i16(), r.compact_string()

    with Cluster("--brokers", "3", "--azs", "3", name="unreg") as mk:
        create_topic(mk, "kept", 3, 3)
        st, j = http(mk, "POST", "/v1/brokers", {"az": "az-1", "cell": 0})
        assert st == 201, j
        host, port = mk.brokers[1]
        with kwire.Conn(host, port) as c:
            err, msg = unregister(c, 1)
            assert err == 42 and "drain it first" in msg, (err, msg)   # INVALID_REQUEST: replicas
            st, j = http(mk, "POST", "/v1/brokers", {"az": "az-3", "cell": 0})
            assert st == 201 and j["broker"]["id"] == 5, j
            assert unregister(c, 5) == (0, None)
            err, msg = unregister(c, 5)
            assert err == 102, (err, msg)                                # BROKER_ID_NOT_REGISTERED
            assert unregister(c, 77)[0] == 102
            st, j = http(mk, "DELETE", "/v1/brokers/4")                  # the admin API's way
            assert st == 200, j
            err, msg = unregister(c, 2)
            assert err == 42, (err, msg)
        assert metadata_brokers(mk) == {1, 2, 3}
        assert brokers(mk)[5]["state"] == "retired"


@pytest.mark.timeout(120)
def test_drain_resumes_after_restart(tmp_path):
    """A drain is stored: one that could not finish (its only target stopped) goes on after a restart."""
    data = tmp_path / "data"
    args = ("--brokers", "3", "--azs", "3", "--set", "minikora.balancer.enable=false")
    with Cluster(*args, data_dir=data, name="resume") as mk:
        create_topic(mk, "r", 4, 3)
        st, j = http(mk, "POST", "/v1/brokers", {"az": "az-1", "cell": 0})
        assert st == 201 and j["broker"]["id"] == 4, j
        assert http(mk, "POST", "/v1/brokers/4/stop")[0] == 200
        st, j = http(mk, "POST", "/v1/brokers/1/drain")
        assert st == 202, j
        wait_for(lambda: broker(mk, 1)["drain"]["stuck"] == 4, 30, "the drain to find no running target")
        b1 = broker(mk, 1)
        assert b1["state"] == "draining" and b1["drain"]["replicas_left"] == 4, b1
        st, e = http(mk, "DELETE", "/v1/brokers/1")
        assert st == 409 and "still running" in e["message"], e
    with Cluster(*args, data_dir=data, name="resume2") as mk:
        # broker 4 runs again after the restart; the drain goes on by itself
        assert broker(mk, 1)["state"] in ("draining", "drained")
        wait_for(lambda: broker(mk, 1)["state"] == "drained", 60, "the resumed drain to end")
        for reps in replicas_of(mk, "r"):
            assert 1 not in reps and 4 in reps, reps
        st, j = http(mk, "DELETE", "/v1/brokers/1")
        assert st == 200 and j["broker"]["state"] == "retired", j
        st, c = http(mk, "GET", "/v1/cells")
        assert c["drains"] == [], c


@pytest.mark.timeout(60)
def test_drain_a_crashed_broker():
    """A broker that is down can be drained (its replicas are rebuilt elsewhere from the leaders) and
    removed; its log directories go."""
    with Cluster("--brokers", "3", "--azs", "3", "--set", "minikora.balancer.enable=false",
                 name="drain-down") as mk:
        create_topic(mk, "r", 4, 3)
        assert http(mk, "POST", "/v1/brokers", {"az": "az-1", "cell": 0})[0] == 201
        assert http(mk, "POST", "/v1/brokers/1/crash")[0] == 200
        assert http(mk, "POST", "/v1/brokers/1/drain")[0] == 202
        wait_for(lambda: broker(mk, 1)["state"] == "drained", 30, "the down broker's drain")
        for reps in replicas_of(mk, "r"):
            assert sorted(reps) == [2, 3, 4], reps
        assert http(mk, "DELETE", "/v1/brokers/1")[0] == 200
        data_dir = mk.ready_line.split("; data ")[1].split(";")[0]
        import os
        assert [d for d in os.listdir(os.path.join(data_dir, "broker-1")) if d.startswith("r-")] == []
