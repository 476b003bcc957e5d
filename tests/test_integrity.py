"""Integrity checks (issue 13): the scrubber, replica comparison and repair, lost data, the
durability audit, GET /v1/integrity and `minikora verify`.

Corruption is made by hand here: the test writes a byte into a replica's segment file while the
broker runs (the `corrupt` fault of the fault-injection API lands in the same files, so the same
detection covers it).  Every test runs its own 3-broker cluster (one cell, one replica per AZ) on
a fixed --data-dir under tmp_path, so that segment files can be found and changed.  Waits poll
GET /v1/integrity (bounded); passes are either frequent (minikora.scrub.interval.ms low) or
started on demand with POST /v1/integrity/scrub.
"""

import http.client
import json
import os
import re
import sqlite3
import struct
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import confluent_kafka as ck
import pytest

import kwire
from cluster import BIN
from clients import ck_consumer, ck_create_topic, ck_produce
from repl_util import (metadata, raw_produce, replica_dir, replica_log_files, wait_isr_full,
                       wait_replicas_identical)

CLUSTER = ("--brokers", "3", "--azs", "3")
FAST_SCRUB = ("--set", "minikora.scrub.interval.ms=300",
              "--set", "minikora.scrub.rate.bytes.per.sec=50000000")
ON_DEMAND = ("--set", "minikora.scrub.interval.ms=600000",
             "--set", "minikora.scrub.rate.bytes.per.sec=50000000")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def admin(mk, method, path, status=200):
    u = urlsplit(mk.admin_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request(method, path, headers=mk.admin_headers())
        r = conn.getresponse()
        text = r.read().decode()
    finally:
        conn.close()
    assert r.status == status, "%s %s -> %d %s" % (method, path, r.status, text)
    return json.loads(text) if text.startswith("{") else text


def integrity(mk):
    return admin(mk, "GET", "/v1/integrity")


def wait_integrity(mk, pred, timeout, what):
    """Poll GET /v1/integrity until pred(j); returns j.  Bounded."""
    deadline = time.monotonic() + timeout
    while True:
        j = integrity(mk)
        if pred(j):
            return j
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.0f s; last: %s" % (what, timeout, json.dumps(j)[:3000]))
        time.sleep(0.05)  # bounded by `timeout`


def broker_counts(j, broker):
    return next(b for b in j["brokers"] if b["id"] == broker)


def events(mk, type_):
    return admin(mk, "GET", "/v1/events?type=" + type_)["events"]


def scrub_now(mk, timeout=20):
    """POST /v1/integrity/scrub (retried while a pass runs) and wait for that pass to end."""
    deadline = time.monotonic() + timeout
    while True:
        u = urlsplit(mk.admin_url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        conn.request("POST", "/v1/integrity/scrub", headers=mk.admin_headers())
        r = conn.getresponse()
        body = json.loads(r.read().decode())
        conn.close()
        if r.status == 202:
            break
        assert r.status == 409, body
        assert time.monotonic() < deadline, "a pass kept running"
        time.sleep(0.05)  # bounded by `timeout`
    wait_integrity(mk, lambda j: j["scrubber"]["passes"] > body["passes"], timeout, "the requested pass")


def metric(mk, name, **labels):
    """The value of one sample of /metrics, or None."""
    text = admin(mk, "GET", "/metrics")
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
        if m and m.group(1) == name and (m.group(2) or "") == want:
            return float(m.group(3))
    return None


def batches_of(seg):
    """[(base offset, last offset, file position, size)] of a segment file."""
    data = seg.read_bytes()
    out, pos = [], 0
    while pos + 61 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        delta = struct.unpack(">i", data[pos + 23:pos + 27])[0]
        out.append((base, base + delta, pos, 12 + length))
        pos += 12 + length
    return out


def find_batch(data_dir, broker, topic, offset):
    """(segment file, position, base, last) of the batch holding offset on that replica."""
    for seg in replica_log_files(data_dir, broker, topic, 0):
        for base, last, pos, _ in batches_of(seg):
            if base <= offset <= last:
                return seg, pos, base, last
    raise AssertionError("offset %d not found on broker %d" % (offset, broker))


def flip_byte(seg, pos):
    """Change one byte of a segment file in place, as a failing disk would."""
    with open(seg, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x5A]))
        f.flush()
        os.fsync(f.fileno())


def produce_batches(mk, topic, leader, nbatches, per_batch=5):
    """One raw batch per Produce (acks=all), so batch boundaries are known; -> values by offset."""
    values = []
    for i in range(nbatches):
        vals = [("v-%04d-%s" % (len(values) + k, "x" * 40)).encode() for k in range(per_batch)]
        err, base = raw_produce(mk, leader, topic, 0, vals, acks=-1)
        assert err == 0 and base == len(values), (err, base, len(values))
        values += vals
    return values


def consume_all(mk, topic, n, timeout=30):
    """Every record of partition 0 from the start: [(offset, value)] (asserts no error)."""
    c = ck_consumer(mk.bootstrap)
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        got, errs = [], []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    errs.append(m.error())
                else:
                    got.append((m.offset(), m.value()))
        assert not errs, errs[:3]
        return got
    finally:
        c.close()


def make_topic(mk, topic, config=None):
    err = ck_create_topic(mk.bootstrap, topic, 1, rf=3, config=config or {})
    assert err is None, err
    parts = wait_isr_full(mk, topic)
    return parts[0]["leader"]


def verify(data_dir):
    return subprocess.run([str(BIN), "verify", "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=60)


# ---------------------------------------------------------------------------------------------
# Corruption made by hand while the broker runs
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_byte_changed_in_a_segment_is_detected_and_repaired(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, *FAST_SCRUB, data_dir=data)
    leader = make_topic(mk, "scrubbed", {"segment.bytes": "2048"})
    values = produce_batches(mk, "scrubbed", leader, 24)
    wait_replicas_identical(data, "scrubbed", 0, [1, 2, 3])
    assert len(replica_log_files(data, leader, "scrubbed", 0)) >= 3, "want sealed segments too"

    # One byte of a record value of the leader's copy (offset 40: a sealed segment).
    seg, pos, base, last = find_batch(data, leader, "scrubbed", 40)
    flip_byte(seg, pos + 100)
    t0 = time.monotonic()
    j = wait_integrity(mk, lambda j: j["total"]["corruptions_repaired"] >= 1, 20, "detection and repair")
    took = time.monotonic() - t0
    b = broker_counts(j, leader)
    assert b["corruptions_found"] == 1 and b["corruptions_repaired"] == 1, b
    assert j["total"]["corruptions_found"] == 1 and j["total"]["unrepairable_partitions"] == 0, j["total"]
    assert took < 10, "detected and repaired after %.1f s (interval 0.3 s)" % took
    found = [e for e in events(mk, "integrity_corruption") if e["broker"] == leader]
    assert found and ("offset %d" % base) in found[0]["message"], found
    repaired = events(mk, "integrity_repaired")
    assert repaired and "it led" in repaired[0]["message"], repaired  # the leader handed over first

    # The repaired replica fetched the data again: every copy is the same, and readers get
    # the produced values byte for byte.
    wait_isr_full(mk, "scrubbed")
    wait_replicas_identical(data, "scrubbed", 0, [1, 2, 3])
    got = consume_all(mk, "scrubbed", len(values))
    assert [o for o, _ in got] == list(range(len(values)))
    assert [v for _, v in got] == values
    # Later passes find nothing more.
    passes = j["scrubber"]["passes"]
    j = wait_integrity(mk, lambda j: j["scrubber"]["passes"] >= passes + 2, 20, "two more passes")
    assert j["total"]["corruptions_found"] == 1 and j["total"]["batches_verified"] > 0, j["total"]
    assert broker_counts(j, leader)["last_full_pass_ms"] is not None
    assert metric(mk, "minikora_scrub_corruptions_total", broker=str(leader)) == 1
    assert metric(mk, "minikora_scrub_repairs_total", broker=str(leader)) == 1


@pytest.mark.timeout(120)
def test_diverged_follower_is_repaired_and_audited(minikora, tmp_path):
    """A follower's batch rewritten with a valid CRC: no checksum catches it, the comparison
    with the other replicas does (the majority is right), and the audit calls it an incident."""
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, *FAST_SCRUB, data_dir=data)
    leader = make_topic(mk, "diverge")
    values = produce_batches(mk, "diverge", leader, 6)
    wait_replicas_identical(data, "diverge", 0, [1, 2, 3])
    follower = next(b for b in (1, 2, 3) if b != leader)
    seg, pos, base, last = find_batch(data, follower, "diverge", 12)
    batch = bytearray(seg.read_bytes()[pos:pos + 12 + struct.unpack(">i", seg.read_bytes()[pos + 8:pos + 12])[0]])
    i = batch.index(b"v-0012")
    batch[i:i + 6] = b"V-0012"  # another value, same length
    struct.pack_into(">I", batch, 17, kwire.crc32c(bytes(batch[21:])))
    with open(seg, "r+b") as f:
        f.seek(pos)
        f.write(batch)
    j = wait_integrity(mk, lambda j: j["total"]["corruptions_repaired"] >= 1, 20, "divergence found and repaired")
    b = broker_counts(j, follower)
    assert b["divergences"] == 1 and b["corruptions_repaired"] == 1 and b["audit_incidents"] == 1, b
    assert all(broker_counts(j, o)["corruptions_found"] == 0 for o in (1, 2, 3) if o != follower)
    inc = j["incidents"][-1]
    assert (inc["kind"], inc["broker"], inc["from"], inc["to"]) == ("replicas_agree", follower, base, last), inc
    assert "below the high watermark" in inc["message"], inc
    wait_isr_full(mk, "diverge")
    wait_replicas_identical(data, "diverge", 0, [1, 2, 3])
    assert [v for _, v in consume_all(mk, "diverge", len(values))] == values


@pytest.mark.timeout(120)
def test_corruption_on_every_replica_is_lost_data_never_served(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, *ON_DEMAND, data_dir=data)
    leader = make_topic(mk, "lost")
    values = produce_batches(mk, "lost", leader, 6)
    wait_replicas_identical(data, "lost", 0, [1, 2, 3])
    scrub_now(mk)
    assert integrity(mk)["total"]["corruptions_found"] == 0

    # The same batch (offsets 10..14) damaged on all three replicas.
    for b in (1, 2, 3):
        seg, pos, base, last = find_batch(data, b, "lost", 12)
        assert (base, last) == (10, 14)
        flip_byte(seg, pos + 90 + b)
    scrub_now(mk)
    j = integrity(mk)
    assert j["total"]["unrepairable_partitions"] == 1 and j["total"]["corruptions_repaired"] == 0, j["total"]
    marks = sorted((u["topic"], u["partition"], u["broker"], tuple(map(tuple, u["offsets"])))
                   for u in j["unrepairable"])
    assert marks == [("lost", 0, b, ((10, 14),)) for b in (1, 2, 3)], marks
    assert {e["broker"] for e in events(mk, "integrity_data_lost")} == {1, 2, 3}
    assert metric(mk, "minikora_integrity_data_lost_partitions") == 1
    assert metric(mk, "minikora_scrub_unrepairable_partitions", broker=str(leader)) == 1
    # The leader did not move: no replica had a sound copy to hand over to.
    assert metadata(mk, "lost")[1][0]["leader"] == leader

    # Never served: a read at the lost offsets is refused, a read below stops before them,
    # and what follows them is still there.
    with mk.wire(leader) as c:
        p = c.fetch("lost", 0, 10, version=11, max_wait_ms=0)[-1]
        assert p["error"] == kwire.CORRUPT_MESSAGE and not p["records"], p
        p = c.fetch("lost", 0, 12, version=11, max_wait_ms=0)[-1]
        assert p["error"] == kwire.CORRUPT_MESSAGE, p
        p = c.fetch("lost", 0, 0, version=11, max_wait_ms=0)[-1]
        assert p["error"] == 0
        offs = [r[0] for r in kwire.decode_batches(p["records"] or b"")]
        assert offs == list(range(10)), offs
        p = c.fetch("lost", 0, 15, version=11, max_wait_ms=0)[-1]
        assert p["error"] == 0
        recs = kwire.decode_batches(p["records"] or b"")
        assert [r[0] for r in recs] == list(range(15, 30))
        assert [r[2] for r in recs] == values[15:]
    # A client sees the records before the lost ones, then an error, never the lost values.
    cons = ck_consumer(mk.bootstrap)
    try:
        cons.assign([ck.TopicPartition("lost", 0, ck.OFFSET_BEGINNING)])
        got, errs = [], []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (len(got) >= 10 and errs):
            for m in cons.consume(num_messages=100, timeout=0.5):
                (errs if m.error() else got).append(m.error() or (m.offset(), m.value()))
        assert [o for o, _ in got] == list(range(10)), got
        assert [v for _, v in got] == values[:10]
        assert errs and any(e.code() == ck.KafkaError.INVALID_MSG for e in errs), errs
    finally:
        cons.close()

    # The marks survive a restart: refused before any pass has run.
    mk.stop()
    mk.start()
    j = integrity(mk)
    assert j["total"]["unrepairable_partitions"] == 1, j["total"]
    with mk.wire(leader) as c:
        deadline = time.monotonic() + 15
        while True:
            p = c.fetch("lost", 0, 10, version=11, max_wait_ms=0)[-1]
            if p["error"] != kwire.NOT_LEADER_OR_FOLLOWER or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # bounded: leadership settles after the restart
        assert p["error"] == kwire.CORRUPT_MESSAGE, p


# ---------------------------------------------------------------------------------------------
# minikora verify
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_verify_clean_and_damaged_data_dir(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, *ON_DEMAND, data_dir=data)
    leader = make_topic(mk, "checked", {"segment.bytes": "2048"})
    produce_batches(mk, "checked", leader, 12)
    wait_replicas_identical(data, "checked", 0, [1, 2, 3])
    mk.stop()

    r = verify(data)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 brokers, 1 partitions, 3 replicas, 36 batches" in r.stdout and "0 problems" in r.stdout, r.stdout
    assert not (data / "meta.db-shm").exists(), "verify must only read"

    seg, pos, base, last = find_batch(data, 2, "checked", 31)
    flip_byte(seg, pos + 70)
    before = {f: f.read_bytes() for f in replica_log_files(data, 2, "checked", 0)}
    r = verify(data)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "checked-0 on broker 2" in r.stdout and ("corrupt offsets %d..%d" % (base, last)) in r.stdout, r.stdout
    assert "1 problem" in r.stdout, r.stdout
    assert {f: f.read_bytes() for f in replica_log_files(data, 2, "checked", 0)} == before

    assert verify(tmp_path / "nowhere").returncode == 2
    r = subprocess.run([str(BIN), "verify"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "usage" in r.stderr


# ---------------------------------------------------------------------------------------------
# The durability audit
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_audit_records_log_start_changes_and_reports_a_broken_rule(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, *ON_DEMAND, "--set", "log.retention.check.interval.ms=200", data_dir=data)
    # Records an hour old under retention.ms=1000: retention deletes their segments at once.
    leader = make_topic(mk, "expiring", {"retention.ms": "1000", "segment.bytes": "1024"})
    old = int(time.time() * 1000) - 3600 * 1000
    ck_produce(mk.bootstrap, "expiring", [(0, None, b"old-%03d" % i, None) for i in range(40)],
               timestamps=[old + i for i in range(40)], **{"linger.ms": 0, "batch.num.messages": 1})
    keep_leader = make_topic(mk, "kept", {"segment.bytes": "1024"})
    produce_batches(mk, "kept", keep_leader, 8)

    def expired(j):
        rows = [r for r in j["audit"]["recent"] if r["kind"] == "log_start" and r["topic"] == "expiring"
                and (r["to"] or 0) > 0]
        return {r["broker"] for r in rows} == {1, 2, 3}
    j = wait_integrity(mk, expired, 30, "log start changes of every replica audited")
    assert j["total"]["audit_incidents"] == 0 and not j["incidents"], j["incidents"]
    assert any(r["kind"] == "segment_deleted" and r["topic"] == "expiring" for r in j["audit"]["recent"])
    mk.stop()

    db = sqlite3.connect(str(data / "meta.db"))
    try:
        rows = db.execute("SELECT broker, start_before, start_after, rule FROM audit WHERE kind = 'log_start'"
                          " AND topic = 'expiring' AND start_after > 0").fetchall()
        # the leader's start moves by retention; a follower's by its own retention, or by
        # following the leader's start (tiered topics: the leader alone deletes local segments)
        assert {r[0] for r in rows} == {1, 2, 3}, rows
        assert all(r[3] in ("retention", "leader log start") for r in rows), rows
        assert any(r[0] == leader and r[3] == "retention" for r in rows), rows
        deleted = db.execute("SELECT broker, base_offset, end_offset, largest_ts, retention_ms, rule FROM audit"
                             " WHERE kind = 'segment_deleted' AND topic = 'expiring'").fetchall()
        assert deleted and all(d[4] == 1000 and d[5] in ("retention.ms", "leader log start") and d[3] < old + 1000
                               for d in deleted), deleted
        assert any(d[0] == leader and d[5] == "retention.ms" for d in deleted), deleted
        assert db.execute("SELECT retention_ms FROM audit WHERE kind = 'retention' AND topic = 'expiring'"
                          ).fetchall() == [(1000,)]
        assert db.execute("SELECT count(*) FROM audit WHERE kind = 'incident'").fetchone() == (0,)
    finally:
        db.close()

    # While stopped, a log start moved by hand past offsets no retention deleted.
    (replica_dir(data, 2, "kept", 0) / "log-start-offset").write_text("7\n")
    mk.start()
    j = wait_integrity(mk, lambda j: j["total"]["audit_incidents"] >= 1, 20, "an incident")
    inc = j["incidents"][-1]
    assert (inc["kind"], inc["topic"], inc["partition"], inc["broker"]) == ("coverage", "kept", 0, 2), inc
    assert (inc["from"], inc["to"]) == (0, 6), inc
    assert broker_counts(j, 2)["audit_incidents"] == 1
    assert any(e["broker"] == 2 for e in events(mk, "integrity_incident"))
    assert metric(mk, "minikora_audit_incidents_total", broker="2") == 1
    # Nothing else broke a rule (the retention deletions were allowed).
    assert j["total"]["audit_incidents"] == 1, j["incidents"]
