"""Log compaction (issue 15): cleanup.policy=compact and compact,delete with real clients.

A 3-broker cluster (rf 3) on a --data-dir keeps a compacted topic with small segments and a low
min.cleanable.dirty.ratio.  Keys are updated many times and some deleted (tombstones); the test
waits for the cleaner through GET /v1/topics/{name} (the partition's "cleaner" object: the
leader's cleaned offset) and /metrics, never by sleeping, then reads the partition from the
start with confluent-kafka, kafka-python and kcat: one record per key, the latest, at its
original offset, offsets increasing (with gaps), tombstones until delete.retention.ms and then
gone.  Every replica's own files hold the same latest value per key (replicas compact on their
own), the scrubber and the durability audit find nothing, a restart keeps it all, and
`minikora verify` agrees.  Keyless records are refused (INVALID_RECORD), and so is tiered storage
for a compacted topic.
"""

import http.client
import json
import shutil
import subprocess
import threading
import time
from urllib.parse import urlsplit

import confluent_kafka as ck
import pytest

import kwire
from cluster import BIN
from clients import KCAT, ck_admin, ck_consumer, ck_create_topic, ck_produce, kcat, kp_servers
from repl_util import replica_log_files, wait_isr_full

CLUSTER = ("--brokers", "3", "--azs", "3",
           "--set", "minikora.scrub.interval.ms=600000",
           "--set", "minikora.scrub.rate.bytes.per.sec=50000000")
KEYS = 40
ROUNDS = 6
DELETED = {3, 11, 27}


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


def cleaner(mk, topic):
    part = admin(mk, "GET", "/v1/topics/" + topic)["topic"]["partition_details"][0]
    return part.get("cleaner"), part


def wait_for(pred, timeout, what, step=None):
    """Poll pred() (calling step() between polls, e.g. to produce a record that rolls a
    segment) until it returns a true value; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.0f s" % (what, timeout))
        if step:
            step()
        time.sleep(0.1)  # bounded by `timeout`


def metric(mk, name):
    for line in admin(mk, "GET", "/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def produce_history(bootstrap, topic):
    """KEYS keys, ROUNDS values each, then tombstones for DELETED; returns
    {key: (offset, value or None)} of the latest record per key."""
    records, keys = [], []
    for r in range(ROUNDS):
        for k in range(KEYS):
            key = b"key-%03d" % k
            records.append((0, key, b"value-%03d-round-%d" % (k, r) + b"." * 40, []))
            keys.append(key)
    for k in sorted(DELETED):
        records.append((0, b"key-%03d" % k, None, []))
    offsets = ck_produce(bootstrap, topic, records)[0]
    latest = {}
    for (_, key, value, _), off in zip(records, offsets):
        latest[key] = (off, value)
    return latest


def consume_ck(bootstrap, topic, end):
    """confluent-kafka from the start up to offset end (exclusive): [(offset, key, value)]."""
    c = ck_consumer(bootstrap)
    got = []
    try:
        c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not got or got[-1][0] < end - 1):
            for m in c.consume(num_messages=1000, timeout=0.5):
                assert not m.error(), m.error()
                got.append((m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return got


def consume_kp(bootstrap, topic, end):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=kp_servers(bootstrap), group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=100, request_timeout_ms=30000)
    got = []
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and c.position(tp) < end:
            for msgs in c.poll(timeout_ms=500, max_records=10000).values():
                got.extend((m.offset, m.key, m.value) for m in msgs)
    finally:
        c.close()
    return got


def consume_kcat(bootstrap, topic):
    r = kcat("-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
             "-f", "%o|%k|%S\n")
    out = []
    for line in r.stdout.decode().splitlines():
        off, key, size = line.split("|")
        out.append((int(off), key.encode(), int(size)))
    return out


def check_view(got, latest, filler, what, tombstones=True):
    """got: [(offset, key, value)] from the start: the latest value of every key once, at its
    original offset, offsets increasing; the deleted keys as tombstones (or absent)."""
    offs = [o for o, _, _ in got]
    assert offs == sorted(set(offs)), "%s: offsets not increasing: %r" % (what, offs[:40])
    by_key = {}
    for off, key, value in got:
        if key.startswith(b"filler"):
            continue
        assert key not in by_key, "%s: key %r twice (offsets %d and %d)" % (what, key, by_key[key][0], off)
        by_key[key] = (off, value)
    for key, (off, value) in latest.items():
        if value is None and not tombstones:
            assert key not in by_key, "%s: tombstone of %r still there" % (what, key)
            continue
        assert by_key.get(key) == (off, value), "%s: %r is %r, want %r" % (what, key, by_key.get(key), (off, value))
    assert len(by_key) == len([k for k, (o, v) in latest.items() if v is not None or tombstones])
    assert len(got) < len(latest) * ROUNDS, "%s: nothing was compacted" % what
    return by_key


def replica_records(data, broker, topic):
    recs = []
    for f in replica_log_files(data, broker, topic, 0):
        recs.extend(kwire.decode_records(f.read_bytes()))
    return recs


def replica_view(data, broker, topic):
    """The latest (offset, value) per key in a replica's own segment files."""
    recs = []
    for f in replica_log_files(data, broker, topic, 0):
        recs.extend(kwire.decode_records(f.read_bytes()))
    offs = [o for o, _, _ in recs]
    assert offs == sorted(set(offs)), "broker %d: offsets not increasing" % broker
    view = {}
    for off, key, value in recs:
        view[key] = (off, value)
    return view


class Reader(threading.Thread):
    """Reads the partition from the start again and again while cleanings run, and checks that
    every read is a consistent view: offsets increasing, each key's rounds increasing, and every
    key that was not deleted present (a cleaning never hides the latest value)."""

    def __init__(self, bootstrap, topic, latest):
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.latest = bootstrap, topic, latest
        self.stop = threading.Event()
        self.passes, self.problems = 0, []

    def run(self):
        try:
            while not self.stop.is_set():
                got = consume_ck(self.bootstrap, self.topic, max(o for o, _ in self.latest.values()) + 1)
                offs = [o for o, _, _ in got]
                if offs != sorted(set(offs)):
                    self.problems.append("offsets not increasing")
                rounds = {}
                for _, k, v in got:
                    if k.startswith(b"filler") or v is None:
                        rounds.setdefault(k, -1)
                        continue
                    r = int(v.split(b"-round-")[1].split(b".")[0])
                    if r < rounds.get(k, -1):
                        self.problems.append("%r went back to round %d" % (k, r))
                    rounds[k] = r
                missing = [k for k, (o, v) in self.latest.items() if v is not None and k not in rounds]
                if missing:
                    self.problems.append("keys missing from a read: %r" % missing[:5])
                self.passes += 1
        except Exception as e:  # reported by the test
            self.problems.append(repr(e))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_compacted_topic_keeps_latest_value_per_key(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, data_dir=data)
    topic = "compacted"
    assert ck_create_topic(mk.bootstrap, topic, 1, 3, config={
        "cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "4000",
        "min.compaction.lag.ms": "0"}) is None
    wait_isr_full(mk, topic)
    latest = produce_history(mk.bootstrap, topic)
    last = max(o for o, _ in latest.values())

    # Filler records roll the segments that hold the history (segment.ms, segment.bytes) and
    # the cleaner compacts everything below the high watermark, sealed, on every replica.
    filler = iter(range(10 ** 6))

    def roll():
        ck_produce(mk.bootstrap, topic, [(0, b"filler-%d" % (next(filler) % 3), b"f" * 200, [])])

    reader = Reader(mk.bootstrap, topic, latest)  # consumers see a consistent view throughout
    reader.start()

    def cleaned():
        c, part = cleaner(mk, topic)
        return c and c["cleaned_offset"] > last and c["runs"] >= 1 and c
    c = wait_for(cleaned, 60, "the leader's cleaner past offset %d" % last, step=roll)
    assert c["tombstone_horizon_ms"] is not None, c
    runs = metric(mk, "minikora_log_cleaner_runs_total")
    assert runs and runs >= 1
    assert metric(mk, "minikora_log_cleaner_removed_records_total") > 0
    assert metric(mk, "kafka_log_logcleaner_cleaner_recopy_percent") is not None
    if shutil.which("promtool"):
        r = subprocess.run(["promtool", "check", "metrics"], input=admin(mk, "GET", "/metrics").encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()

    _, part = cleaner(mk, topic)
    end = part["high_watermark"]
    assert part["log_start_offset"] == 0, "compaction never moves the log start"
    got = consume_ck(mk.bootstrap, topic, end)
    check_view(got, latest, filler, "confluent-kafka")
    gaps = sum(1 for a, b in zip(got, got[1:]) if b[0] != a[0] + 1)
    assert gaps > 0, "a compacted log has offset gaps"
    print("consumed %d records up to offset %d (%d produced), %d gaps; cleaner %s" % (
        len(got), end, KEYS * ROUNDS + len(DELETED), gaps, c))
    check_view(consume_kp(mk.bootstrap, topic, end), latest, filler, "kafka-python")
    kc = consume_kcat(mk.bootstrap, topic)
    # (filler records may be compacted further meanwhile: the history is what must agree)
    assert [(o, k) for o, k, _ in kc if not k.startswith(b"filler")] == \
        [(o, k) for o, k, _ in got if not k.startswith(b"filler")], "kcat sees another log"
    assert all(size == -1 for o, k, size in kc if int(k.split(b"-")[1]) in DELETED and not k.startswith(b"filler")
               ) if kc else True

    # Every replica compacts its own log: the same latest value per key everywhere.
    wait_for(lambda: all(replica_view(data, b, topic).get(k) == v for b in (1, 2, 3) for k, v in latest.items()),
             60, "every replica compacted to the same view", step=roll)
    history = [r for r in replica_records(data, 1, topic) if not r[1].startswith(b"filler")]
    wait_for(lambda: all(len([r for r in replica_records(data, b, topic) if not r[1].startswith(b"filler")])
                         <= KEYS for b in (1, 2, 3)), 60, "every replica compacted its own log", step=roll)
    assert history

    # The scrubber compares replicas only where none is compacted: nothing to report; the
    # audit saw no offset leave the log.
    before = admin(mk, "GET", "/v1/integrity")["scrubber"]["passes"]
    r = admin(mk, "POST", "/v1/integrity/scrub", status=202)
    wait_for(lambda: admin(mk, "GET", "/v1/integrity")["scrubber"]["passes"] > before, 30, "a scrub pass")
    j = admin(mk, "GET", "/v1/integrity")
    assert j["total"]["corruptions_found"] == 0 and j["total"]["divergences"] == 0, j["total"]
    assert j["total"]["audit_incidents"] == 0, j["incidents"]
    assert r is not None

    # Tombstones go once delete.retention.ms has passed since the cleaning that kept them.
    def tombstones_gone():
        c, _ = cleaner(mk, topic)
        return c["tombstone_horizon_ms"] is None and c
    wait_for(tombstones_gone, 60, "tombstones removed after delete.retention.ms", step=roll)
    _, part = cleaner(mk, topic)
    view = check_view(consume_ck(mk.bootstrap, topic, part["high_watermark"]), latest, filler,
                      "after delete.retention.ms", tombstones=False)
    reader.stop.set()
    reader.join(60)
    assert not reader.problems, reader.problems[:5]
    assert reader.passes >= 2, "the reader made %d passes" % reader.passes
    print("consistent reads during cleaning: %d" % reader.passes)

    # A restart keeps the compacted log and the cleaner's checkpoint.
    cleaned_offset = cleaner(mk, topic)[0]["cleaned_offset"]
    mk.stop()
    r = subprocess.run([str(BIN), "verify", "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    mk.start()
    wait_isr_full(mk, topic, timeout=30)
    c, part = cleaner(mk, topic)
    assert c["cleaned_offset"] >= cleaned_offset, c
    again = check_view(consume_ck(mk.bootstrap, topic, part["high_watermark"]), latest, filler, "after a restart",
                       tombstones=False)
    assert {k: v for k, v in again.items()} == {k: v for k, v in view.items()}


@pytest.mark.timeout(90)
def test_keyless_records_and_tiering_refused(minikora):
    mk = minikora("--brokers", "3", "--azs", "3")
    topic = "compacted-keys"
    assert ck_create_topic(mk.bootstrap, topic, 1, 3, config={"cleanup.policy": "compact,delete"}) is None
    wait_isr_full(mk, topic)
    # a record without a key: INVALID_RECORD, as Kafka answers
    p = ck.Producer({"bootstrap.servers": mk.bootstrap, "acks": "all", "message.timeout.ms": 20000,
                     "retries": 0})
    errs = []
    p.produce(topic, value=b"no key", on_delivery=lambda e, m: errs.append(e))
    assert p.flush(30) == 0  # a batch of its own: a bad record fails its whole batch, as in Kafka
    p.produce(topic, key=b"k", value=b"keyed", on_delivery=lambda e, m: errs.append(e))
    assert p.flush(30) == 0
    assert errs[0] is not None and errs[0].code() == ck.KafkaError.INVALID_RECORD, errs
    assert errs[1] is None, errs
    # the same through kafka-python
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError
    kp = KafkaProducer(bootstrap_servers=kp_servers(mk.bootstrap), acks="all", retries=0)
    try:
        with pytest.raises(KPError) as ei:
            kp.send(topic, value=b"no key").get(timeout=30)
        # kafka-python 2.0 predates error 87 and calls it UnknownError: refused all the same
        assert "InvalidRecord" in type(ei.value).__name__ or "Unknown" in type(ei.value).__name__, ei.value
    finally:
        kp.close(timeout=10)
    # kcat produces keyless too: refused
    r = kcat("-b", mk.bootstrap, "-P", "-t", topic, "-p", "0", input=b"no key\n", check=False)
    assert r.returncode != 0 or b"INVALID_RECORD" in r.stderr or b"nvalid record" in r.stderr, r.stderr
    # a delete topic accepts keyless records
    assert ck_create_topic(mk.bootstrap, "plain-keys", 1, 3) is None
    ck_produce(mk.bootstrap, "plain-keys", [(0, None, b"no key", [])])

    # tiered storage and compaction do not go together (Kafka refuses it)
    err = ck_create_topic(mk.bootstrap, "compacted-tiered", 1, 3,
                          config={"cleanup.policy": "compact", "remote.storage.enable": "true"})
    assert err is not None and err.code() == ck.KafkaError.INVALID_CONFIG, err
    admin_client = ck_admin(mk.bootstrap)
    res = admin_client.alter_configs([ck.admin.ConfigResource(
        "topic", topic, set_config={"cleanup.policy": "compact,delete", "remote.storage.enable": "true"})])
    with pytest.raises(ck.KafkaException) as ei:
        list(res.values())[0].result(timeout=30)
    assert ei.value.args[0].code() == ck.KafkaError.INVALID_CONFIG, ei.value
    assert KCAT


@pytest.mark.timeout(120)
def test_compaction_removes_aborted_transactions(minikora):
    """Transactions on a compacted topic: the cleaner removes the data of an aborted
    transaction (even read_uncommitted consumers no longer see it), keeps committed data
    compacted by key, and keeps the markers; read_committed and read_uncommitted agree."""
    import txn_util as tu
    mk = minikora("--brokers", "3", "--azs", "3")
    topic = "compacted-txn"
    assert ck_create_topic(mk.bootstrap, topic, 1, 3, config={
        "cleanup.policy": "compact", "segment.bytes": "2048", "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01"}) is None
    wait_isr_full(mk, topic)
    prod = tu.txn_producer(mk.bootstrap, "compact-txn")
    prod.init_transactions(15)

    def txn(items, commit):
        prod.begin_transaction()
        errors, acked = tu.produce_flush(prod, topic, [(0, k, v) for k, v in items])
        assert not errors, errors[:3]
        (prod.commit_transaction if commit else prod.abort_transaction)(15)
        return acked

    txn([(b"a%d" % i, b"c1-a%d" % i) for i in range(10)], True)
    txn([(b"a%d" % i, b"aborted-a%d" % i) for i in range(10)] + [(b"b%d" % i, b"aborted-b%d" % i)
                                                                 for i in range(5)], False)
    acked = txn([(b"a%d" % i, b"c3-a%d" % i) for i in range(5)], True)
    last = max(o for _, o in acked.values()) + 1  # its marker

    filler = iter(range(10 ** 6))

    def roll():
        ck_produce(mk.bootstrap, topic, [(0, b"filler-%d" % (next(filler) % 3), b"f" * 300, [])])

    wait_for(lambda: (cleaner(mk, topic)[0] or {}).get("cleaned_offset", 0) > last, 60,
             "the cleaner past the transactions", step=roll)
    end = cleaner(mk, topic)[1]["high_watermark"]
    want = {b"a%d" % i: (b"c3-a%d" % i if i < 5 else b"c1-a%d" % i) for i in range(10)}
    for iso in ("read_uncommitted", "read_committed"):
        c = ck_consumer(mk.bootstrap, **{"isolation.level": iso})
        got = []
        try:
            c.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (not got or got[-1][0] < end - 1):
                for m in c.consume(num_messages=1000, timeout=0.5):
                    assert not m.error(), m.error()
                    got.append((m.offset(), m.key(), m.value()))
        finally:
            c.close()
        seen = {k: v for _, k, v in got if not k.startswith(b"filler")}
        assert not [v for _, _, v in got if v.startswith(b"aborted")], "%s: aborted data still there" % iso
        assert seen == want, "%s: %r" % (iso, seen)
        assert len([1 for _, k, _ in got if not k.startswith(b"filler")]) == 10, iso


@pytest.mark.timeout(180)
def test_follower_catches_up_from_a_compacted_leader(minikora, tmp_path):
    """A follower that was down while its leader compacted copies the compacted batches, gaps
    and all (replication appends across offset gaps), ends with the same latest value per key,
    and the scrubber finds nothing to report."""
    from repl_util import metadata
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, data_dir=data, control=True)
    topic = "compacted-catchup"
    assert ck_create_topic(mk.bootstrap, topic, 1, 3, config={
        "cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "500",
        "min.cleanable.dirty.ratio": "0.01"}) is None
    wait_isr_full(mk, topic)
    _, parts = metadata(mk, topic)
    leader = parts[0]["leader"]
    follower = next(b for b in parts[0]["replicas"] if b != leader)
    mk.crash(follower)
    latest = produce_history(mk.bootstrap, topic)
    last = max(o for o, _ in latest.values())
    filler = iter(range(10 ** 6))

    def roll():
        ck_produce(mk.bootstrap, topic, [(0, b"filler-%d" % (next(filler) % 3), b"f" * 200, [])])

    wait_for(lambda: (cleaner(mk, topic)[0] or {}).get("cleaned_offset", 0) > last, 60,
             "the leader's cleaner past offset %d" % last, step=roll)
    mk.start_broker(follower)
    wait_isr_full(mk, topic, timeout=60)
    wait_for(lambda: all(replica_view(data, follower, topic).get(k) == v for k, v in latest.items()), 60,
             "the follower caught up")
    offs = [o for o, k, _ in replica_records(data, follower, topic) if not k.startswith(b"filler")]
    assert len(offs) < KEYS * ROUNDS and any(b != a + 1 for a, b in zip(offs, offs[1:])), \
        "the follower holds compacted batches (gaps): %r" % offs[:40]
    before = admin(mk, "GET", "/v1/integrity")["scrubber"]["passes"]
    admin(mk, "POST", "/v1/integrity/scrub", status=202)
    wait_for(lambda: admin(mk, "GET", "/v1/integrity")["scrubber"]["passes"] > before, 30, "a scrub pass")
    j = admin(mk, "GET", "/v1/integrity")
    assert j["total"]["corruptions_found"] == 0 and j["total"]["divergences"] == 0, j["total"]
    assert j["total"]["audit_incidents"] == 0, j["incidents"]
