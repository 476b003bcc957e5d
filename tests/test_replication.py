"""Replication (issue 4): RF=3 over the AZs of a cell, ISR, high watermark, acks=all and
min.insync.replicas, elections on crash, divergent-suffix truncation, preferred leader, fetch
from follower (KIP-392) and cross-AZ byte accounting.

Every test runs its own `minikora serve --control-stdin` on a fixed --data-dir under tmp_path
(so replica files can be compared) and drives broker lifecycle through the control lines
(`crash ID`, `start ID`, `az-down AZ`, ...), synchronising on their answers, never on sleeps.
Cluster state is read from Metadata (leader, replicas, ISR) with bounded polling.
"""

import itertools
import threading
import time

import confluent_kafka as ck
import pytest

import kwire
from clients import (RDK_LOG, check_partitions, ck_consume, ck_consumer, ck_create_topic,
                     ck_produce, ck_watermarks, expected_by_partition, make_records)
from repl_util import (broker_racks, isr_full, metadata, per_file_digests,
                       offset_for_leader_epoch, raw_fetch_all, raw_produce, replica_digest, summarize, wait_isr_full,
                       wait_metadata, wait_replicas_identical)

# while brokers are down, clients should retry connections quickly (librdkafka's defaults
# back off up to 10 s on a refused bootstrap connection)
# one-way cross-AZ delay for the tests that need followers to lag behind a leader: a produce
# followed at once by a crash (a few ms) must beat the replication round by far
SLOW_AZ_MS = 1500
SLOW_AZ = ("--set", "minikora.cross.az.latency.ms=%d" % SLOW_AZ_MS)
FAST_RECONNECT = {"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200}
NOT_ENOUGH_REPLICAS = 19
NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20


@pytest.fixture
def ctl(minikora, tmp_path):
    """Factory: ctl(*extra_args) -> a started Cluster(control=True) on tmp_path/dataN.  Every
    process is stopped with SIGTERM at teardown and must exit 0 (conftest's minikora)."""
    n = itertools.count()

    def make(*args):
        return minikora(*args, data_dir=tmp_path / ("data%d" % next(n)), control=True)
    return make


def create_rf3(mk, topic, partitions, min_isr=None, rf=3):
    cfg = {"min.insync.replicas": str(min_isr)} if min_isr else {}
    err = ck_create_topic(mk.bootstrap, topic, partitions, rf=rf, config=cfg)
    assert err is None, "create %s: %s" % (topic, err)
    parts = wait_metadata(mk, topic, lambda ps: len(ps) == partitions and isr_full(ps), 20,
                          "topic %s ready with full ISRs" % topic)
    racks = broker_racks(mk)
    for i, p in parts.items():
        assert len(p["replicas"]) == rf, summarize(parts)
        assert len({racks[b] for b in p["replicas"]}) == rf, \
            "partition %d: replicas %s not in distinct AZs (%s)" % (i, p["replicas"], racks)
    return parts


def watermarks(bootstrap, topic, partition, timeout=15):
    """ck_watermarks, retried (bounded) while a leader move is propagating."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ck_watermarks(bootstrap, topic, partition)
        except ck.KafkaException as e:
            if time.monotonic() >= deadline or e.args[0].code() not in (
                    ck.KafkaError.NOT_LEADER_FOR_PARTITION, ck.KafkaError.LEADER_NOT_AVAILABLE):
                raise
        time.sleep(0.05)  # bounded by `timeout`


def preferred_leading(parts):
    return isr_full(parts) and all(p["leader"] == p["replicas"][0] for p in parts.values())


def consume_to_hw(bootstrap, topic, partitions, timeout=60, **extra):
    """Read every partition from the beginning up to its high watermark (queried first).
    -> {p: [(offset, value)]}"""
    hws = {p: watermarks(bootstrap, topic, p)[1] for p in range(partitions)}
    c = ck_consumer(bootstrap, **extra)
    got = {p: [] for p in range(partitions)}
    try:
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        errs = []
        while any((got[p][-1][0] + 1 if got[p] else 0) < hws[p] for p in got):
            assert time.monotonic() < deadline, "consume of %s incomplete after %ds: %s of %s" % (
                topic, timeout, {p: len(v) for p, v in got.items()}, hws)
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    errs.append(m.error())
                    continue
                got[m.partition()].append((m.offset(), m.value()))
        assert not errs, "consume errors: %s" % errs[:5]
    finally:
        c.close()
    return got, hws


def assert_replica_logs_identical(mk, topic, parts, timeout=20):
    """Wait (bounded) until each partition's .log content is byte-identical on every replica;
    also compare per-file sha256 (same segments).  -> {partition: (sha256, bytes)}"""
    out = {}
    for i, p in sorted(parts.items()):
        ds = wait_replicas_identical(mk.data_dir, topic, i, p["replicas"], timeout)
        files = {b: per_file_digests(mk.data_dir, b, topic, i) for b in p["replicas"]}
        assert len({tuple(sorted(f.items())) for f in files.values()}) == 1, \
            "partition %d: per-segment digests differ: %s" % (i, files)
        d = next(iter(ds.values()))
        out[i] = (d[0], d[1])
    return out


# =============================================================================================
# 1. Durability under repeated leader crashes
# =============================================================================================
@pytest.mark.timeout(150)
def test_durability_acks_all_under_leader_crashes(ctl, topic_name):
    N, P, LATENCY_MS = 100_000, 6, 20
    CRASH_EVERY, DOWN_FOR, WINDOW = 10_000, 5_000, 4_000
    # a small cross-AZ delay keeps acks=all requests parked for a while, so that crashes hit
    # appended-but-unreplicated batches (retries, duplicates, truncation on return)
    mk = ctl("--set", "minikora.cross.az.latency.ms=%d" % LATENCY_MS)
    topic = topic_name()
    create_rf3(mk, topic, P, min_isr=2)

    acked = {}  # seq -> (partition, offset)
    failed = []

    def dr(err, msg):
        if err is not None:
            failed.append((msg.value(), err))
        else:
            acked[int(msg.value())] = (msg.partition(), msg.offset())

    prod = ck.Producer({
        "bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "acks": "all",
        "enable.idempotence": False, "max.in.flight.requests.per.connection": 1,
        "retries": 10_000_000, "retry.backoff.ms": 20, "message.timeout.ms": 60000,
        "request.timeout.ms": 15000, "linger.ms": 2, "queue.buffering.max.messages": 200000,
        "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200,
        "topic.metadata.refresh.interval.ms": 1000})
    crashes = []  # (at_acks, broker, partition)
    down = None   # (broker, start at acks)
    next_crash = CRASH_EVERY
    produced = 0
    t0 = time.monotonic()
    deadline = t0 + 100
    while len(acked) + len(failed) < N:
        assert time.monotonic() < deadline, (
            "only %d of %d acknowledged after %.0f s (%d failed); crashes %s; metadata %s"
            % (len(acked), N, time.monotonic() - t0, len(failed), crashes,
               summarize(metadata(mk, topic)[1])))
        while produced < N and produced - len(acked) - len(failed) < WINDOW:
            try:
                prod.produce(topic, value=b"%d" % produced, partition=produced % P, on_delivery=dr)
                produced += 1
            except BufferError:
                break
        prod.poll(0.01)
        n = len(acked)
        if down is not None and n >= down[1]:
            mk.start_broker(down[0])
            down = None
        elif down is None and n >= next_crash and next_crash < N:
            _, parts = metadata(mk, topic)
            if isr_full(parts):  # crash only a healthy partition set (else wait for the rejoin)
                victim_p = len(crashes) % P
                leader = parts[victim_p]["leader"]
                mk.crash(leader)
                crashes.append((n, leader, victim_p))
                down = (leader, n + DOWN_FOR)
                next_crash += CRASH_EVERY
    if down is not None:
        mk.start_broker(down[0])
    assert prod.flush(30) == 0
    produce_s = time.monotonic() - t0

    assert not failed, "%d records failed delivery, first: %r" % (len(failed), failed[:3])
    assert len(acked) == N
    assert len(crashes) >= 8, "only %d crashes happened: %s" % (len(crashes), crashes)

    # settle: every crashed broker back in the ISR and leading its preferred partitions again
    parts = wait_metadata(mk, topic, preferred_leading, 30, "ISRs full, preferred leaders back")
    got, hws = consume_to_hw(mk.bootstrap, topic, P)

    # Every acknowledged record is in the log at the offset it was acknowledged with; the log
    # is contiguous; nothing foreign; duplicates from retries allowed.  Per partition the first
    # occurrences are in produce order, but for one case that is the client's: librdkafka
    # without idempotence does not wait, when a partition's leader moves, for a request still
    # in flight at the old leader (it drains only when idempotent), so that request's records,
    # answered NOT_LEADER there, can be sent after newer ones the new leader already took.
    # Each leader change can so put one block late: one descent in the order, at most as many
    # as the partition's leader epoch counts elections.
    dups = 0
    consumed = 0
    late = 0
    for p in range(P):
        recs = got[p]
        consumed += len(recs)
        offs = [o for o, _ in recs]
        assert offs == list(range(len(offs))), "partition %d: offsets not 0..n-1 (gap?)" % p
        seqs = [int(v) for _, v in recs]
        assert all(s % P == p and 0 <= s < N for s in seqs), "partition %d: foreign record" % p
        seen, order = set(), []
        for s in seqs:
            if s in seen:
                dups += 1
            else:
                seen.add(s)
                order.append(s)
        bad = [(a, b) for a, b in zip(order, order[1:]) if a >= b]
        assert len(bad) <= parts[p]["leader_epoch"], (
            "partition %d: records out of order at %d places (%s), more than its %d leader "
            "changes explain" % (p, len(bad), bad[:5], parts[p]["leader_epoch"]))
        late += len(bad)
        for s in range(p, N, P):
            assert s in seen, "partition %d: acknowledged record %d missing (acked at %r)" % (
                p, s, acked.get(s))
    for s, (p, off) in acked.items():
        assert off < len(got[p]) and int(got[p][off][1]) == s, (
            "record %d acknowledged at %d/%d but the log holds %r there"
            % (s, p, off, got[p][off][1] if off < len(got[p]) else "nothing"))

    digests = assert_replica_logs_identical(mk, topic, parts)
    truncations = mk.stderr_text().count("truncates its divergent suffix")
    print("\n[durability] acked=%d consumed=%d duplicates=%d late blocks=%d crashes=%d (brokers %s) "
          "truncations=%d produce %.1fs, hw %s, replica logs identical (%d partitions)"
          % (len(acked), consumed, dups, late, len(crashes), [b for _, b, _ in crashes], truncations,
             produce_s, hws, len(digests)))


# =============================================================================================
# 2. One AZ down: produce and consume continue; the AZ comes back and rejoins the ISR
# =============================================================================================
@pytest.mark.timeout(60)
def test_az_outage_produce_consume_continue_and_rejoin(ctl, topic_name):
    P = 3
    mk = ctl()
    topic = topic_name()
    parts = create_rf3(mk, topic, P, min_isr=2)
    racks = broker_racks(mk)
    before = make_records("before", 3000, P)
    ck_produce(mk.bootstrap, topic, before)

    az = racks[parts[0]["leader"]]  # the AZ of a leader: its partitions need an election
    lost = {b for b, a in racks.items() if a == az}
    assert mk.control("az-down %s" % az) == "ok az-down %s" % az
    parts = wait_metadata(mk, topic, lambda ps: all(p["leader"] >= 0 for p in ps.values()), 10,
                          "leaders after az-down")
    for i, p in parts.items():
        assert p["leader"] not in lost, "p%d still led by a broker of %s: %s" % (i, az, p)
        assert sorted(p["isr"]) == sorted(set(p["replicas"]) - lost), \
            "p%d ISR after az-down: %s" % (i, p)

    during = make_records("during", 3000, P)
    ck_produce(mk.bootstrap, topic, during, **{"message.timeout.ms": 20000}, **FAST_RECONNECT)
    exp = expected_by_partition(before + during)
    check_partitions(exp, ck_consume(mk.bootstrap, topic, {p: len(v) for p, v in exp.items()},
                                     timeout=30, **FAST_RECONNECT), "during az-down %s" % az)

    assert mk.control("az-up %s" % az) == "ok az-up %s" % az
    parts = wait_isr_full(mk, topic, timeout=20)
    after = make_records("after", 600, P)
    ck_produce(mk.bootstrap, topic, after)
    exp = expected_by_partition(before + during + after)
    check_partitions(exp, ck_consume(mk.bootstrap, topic, {p: len(v) for p, v in exp.items()},
                                     timeout=30), "after az-up %s" % az)
    # the returned replicas hold the same log as the others
    assert_replica_logs_identical(mk, topic, parts)


# =============================================================================================
# 3. Two AZs down, min.insync.replicas=2: acks=all refused, acks=1 continues, nothing lost
# =============================================================================================
@pytest.mark.timeout(60)
def test_two_azs_down_not_enough_replicas(ctl, topic_name):
    P = 2
    mk = ctl()
    topic = topic_name()
    parts = create_rf3(mk, topic, P, min_isr=2)
    racks = broker_racks(mk)
    before = make_records("before", 1000, P)
    ck_produce(mk.bootstrap, topic, before)

    keep = racks[parts[0]["replicas"][1]]  # survive in a follower's AZ of p0
    gone = sorted({a for a in racks.values()} - {keep})
    for az in gone:
        mk.control("az-down %s" % az)
    survivor = [b for b in parts[0]["replicas"] if racks[b] == keep][0]
    parts = wait_metadata(mk, topic, lambda ps: all(p["leader"] == survivor for p in ps.values()),
                          10, "leadership on broker %d" % survivor)
    for i, p in parts.items():
        assert p["isr"] == [survivor], "p%d: %s" % (i, p)

    # raw Produce: acks=-1 refused before append, acks=1 appended
    err, _ = raw_produce(mk, survivor, topic, 0, [b"refused-%d" % i for i in range(3)], acks=-1)
    assert err == NOT_ENOUGH_REPLICAS, "acks=all with ISR 1 < min.insync 2: error %d" % err
    err, base = raw_produce(mk, survivor, topic, 0, [b"raw-%d" % i for i in range(3)], acks=1)
    assert err == 0, "acks=1 with one replica: error %d" % err
    assert base == len([r for r in before if r[0] == 0])

    # confluent-kafka, acks=all, no retries: NOT_ENOUGH_REPLICAS in the delivery report
    errs = []
    prod = ck.Producer({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "acks": "all",
                        "retries": 0, "enable.idempotence": False, "message.timeout.ms": 5000,
                        "linger.ms": 1, **FAST_RECONNECT})
    for i in range(10):
        prod.produce(topic, value=b"ck-refused-%d" % i, partition=i % P,
                     on_delivery=lambda err, msg: errs.append(err))
    assert prod.flush(15) == 0
    assert len(errs) == 10 and all(e is not None and e.code() == ck.KafkaError.NOT_ENOUGH_REPLICAS
                                   for e in errs), "acks=all deliveries: %s" % errs[:3]

    # acks=1 continues
    during = make_records("during", 1000, P)
    ck_produce(mk.bootstrap, topic, during, acks=1, **FAST_RECONNECT)

    for az in gone:
        mk.control("az-up %s" % az)
    parts = wait_isr_full(mk, topic, timeout=20)
    raw = [(0, None, b"raw-%d" % i, []) for i in range(3)]
    exp = expected_by_partition(before)
    exp[0] = exp[0] + [(k, v, h) for _, k, v, h in raw]
    for p, recs in expected_by_partition(during).items():
        exp[p] = exp[p] + recs
    got = ck_consume(mk.bootstrap, topic, {p: len(v) for p, v in exp.items()}, timeout=30)
    check_partitions(exp, got, "after az-up")
    for p in range(P):
        assert watermarks(mk.bootstrap, topic, p)[1] == len(exp[p]), "p%d: extra records" % p
    # acks=all works again
    ck_produce(mk.bootstrap, topic, make_records("again", 100, P))
    assert_replica_logs_identical(mk, topic, wait_isr_full(mk, topic))


@pytest.mark.timeout(60)
def test_isr_shrinks_while_waiting_not_enough_replicas_after_append(ctl, topic_name):
    """acks=all parked for a slow (cross-AZ) follower; the follower crashes so the ISR falls
    below min.insync.replicas: the answer is NOT_ENOUGH_REPLICAS_AFTER_APPEND."""
    mk = ctl(*SLOW_AZ)
    topic = topic_name()
    parts = create_rf3(mk, topic, 1, min_isr=2)
    leader, f1, f2 = parts[0]["leader"], *[b for b in parts[0]["replicas"]
                                           if b != parts[0]["leader"]]
    mk.crash(f2)
    wait_metadata(mk, topic, lambda ps: sorted(ps[0]["isr"]) == sorted([leader, f1]), 10,
                  "ISR without broker %d" % f2)
    with mk.wire(leader, timeout=20) as c:
        v = c.pick(kwire.PRODUCE, 3, 8)
        corr = c.next_corr()
        batch = kwire.record_batch([(None, b"parked-%d" % i, []) for i in range(3)])
        size0 = replica_digest(mk.data_dir, leader, topic, 0)[1]
        c.send(kwire.request(kwire.PRODUCE, v, corr,
                             kwire.produce_body(v, topic, 0, batch, acks=-1, timeout_ms=15000)))
        t0 = time.monotonic()
        # the leader has appended (its log file grew) and is waiting for f1's round
        while replica_digest(mk.data_dir, leader, topic, 0)[1] == size0:
            assert time.monotonic() - t0 < SLOW_AZ_MS / 2000, "the leader did not append"
            time.sleep(0.002)  # bounded by the assertion above
        t0 = time.monotonic()
        mk.crash(f1)  # the round to f1 is still about SLOW_AZ_MS away
        payload = c.recv_frame(timeout=15)
        took = time.monotonic() - t0
    r = kwire.Reader(payload)
    assert r.i32() == corr
    res = kwire.parse_produce(v, payload[r.pos:])
    assert res[0][2] == NOT_ENOUGH_REPLICAS_AFTER_APPEND, \
        "parked acks=all after the ISR fell to 1: error %d (after %.1fs)" % (res[0][2], took)
    assert took < SLOW_AZ_MS / 2000, "answer took %.1fs: it waited for the replication round" % took
    mk.start_broker(f1)
    mk.start_broker(f2)
    wait_isr_full(mk, topic, timeout=20)


# =============================================================================================
# 4. Divergence: a leader crashes with unreplicated records, returns, truncates, catches up
# =============================================================================================
@pytest.mark.timeout(60)
def test_divergent_suffix_truncated_and_logs_identical(ctl, topic_name):
    mk = ctl(*SLOW_AZ)
    topic = topic_name()
    parts = create_rf3(mk, topic, 1)
    old = parts[0]["leader"]
    assert old == parts[0]["replicas"][0]

    # a replicated base (acks=all waits for the cross-AZ rounds)
    err, base = raw_produce(mk, old, topic, 0, [b"base-%d" % i for i in range(10)], acks=-1)
    assert (err, base) == (0, 0)
    # 5 records acks=1 on the leader only, then crash it before the followers' round
    t0 = time.monotonic()
    err, base = raw_produce(mk, old, topic, 0, [b"lost-%d" % i for i in range(5)], acks=1)
    assert (err, base) == (0, 10)
    mk.crash(old)
    assert time.monotonic() - t0 < SLOW_AZ_MS / 2000, "crash too late to beat the replication round"

    parts = wait_metadata(mk, topic, lambda ps: ps[0]["leader"] not in (-1, old), 10,
                          "a new leader")
    new = parts[0]["leader"]
    # the same number of records, so only leader epochs (not log lengths) tell them apart
    err, base = raw_produce(mk, new, topic, 0, [b"kept-%d" % i for i in range(5)], acks=1)
    assert (err, base) == (0, 10), "new leader must not have the unreplicated suffix"
    assert replica_digest(mk.data_dir, old, topic, 0)[0] != replica_digest(
        mk.data_dir, new, topic, 0)[0]
    # the new leader's epoch cache: the old epoch ends where the new one starts (offset 10)
    base_epoch = raw_fetch_all(mk, new, topic, 0)[0][0][1]
    err, ep, end = offset_for_leader_epoch(mk, new, topic, 0, base_epoch)
    assert (err, ep, end) == (0, base_epoch, 10), "OffsetForLeaderEpoch(%d) on the new leader: %s" % (
        base_epoch, (err, ep, end))
    new_epoch = parts[0]["leader_epoch"]
    assert new_epoch > base_epoch, parts
    assert offset_for_leader_epoch(mk, new, topic, 0, new_epoch) == (0, new_epoch, 15)

    mk.start_broker(old)
    parts = wait_isr_full(mk, topic, timeout=20)
    digests = assert_replica_logs_identical(mk, topic, parts, timeout=20)
    log = mk.stderr_text()
    want = "replica on broker %d truncates its divergent suffix 10..15" % old
    assert want in log, "stderr lacks %r; truncation lines: %s" % (
        want, [l for l in log.splitlines() if "divergent" in l])

    # every replica serves the same records: base + kept, never the lost suffix
    expected = [b"base-%d" % i for i in range(10)] + [b"kept-%d" % i for i in range(5)]
    for b in parts[0]["replicas"]:
        recs, errs, prefs, hw = raw_fetch_all(mk, b, topic, 0)
        assert not errs and not prefs, (b, errs, prefs)
        assert [v for _, _, v in recs] == expected, "broker %d serves %r" % (b, recs)
        assert [o for o, _, _ in recs] == list(range(15))
        epochs = [e for _, e, _ in recs]
        assert epochs[10] > epochs[9], "kept records carry the new leader epoch: %s" % epochs
    # preferred leader comes back once it is in sync
    wait_metadata(mk, topic, lambda ps: ps[0]["leader"] == old, 15, "preferred leader %d" % old)
    print("\n[divergence] old leader %d, new leader %d, log sha256 %s (%d bytes)"
          % (old, new, digests[0][0][:16], digests[0][1]))


@pytest.mark.timeout(60)
def test_two_divergent_replicas_truncate_to_the_third(ctl, topic_name):
    """Two leaders in a row crash with unreplicated suffixes (epochs e and e+1); the third
    replica leads (e+2) and writes on; both returning replicas truncate and catch up."""
    mk = ctl(*SLOW_AZ)
    topic = topic_name()
    parts = create_rf3(mk, topic, 1)
    first = parts[0]["leader"]
    err, base = raw_produce(mk, first, topic, 0, [b"base-%d" % i for i in range(10)], acks=-1)
    assert (err, base) == (0, 0)

    t0 = time.monotonic()
    assert raw_produce(mk, first, topic, 0, [b"a-%d" % i for i in range(5)], acks=1) == (0, 10)
    mk.crash(first)
    assert time.monotonic() - t0 < SLOW_AZ_MS / 2000, "crash too late to beat the round"
    second = wait_metadata(mk, topic, lambda ps: ps[0]["leader"] not in (-1, first), 10,
                           "second leader")[0]["leader"]
    t0 = time.monotonic()
    assert raw_produce(mk, second, topic, 0, [b"b-%d" % i for i in range(3)], acks=1) == (0, 10)
    mk.crash(second)
    assert time.monotonic() - t0 < SLOW_AZ_MS / 2000, "crash too late to beat the round"
    third = wait_metadata(mk, topic, lambda ps: ps[0]["leader"] not in (-1, first, second), 10,
                          "third leader")[0]["leader"]
    assert raw_produce(mk, third, topic, 0, [b"c-%d" % i for i in range(4)], acks=1) == (0, 10)

    mk.start_broker(first)
    mk.start_broker(second)
    parts = wait_isr_full(mk, topic, timeout=20)
    assert_replica_logs_identical(mk, topic, parts, timeout=20)
    log = mk.stderr_text()
    for b, end in ((first, 15), (second, 13)):
        want = "replica on broker %d truncates its divergent suffix 10..%d" % (b, end)
        assert want in log, "stderr lacks %r; truncation lines: %s" % (
            want, [l for l in log.splitlines() if "divergent" in l])
    expected = [b"base-%d" % i for i in range(10)] + [b"c-%d" % i for i in range(4)]
    for b in parts[0]["replicas"]:
        recs, errs, prefs, _ = raw_fetch_all(mk, b, topic, 0)
        assert not errs and not prefs, (b, errs, prefs)
        assert [v for _, _, v in recs] == expected, "broker %d serves %r" % (b, recs)
        assert recs[10][1] >= recs[9][1] + 2, "epochs %s" % [e for _, e, _ in recs]


# =============================================================================================
# 5. Fetch from follower (KIP-392): cross-AZ client read bytes stay zero
# =============================================================================================
@pytest.mark.timeout(60)
def test_fetch_from_follower_keeps_client_reads_in_az(ctl, topic_name):
    mk = ctl()
    topic = topic_name()
    parts = create_rf3(mk, topic, 1)
    racks = broker_racks(mk)
    leader = parts[0]["leader"]
    follower = [b for b in parts[0]["replicas"] if b != leader][0]
    recs = make_records("ffr", 2000, 1)
    ck_produce(mk.bootstrap, topic, recs)
    wait_isr_full(mk, topic)
    s0 = mk.stats()
    assert s0["cross_az_replication_bytes"] > 0, "RF=3 over 3 AZs replicated nothing across: %s" % s0
    assert s0["cross_az_client_read_bytes"] == 0, s0
    # each of the 2 followers (both in other AZs) copied the leader's log once
    log_bytes = replica_digest(mk.data_dir, leader, topic, 0)[1]
    assert s0["cross_az_replication_bytes"] == 2 * log_bytes, (s0, log_bytes)
    exp = expected_by_partition(recs)

    # consumer in the leader's AZ: reads the leader, in-AZ
    got = ck_consume(mk.bootstrap, topic, {0: len(recs)}, timeout=30,
                     **{"client.rack": racks[leader]})
    check_partitions(exp, got, "client.rack=%s (leader's AZ)" % racks[leader])
    s1 = mk.stats()
    assert s1["cross_az_client_read_bytes"] == 0, "leader-AZ consumer counted cross-AZ: %s" % s1

    # the leader redirects a consumer from a follower's AZ (PreferredReadReplica, no records)
    _, errs, prefs, _ = raw_fetch_all(mk, leader, topic, 0, rack=racks[follower])
    assert prefs == [follower] and not errs, (prefs, errs)

    # consumer in a follower's AZ: redirected to the in-AZ follower, so still zero
    got = ck_consume(mk.bootstrap, topic, {0: len(recs)}, timeout=30,
                     **{"client.rack": racks[follower]})
    check_partitions(exp, got, "client.rack=%s (follower's AZ)" % racks[follower])
    s2 = mk.stats()
    assert s2["cross_az_client_read_bytes"] == 0, \
        "follower-AZ consumer read across AZs (not redirected?): %s" % s2

    # control: a rack-tagged read that really crosses AZs is counted (so zero above means
    # the consumer was redirected): fetch from the follower claiming the leader's AZ
    got_raw, errs, prefs, _ = raw_fetch_all(mk, follower, topic, 0, rack=racks[leader])
    assert not errs and not prefs and len(got_raw) == len(recs), (errs, prefs, len(got_raw))
    s3 = mk.stats()
    assert s3["cross_az_client_read_bytes"] > 0, "cross-AZ read not counted: %s" % s3
    # ... and a rack with no replica is served by the leader, counted too
    got_raw, errs, prefs, _ = raw_fetch_all(mk, leader, topic, 0, rack="az-nowhere")
    assert not errs and not prefs and len(got_raw) == len(recs), (errs, prefs, len(got_raw))
    s4 = mk.stats()
    assert s4["cross_az_client_read_bytes"] > s3["cross_az_client_read_bytes"], (s3, s4)
    print("\n[fetch-from-follower] leader %d (%s), follower %d (%s): stats %s -> %s -> %s"
          % (leader, racks[leader], follower, racks[follower], s0, s2, s4))


# =============================================================================================
# 6. Preferred leader restored after crash + start (and after a controlled stop)
# =============================================================================================
@pytest.mark.timeout(60)
def test_preferred_leader_restored(ctl, topic_name):
    P = 3
    mk = ctl()
    topic = topic_name()
    parts = create_rf3(mk, topic, P)
    pref = parts[0]["replicas"][0]
    assert parts[0]["leader"] == pref
    recs = make_records("a", 600, P)
    ck_produce(mk.bootstrap, topic, recs)

    for how in ("crash", "stop"):
        mk.control("%s %d" % (how, pref))
        # Metadata reflects the move at once
        _, parts = metadata(mk, topic)
        assert parts[0]["leader"] not in (-1, pref), "after %s %d: %s" % (how, pref, summarize(parts))
        assert pref not in parts[0]["isr"], summarize(parts)
        more = make_records("after-" + how, 300, P)
        ck_produce(mk.bootstrap, topic, more)
        recs += more
        mk.start_broker(pref)
        wait_metadata(mk, topic, lambda ps: all(p["leader"] == p["replicas"][0] and isr_full({0: p})
                                                for p in ps.values()),
                      15, "preferred leaders back after %s+start of %d" % (how, pref))
        exp = expected_by_partition(recs)
        check_partitions(exp, ck_consume(mk.bootstrap, topic, {p: len(v) for p, v in exp.items()},
                                         timeout=30), "after %s+start" % how)

    # a follower refuses Produce with NOT_LEADER_OR_FOLLOWER
    _, parts = metadata(mk, topic)
    follower = [b for b in parts[0]["replicas"] if b != parts[0]["leader"]][0]
    err, _ = raw_produce(mk, follower, topic, 0, [b"x"], acks=1)
    assert err == kwire.NOT_LEADER_OR_FOLLOWER, err
    # control errors: unknown broker, start of a running one, crash of a stopped one
    assert mk.control("crash 99", check=False).startswith("error crash 99")
    assert mk.control("start %d" % pref, check=False).startswith("error start %d" % pref)
    mk.crash(pref)
    assert mk.control("crash %d" % pref, check=False).startswith("error crash %d" % pref)
    mk.start_broker(pref)
    wait_metadata(mk, topic, preferred_leading, 15, "preferred leaders back")


# =============================================================================================
# 7. No unclean election: the last in-sync replica is the only one that may lead again
# =============================================================================================
@pytest.mark.timeout(60)
def test_offline_partition_waits_for_last_isr_member(ctl, topic_name):
    mk = ctl()
    topic = topic_name()
    parts = create_rf3(mk, topic, 1)
    leader = parts[0]["leader"]
    f1, f2 = [b for b in parts[0]["replicas"] if b != leader]
    first = make_records("first", 200, 1)
    ck_produce(mk.bootstrap, topic, first)
    mk.crash(f1)
    mk.crash(f2)
    _, parts = metadata(mk, topic)
    assert parts[0]["leader"] == leader and parts[0]["isr"] == [leader], summarize(parts)
    # min.insync.replicas=1: acks=all is acknowledged by the leader alone
    only = make_records("only-leader", 100, 1)
    ck_produce(mk.bootstrap, topic, only)
    mk.crash(leader)
    _, parts = metadata(mk, topic)
    assert parts[0]["leader"] == -1, "no replica is in sync: %s" % summarize(parts)
    mk.start_broker(f1)
    mk.start_broker(f2)
    # the stale replicas must not be elected (unclean.leader.election.enable=false): watch
    # several ISR ticks (200 ms each), bounded
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        _, parts = metadata(mk, topic)
        assert parts[0]["leader"] == -1, "unclean election of a stale replica: %s" % (
            summarize(parts))
        time.sleep(0.1)  # bounded by the 1.5 s window
    mk.start_broker(leader)
    parts = wait_metadata(mk, topic, preferred_leading, 15, "partition back with full ISR")
    exp = expected_by_partition(first + only)
    check_partitions(exp, ck_consume(mk.bootstrap, topic, {0: len(first + only)}, timeout=30),
                     "after the last ISR member returned")
    assert_replica_logs_identical(mk, topic, parts)


# =============================================================================================
# Large batches in steps (issue 11: no loop turn writes a whole 1 MB batch)
# =============================================================================================
@pytest.mark.timeout(120)
@pytest.mark.parametrize("acks", ["1", "all"])
def test_large_batches_written_in_steps(ctl, topic_name, acks):
    """Produce batches of about 1 MB (written in 128 KiB steps by the leader and by each
    follower) beside small produces to the same partitions (which void steps in between):
    every record is acknowledged and read back in order, the three replicas' logs are
    byte-identical, and all of it survives a restart."""
    mk = ctl()
    topic = topic_name()
    parts = create_rf3(mk, topic, 2)
    big = [(i % 2, b"big-%d" % i, (b"%08d" % i) * 125, []) for i in range(6000)]  # 1000 B values
    small = [(i % 2, b"small-%d" % i, b"s%d" % i, []) for i in range(300)]
    res = {}

    def produce_small():
        res["small"] = ck_produce(mk.bootstrap, topic, small, acks=acks, **{"linger.ms": 0})
    t = threading.Thread(target=produce_small)
    t.start()
    offs = ck_produce(mk.bootstrap, topic, big, acks=acks,
                      **{"linger.ms": 200, "batch.size": 1000000, "message.max.bytes": 1000000})
    t.join(60)
    assert not t.is_alive() and "small" in res
    assert sum(len(v) for v in offs.values()) == 6000
    got, hws = consume_to_hw(mk.bootstrap, topic, 2)
    assert hws == {0: 3150, 1: 3150}, hws
    for p in range(2):
        vals = [v for _, v in got[p]]
        assert [o for o, _ in got[p]] == list(range(3150))
        bigs = [v for v in vals if len(v) == 1000]
        assert bigs == [(b"%08d" % i) * 125 for i in range(p, 6000, 2)], "partition %d: big records out of order" % p
        assert [v for v in vals if len(v) != 1000] == [b"s%d" % i for i in range(p, 300, 2)]
    parts = wait_isr_full(mk, topic, timeout=20)
    digests = assert_replica_logs_identical(mk, topic, parts, timeout=20)
    assert "replica append on broker" not in mk.stderr_text(), "a replica append failed"
    mk.restart()
    got2, hws2 = consume_to_hw(mk.bootstrap, topic, 2)
    assert hws2 == hws and got2 == got, "the restart changed what is stored"
    print("\n[steps] acks=%s, %d records, log sha256 %s (%d bytes)" % (
        acks, 6300, digests[0][0][:16], digests[0][1]))
