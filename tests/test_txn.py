"""Idempotent producers and transactions (issue 5), against the real binary and real clients.

1. confluent-kafka and kafkajs transactional producers: commit and abort; read_committed sees
   exactly the committed records, read_uncommitted sees all; consume-transform-produce with
   offsets sent to the transaction (committed with it, dropped on abort).
2. An idempotent producer (acks=all) sends 100,000 numbered records to an RF=3 partition while
   its leader is crashed and restarted: every record exactly once, in order.
3. The transaction coordinator's broker crashes while a transaction is open; after it is back
   the producer aborts (or a new producer with the same id initialises): no partition is left
   with a hanging transaction (LSO == HW).  Same after a restart of the whole process.
4. Zombie fencing: a second producer with the same transactional.id fences the first.
5. transaction.timeout.ms: an open transaction is aborted and the LSO advances.
6. Raw protocol (kwire): InitProducerId, duplicates, sequence gaps, old epochs, epoch bump,
   DescribeProducers / ListTransactions / DescribeTransactions.
Beyond the issue's list (each names the Kafka behaviour it expects): a fenced or timed-out
producer's later Produce is refused and never holds the LSO; an abort while a partition is
offline completes once it is back; a refused partition answers base_offset -1; a duplicate
batch with acks=all is answered only once the original is replicated.

The cluster is `minikora serve --control-stdin` (cluster.Cluster(control=True)); broker crashes are
control lines, synchronised on their answers.  Waits are bounded and event-driven (partition
EOF, delivery reports, ListOffsets polls with a short bounded sleep).
"""

import json
import time

import confluent_kafka as ck
import pytest

import kwire
from cluster import LOG_DIR, Cluster
from conftest import shared_cluster
import txn_util as tu
from clients import RDK_LOG, ck_create_topic, ck_produce, node_available, run_node
from repl_util import isr_full, summarize, wait_isr_full, wait_metadata

FENCING = {ck.KafkaError._FENCED, 90, 47}  # _FENCED (librdkafka), PRODUCER_FENCED, INVALID_PRODUCER_EPOCH


@pytest.fixture(scope="module")
def module_ctl(request):
    with Cluster(name=request.module.__name__, control=True) as mk:
        yield mk


@pytest.fixture
def ctl(module_ctl, request):
    """The module's cluster; if an earlier test killed it, a fresh one.  After the test every
    broker must be up again (tests that crash one restart it) and the process alive."""
    yield from shared_cluster(module_ctl, request)
    for b in sorted(module_ctl.down):
        module_ctl.start_broker(b)


def make_topic(mk, name, partitions, rf=3, config=None):
    err = ck_create_topic(mk.bootstrap, name, partitions, rf=rf, config=config or {})
    assert err is None, "create %s: %s" % (name, err)
    return wait_metadata(mk, name, lambda ps: len(ps) == partitions and isr_full(ps), 20,
                         "topic %s ready with full ISRs" % name)


def by_partition(got):
    return {p: [v for _, _, v in recs] for p, recs in got.items()}


def check_read_committed_vs_uncommitted(mk, topic, P, committed, aborted):
    """committed / aborted: {p: [values in produce order]}.  read_committed sees exactly the
    committed values in order; read_uncommitted sees committed and aborted ones."""
    lh = tu.wait_lso_eq_hw(mk, topic, range(P), what="after commit/abort")
    rc = by_partition(tu.consume_to_end(mk.bootstrap, topic, range(P), "read_committed"))
    ru = by_partition(tu.consume_to_end(mk.bootstrap, topic, range(P), "read_uncommitted"))
    for p in range(P):
        assert rc[p] == committed.get(p, []), "read_committed p%d: %r, expected %r (LSO/HW %s)" % (
            p, rc[p][:10], committed.get(p, [])[:10], lh)
        assert sorted(ru[p]) == sorted(committed.get(p, []) + aborted.get(p, [])), \
            "read_uncommitted p%d: %d records, expected %d committed + %d aborted" % (
                p, len(ru[p]), len(committed.get(p, [])), len(aborted.get(p, [])))
    return lh


# =============================================================================================
# 1. commit / abort, read_committed vs read_uncommitted; consume-transform-produce
# =============================================================================================
@pytest.mark.timeout(40)
def test_ck_commit_and_abort(ctl, topic_name):
    P = 3
    topic = topic_name()
    make_topic(ctl, topic, P)
    tid = "ck-txn-" + topic
    prod = tu.txn_producer(ctl.bootstrap, tid)
    prod.init_transactions(15)

    def txn(tag, n, commit):
        prod.begin_transaction()
        items = [(i % P, None, b"%s-%d" % (tag, i)) for i in range(n)]
        errors, _ = tu.produce_flush(prod, topic, items)  # flushed: the records reach the broker
        assert not errors, errors[:3]
        (prod.commit_transaction if commit else prod.abort_transaction)(15)
        out = {}
        for p, _, v in items:
            out.setdefault(p, []).append(v)
        return out

    c1 = txn(b"c1", 30, True)
    a1 = txn(b"a1", 30, False)
    c2 = txn(b"c2", 12, True)
    committed = {p: c1.get(p, []) + c2.get(p, []) for p in range(P)}
    check_read_committed_vs_uncommitted(ctl, topic, P, committed, a1)

    # A raw read_committed Fetch lists the aborted transaction on every partition it touched.
    pid = None
    ld = tu.leaders(ctl, topic)
    for p in range(P):
        with ctl.wire(ld[p]) as c:
            f = c.fetch(topic, p, 0, version=11, max_wait_ms=0, min_bytes=0,
                        isolation=tu.READ_COMMITTED)[-1]
        assert f["error"] == 0 and f["last_stable_offset"] == f["high_watermark"], f
        hdrs = kwire.batch_headers(f["records"] or b"")
        data = [h for h in hdrs
                if h["attrs"] & kwire.ATTR_TRANSACTIONAL and not h["attrs"] & kwire.ATTR_CONTROL]
        ctrl = [h for h in hdrs if h["attrs"] & kwire.ATTR_CONTROL]
        assert len(ctrl) == 3, "p%d: expected 3 markers (commit, abort, commit): %s" % (p, hdrs)
        pid = data[0]["pid"]
        # the aborted records start right after the first commit marker
        first_aborted = ctrl[0]["base"] + 1
        assert f["aborted"] == [(pid, first_aborted)], \
            "p%d: aborted transactions %r, expected [(%d, %d)]" % (p, f["aborted"], pid, first_aborted)
    prod.flush(5)


@pytest.mark.timeout(40)
def test_kafkajs_commit_and_abort(ctl, topic_name):
    if not node_available():
        pytest.skip("node / kafkajs not installed (cd tests/js && npm install)")
    P = 2
    topic = topic_name()
    make_topic(ctl, topic, P)

    def msgs(tag, n):
        return [{"partition": i % P, "value": "%s-%d" % (tag, i)} for i in range(n)]
    plan = [{"action": "commit", "topic": topic, "messages": msgs("c1", 20)},
            {"action": "abort", "topic": topic, "messages": msgs("a1", 20)},
            {"action": "commit", "topic": topic, "messages": msgs("c2", 6)}]
    res = run_node("txn_produce.js", "--bootstrap", ctl.bootstrap, "--tid", "js-" + topic,
                   "--plan", json.dumps(plan), timeout=60)
    assert res.get("ok"), "kafkajs transactions failed: %s\n%s" % (res.get("error"), res["_stderr"])

    def split(ms):
        out = {}
        for m in ms:
            out.setdefault(m["partition"], []).append(m["value"].encode())
        return out
    c1, a1, c2 = split(msgs("c1", 20)), split(msgs("a1", 20)), split(msgs("c2", 6))
    committed = {p: c1.get(p, []) + c2.get(p, []) for p in range(P)}
    check_read_committed_vs_uncommitted(ctl, topic, P, committed, a1)


@pytest.mark.timeout(40)
def test_ck_consume_transform_produce(ctl, topic_name):
    P = 3
    tin, tout = topic_name("in"), topic_name("out")
    make_topic(ctl, tin, P)
    make_topic(ctl, tout, P)
    N = 30
    ck_produce(ctl.bootstrap, tin, [(i % P, None, b"r%d" % i, []) for i in range(N)])
    group = "ctp-" + tin
    cons = ck.Consumer({"bootstrap.servers": ctl.bootstrap, "logger": RDK_LOG, "group.id": group,
                        "enable.auto.commit": False, "auto.offset.reset": "earliest",
                        "isolation.level": "read_committed", "fetch.wait.max.ms": 50})
    prod = tu.txn_producer(ctl.bootstrap, "ctp-" + tin)
    try:
        prod.init_transactions(15)
        cons.assign([ck.TopicPartition(tin, p, ck.OFFSET_BEGINNING) for p in range(P)])

        def round_(n, commit):
            got = []
            deadline = time.monotonic() + 15
            while len(got) < n:
                assert time.monotonic() < deadline, "consumed %d of %d" % (len(got), n)
                for m in cons.consume(num_messages=n - len(got), timeout=0.2):
                    assert not m.error(), m.error()
                    got.append(m)
            prod.begin_transaction()
            errors, _ = tu.produce_flush(prod, tout, [(m.partition(), None, m.value().upper())
                                                      for m in got])
            assert not errors, errors[:3]
            pos = cons.position(cons.assignment())
            prod.send_offsets_to_transaction(pos, cons.consumer_group_metadata(), 15)
            (prod.commit_transaction if commit else prod.abort_transaction)(15)
            return got, {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in pos}

        got1, pos1 = round_(12, True)
        assert tu.committed_offsets(ctl.bootstrap, group, tin, range(P)) == pos1, \
            "after commit the group's offsets must be those sent to the transaction"
        got2, pos2 = round_(N - 12, False)
        assert pos2 != pos1
        assert tu.committed_offsets(ctl.bootstrap, group, tin, range(P)) == pos1, \
            "after abort the group's offsets must be unchanged (%s); aborted ones were %s" % (
                pos1, pos2)
    finally:
        cons.close()
    committed = {}
    for m in got1:
        committed.setdefault(m.partition(), []).append(m.value().upper())
    aborted = {}
    for m in got2:
        aborted.setdefault(m.partition(), []).append(m.value().upper())
    check_read_committed_vs_uncommitted(ctl, tout, P, committed, aborted)


@pytest.mark.timeout(50)
def test_kafkajs_consume_transform_produce(ctl, topic_name):
    if not node_available():
        pytest.skip("node / kafkajs not installed (cd tests/js && npm install)")
    P = 2
    tin, tout = topic_name("in"), topic_name("out")
    make_topic(ctl, tin, P)
    make_topic(ctl, tout, P)
    N = 16
    ck_produce(ctl.bootstrap, tin, [(i % P, None, b"r%d" % i, []) for i in range(N)])
    group = "jsctp-" + tin
    plan = [{"action": "consume", "group": group, "topic": tin, "count": N},
            {"action": "commit", "topic": tout, "messages": "transform",
             "offsets": {"group": group, "topic": tin, "partitions": "consumed"}},
            {"action": "abort", "topic": tout, "messages": [{"partition": 0, "value": "ABORTED"}],
             "offsets": {"group": group, "topic": tin, "partitions": {"0": 1, "1": 1}}}]
    res = run_node("txn_produce.js", "--bootstrap", ctl.bootstrap, "--tid", "jsctp-" + tin,
                   "--plan", json.dumps(plan), timeout=60)
    assert res.get("ok"), "kafkajs consume-transform-produce failed: %s\n%s" % (
        res.get("error"), res["_stderr"])
    sent = {int(p): int(o) for p, o in res["steps"][0]["next"].items()}
    assert sent == {p: N // P for p in range(P)}, sent
    assert tu.committed_offsets(ctl.bootstrap, group, tin, range(P)) == sent, \
        "group offsets after commit + abort must be those of the committed transaction"
    committed = {p: [b"R%d" % i for i in range(N) if i % P == p] for p in range(P)}
    check_read_committed_vs_uncommitted(ctl, tout, P, committed, {0: [b"ABORTED"]})


# =============================================================================================
# 2. Idempotent producer, 100,000 records, leader crashed and restarted
# =============================================================================================
@pytest.fixture
def latency_ctl(minikora):
    """A cluster of its own with a cross-AZ delay: acks=all requests stay parked for a while,
    so a crash hits batches that were appended but not yet replicated or acknowledged."""
    return minikora("--set", "minikora.cross.az.latency.ms=%d" % LATENCY_MS, control=True)


LATENCY_MS = 10


@pytest.mark.timeout(75)
def test_idempotent_exactly_once_under_leader_crash(latency_ctl, topic_name, idempotence=True):
    ctl = latency_ctl
    N, WINDOW = 100_000, 5000
    topic = topic_name()
    make_topic(ctl, topic, 1, config={"min.insync.replicas": "2"})
    acked, failed = [0], []
    stats = [None]

    def on_stats(js):
        stats[0] = js

    def dr(err, msg):
        if err is not None:
            failed.append((msg.value(), err))
        else:
            acked[0] += 1

    prod = ck.Producer({
        "bootstrap.servers": ctl.bootstrap, "logger": RDK_LOG, "acks": "all",
        "enable.idempotence": idempotence, "max.in.flight.requests.per.connection": 5,
        "statistics.interval.ms": 200, "stats_cb": on_stats,
        "message.timeout.ms": 60000, "request.timeout.ms": 10000, "linger.ms": 2,
        "batch.num.messages": 500, "queue.buffering.max.messages": 200000,
        "retry.backoff.ms": 20, "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 200,
        "topic.metadata.refresh.interval.ms": 1000})
    # crash the leader at 20 % acknowledged, start it at 45 %; then crash the new leader at
    # 60 % and start it at 80 %
    plan = [(N * 20 // 100, "crash"), (N * 45 // 100, "start"), (N * 60 // 100, "crash"),
            (N * 80 // 100, "start")]
    events = []
    victim = None
    produced = 0
    t0 = time.monotonic()
    deadline = t0 + 55
    while acked[0] + len(failed) < N:
        assert time.monotonic() < deadline, "only %d of %d acknowledged after %.0f s; events %s; %s" % (
            acked[0], N, time.monotonic() - t0, events,
            summarize(wait_metadata(ctl, topic, lambda ps: True, 5, "metadata")))
        while produced < N and produced - acked[0] - len(failed) < WINDOW:
            try:
                prod.produce(topic, value=b"%d" % produced, partition=0, on_delivery=dr)
                produced += 1
            except BufferError:
                break
        prod.poll(0.005)
        if plan and acked[0] >= plan[0][0]:
            at, what = plan.pop(0)
            if what == "crash":
                victim = tu.leaders(ctl, topic)[0]
                ctl.crash(victim)
            else:
                ctl.start_broker(victim)
            events.append((what, victim, acked[0], produced))
    assert prod.flush(30) == 0
    produce_s = time.monotonic() - t0
    prod.poll(0.5)  # one more statistics callback
    retries = sum(b.get("txretries", 0) for b in json.loads(stats[0])["brokers"].values()) \
        if stats[0] else None
    assert not failed, "%d records failed delivery, first: %r" % (len(failed), failed[:3])
    wait_isr_full(ctl, topic, timeout=20)

    got = tu.consume_to_end(ctl.bootstrap, topic, [0], "read_uncommitted", timeout=40)[0]
    vals = [int(v) for _, _, v in got]
    distinct = set(vals)
    dups = len(vals) - len(distinct)
    gaps = N - len(distinct & set(range(N)))
    foreign = len(distinct - set(range(N)))
    out_of_order = sum(1 for a, b in zip(vals, vals[1:]) if b <= a)
    counts = {"records_sent": N, "records_in_log": len(vals), "duplicates": dups, "gaps": gaps,
              "foreign": foreign, "out_of_order": out_of_order, "events": events,
              "produce_seconds": round(produce_s, 1), "hw": got[-1][0] + 1 if got else 0,
              "request_retries": retries, "cross_az_latency_ms": LATENCY_MS}
    (LOG_DIR / "txn_idempotence_counts.json").write_text(json.dumps(counts) + "\n")
    print("\nidempotence counts: %s" % json.dumps(counts))
    assert [e[0] for e in events] == ["crash", "start", "crash", "start"], events
    assert (dups, gaps, foreign, out_of_order) == (0, 0, 0, 0), counts
    assert vals == list(range(N)), counts


# =============================================================================================
# 3. Coordinator crash while a transaction is open
# =============================================================================================
@pytest.mark.timeout(40)
@pytest.mark.parametrize("finish", ["abort_after_restart", "init_after_restart", "abort_while_down"])
def test_coordinator_crash_no_hanging_transaction(ctl, topic_name, finish):
    P = 3
    topic = topic_name()
    make_topic(ctl, topic, P)
    ck_produce(ctl.bootstrap, topic, [(p, None, b"before", []) for p in range(P)])
    tid = "coord-" + topic
    coord = tu.txn_coordinator(ctl, tid)
    prod = tu.txn_producer(ctl.bootstrap, tid, **{"transaction.timeout.ms": 60000})
    prod.init_transactions(15)
    prod.begin_transaction()
    errors, _ = tu.produce_flush(prod, topic, [(i % P, None, b"open-%d" % i) for i in range(9)])
    assert not errors
    lh = tu.lso_hw(ctl, topic, range(P))
    assert all(lso < hw for lso, hw in lh.values()), "the open transaction must hold the LSO: %s" % lh

    ctl.crash(coord)
    moved = tu.txn_coordinator(ctl, tid)
    assert moved != coord, "coordinator still %d after its crash" % coord
    if finish == "abort_while_down":
        prod.abort_transaction(20)
    ctl.start_broker(coord)
    wait_isr_full(ctl, topic, timeout=20)
    if finish == "abort_after_restart":
        prod.abort_transaction(20)
    elif finish == "init_after_restart":
        prod2 = tu.txn_producer(ctl.bootstrap, tid)
        prod2.init_transactions(20)
        with pytest.raises(ck.KafkaException) as ei:
            prod.commit_transaction(10)
        assert ei.value.args[0].code() in FENCING, ei.value.args[0]
    tu.wait_lso_eq_hw(ctl, topic, range(P), timeout=10, what="after %s" % finish)
    got = tu.consume_to_end(ctl.bootstrap, topic, range(P), "read_committed")
    assert by_partition(got) == {p: [b"before"] for p in range(P)}, by_partition(got)


@pytest.mark.timeout(45)
def test_process_restart_with_open_transaction(tmp_path, topic_name, request):
    """The whole process stops (SIGTERM) with a transaction open and starts again from its data
    directory: the coordinator state is recovered from SQLite, the producer state from the logs;
    a new producer with the same transactional.id aborts it and the LSO reaches the HW."""
    mk = Cluster(data_dir=tmp_path / "data", name=request.node.name, control=True)
    mk.start()
    try:
        P = 2
        topic = topic_name()
        make_topic(mk, topic, P)
        tid = "restart-" + topic
        prod = tu.txn_producer(mk.bootstrap, tid)
        prod.init_transactions(15)
        prod.begin_transaction()
        errors, _ = tu.produce_flush(prod, topic, [(i % P, None, b"open-%d" % i) for i in range(6)])
        assert not errors
        lh = tu.lso_hw(mk, topic, range(P))
        assert all(lso < hw for lso, hw in lh.values()), lh
        del prod  # the old client just goes away with the cluster
        mk.restart()
        wait_isr_full(mk, topic, timeout=20)
        lh = tu.lso_hw(mk, topic, range(P))
        assert all(lso < hw for lso, hw in lh.values()), \
            "after the restart the transaction is still open, the LSO must be held: %s" % lh
        with mk.wire(tu.txn_coordinator(mk, tid)) as c:
            d = c.describe_transactions([tid])[tid]
        assert d["error"] == 0 and d["state"] == "Ongoing" and len(d["partitions"]) == P, d
        prod2 = tu.txn_producer(mk.bootstrap, tid)
        prod2.init_transactions(20)
        tu.wait_lso_eq_hw(mk, topic, range(P), timeout=10, what="after restart + init")
        prod2.begin_transaction()
        errors, _ = tu.produce_flush(prod2, topic, [(p, None, b"new-%d" % p) for p in range(P)])
        assert not errors
        prod2.commit_transaction(15)
        tu.wait_lso_eq_hw(mk, topic, range(P), timeout=10, what="after the new commit")
        got = by_partition(tu.consume_to_end(mk.bootstrap, topic, range(P), "read_committed"))
        assert got == {p: [b"new-%d" % p] for p in range(P)}, got
    finally:
        mk.stop()


# =============================================================================================
# 4. Zombie fencing
# =============================================================================================
@pytest.mark.timeout(30)
def test_zombie_commit_is_fenced(ctl, topic_name):
    topic = topic_name()
    make_topic(ctl, topic, 1)
    tid = "zombie-" + topic
    p1 = tu.txn_producer(ctl.bootstrap, tid)
    p1.init_transactions(15)
    p1.begin_transaction()
    errors, _ = tu.produce_flush(p1, topic, [(0, None, b"zombie-1")])
    assert not errors
    p2 = tu.txn_producer(ctl.bootstrap, tid)
    p2.init_transactions(15)
    with pytest.raises(ck.KafkaException) as ei:
        p1.commit_transaction(10)
    assert ei.value.args[0].code() in FENCING, ei.value.args[0]
    p2.begin_transaction()
    errors, _ = tu.produce_flush(p2, topic, [(0, None, b"new-1")])
    assert not errors
    p2.commit_transaction(15)
    tu.wait_lso_eq_hw(ctl, topic, [0])
    got = by_partition(tu.consume_to_end(ctl.bootstrap, topic, [0], "read_committed"))
    assert got == {0: [b"new-1"]}, got


@pytest.mark.timeout(30)
def test_zombie_produce_after_fencing_is_refused(ctl, topic_name):
    """After the second init_transactions, the first producer's Produce to a partition it had
    already added is refused (Kafka writes the abort markers with the bumped epoch, so the
    partition fences the old one); its records never become visible and never hold the LSO."""
    topic = topic_name()
    make_topic(ctl, topic, 1)
    tid = "zombie2-" + topic
    p1 = tu.txn_producer(ctl.bootstrap, tid)
    p1.init_transactions(15)
    p1.begin_transaction()
    errors, _ = tu.produce_flush(p1, topic, [(0, None, b"zombie-1")])
    assert not errors
    p2 = tu.txn_producer(ctl.bootstrap, tid)
    p2.init_transactions(15)
    errors, acked = tu.produce_flush(p1, topic, [(0, None, b"zombie-2")], timeout=15)
    lh_after_zombie = tu.lso_hw(ctl, topic, [0])
    p2.begin_transaction()
    errors2, _ = tu.produce_flush(p2, topic, [(0, None, b"new-1")])
    assert not errors2
    p2.commit_transaction(15)
    got = by_partition(tu.consume_to_end(ctl.bootstrap, topic, [0], "read_committed"))
    assert acked == {} and errors and errors[0][1].code() in FENCING, (
        "zombie Produce with the old epoch after fencing was accepted (acked %s, errors %s); "
        "LSO/HW then %s; read_committed now sees %s"
        % (acked, [(v, e.name()) for v, e in errors], lh_after_zombie, got))
    assert got == {0: [b"new-1"]}, got


# =============================================================================================
# 5. Transaction timeout
# =============================================================================================
@pytest.mark.timeout(30)
def test_transaction_timeout_aborts_and_lso_advances(ctl, topic_name):
    topic = topic_name()
    make_topic(ctl, topic, 1)
    tid = "timeout-" + topic
    slow = tu.txn_producer(ctl.bootstrap, tid, **{"transaction.timeout.ms": 2000,
                                                  "message.timeout.ms": 2000,
                                                  "socket.timeout.ms": 2000})
    slow.init_transactions(15)
    slow.begin_transaction()
    errors, _ = tu.produce_flush(slow, topic, [(0, None, b"left-open")])
    assert not errors
    t_open = time.monotonic()
    ck_produce(ctl.bootstrap, topic, [(0, None, b"after-%d" % i, []) for i in range(5)],
               **{"enable.idempotence": True})
    lso, hw = tu.lso_hw(ctl, topic, [0])[0]
    assert lso == 0 and hw == 6, (lso, hw)
    # the read_committed consumer gets the later records once the transaction is aborted
    got = tu.consume_to_end(ctl.bootstrap, topic, [0], "read_committed", timeout=8,
                            min_counts={0: 5})
    waited = time.monotonic() - t_open
    assert by_partition(got) == {0: [b"after-%d" % i for i in range(5)]}, by_partition(got)
    assert waited < 5.5, "transaction aborted only %.1f s after it was opened" % waited
    tu.wait_lso_eq_hw(ctl, topic, [0], timeout=2)
    with ctl.wire(tu.txn_coordinator(ctl, tid)) as c:
        d = c.describe_transactions([tid])[tid]
    assert d["error"] == 0 and d["state"] == "CompleteAbort" and d["epoch"] >= 1, d
    # the producer that let it time out cannot commit it
    with pytest.raises(ck.KafkaException) as ei:
        slow.commit_transaction(10)
    assert ei.value.args[0].code() in FENCING | {48, ck.KafkaError._STATE}, ei.value.args[0]


@pytest.mark.timeout(30)
def test_timed_out_producer_cannot_hold_lso(ctl, topic_name):
    """After the coordinator aborted a timed-out transaction, the producer (still believing its
    transaction open, partition already added) produces once more to that partition: Kafka's
    abort markers carry the bumped epoch, so the partition refuses it; it must never open a
    new, unended transaction that holds the LSO."""
    topic = topic_name()
    make_topic(ctl, topic, 1)
    tid = "timeout2-" + topic
    slow = tu.txn_producer(ctl.bootstrap, tid, **{"transaction.timeout.ms": 2000,
                                                  "message.timeout.ms": 2000,
                                                  "socket.timeout.ms": 2000})
    slow.init_transactions(15)
    slow.begin_transaction()
    errors, _ = tu.produce_flush(slow, topic, [(0, None, b"left-open")])
    assert not errors
    tu.wait_lso_eq_hw(ctl, topic, [0], timeout=6, what="transaction timeout")
    errors, acked = tu.produce_flush(slow, topic, [(0, None, b"late")], timeout=10)
    lh = tu.lso_hw(ctl, topic, [0])
    assert not acked and errors and errors[0][1].code() in FENCING, (
        "Produce with the timed-out epoch was accepted (acked %s, errors %s); {p: (LSO, HW)} = %s"
        % (acked, [(v, e.name()) for v, e in errors], lh))
    tu.wait_lso_eq_hw(ctl, topic, [0], timeout=3, what="after the late produce")


@pytest.mark.timeout(30)
def test_abort_while_partition_offline_completes_when_back(ctl, topic_name):
    """EndTxn(abort) while one partition of the transaction has no leader (RF=1, its broker
    crashed): Kafka keeps the transaction in PrepareAbort and writes the marker once the
    partition is back.  No partition may be left with a hanging transaction."""
    topic = topic_name()
    make_topic(ctl, topic, 2, rf=1)
    ld = tu.leaders(ctl, topic)
    tid = "offline-" + topic
    coord = tu.txn_coordinator(ctl, tid)
    # the partition whose broker we crash must not be the coordinator's
    victim_p = next((p for p in (0, 1) if ld[p] != coord), None)
    if victim_p is None:
        pytest.skip("both partitions on the coordinator's broker")
    victim = ld[victim_p]
    prod = tu.txn_producer(ctl.bootstrap, tid)
    prod.init_transactions(15)
    prod.begin_transaction()
    errors, _ = tu.produce_flush(prod, topic, [(p, None, b"open-%d" % p) for p in (0, 1)])
    assert not errors
    ctl.crash(victim)
    abort_err = None
    try:
        prod.abort_transaction(8)
    except ck.KafkaException as e:  # Kafka: retriable, completes once the partition is back
        abort_err = e.args[0]
    ctl.start_broker(victim)
    wait_metadata(ctl, topic, lambda ps: all(p["leader"] > 0 for p in ps.values()), 20,
                  "partitions back")
    if abort_err is not None and abort_err.retriable():
        prod.abort_transaction(15)
    tu.wait_lso_eq_hw(ctl, topic, [0, 1], timeout=4,
                      what="abort while p%d was offline (abort answer: %s)" % (victim_p, abort_err))


# =============================================================================================
# 6. Raw protocol
# =============================================================================================
@pytest.mark.timeout(30)
def test_raw_idempotence(ctl, topic_name):
    topic = topic_name()
    make_topic(ctl, topic, 1)
    leader = tu.leaders(ctl, topic)[0]
    with ctl.wire(leader) as c:
        for v in (0, 1, 2, 4):
            err, pid0, ep0 = c.init_producer_id(None, version=v)
            assert err == 0 and pid0 >= 0 and ep0 == 0, (v, err, pid0, ep0)
        err, pid, epoch = c.init_producer_id(None)
        assert err == 0 and pid >= 0 and epoch == 0 and pid != pid0, (err, pid, epoch)

        def hw():
            return tu.list_offsets(c, topic, [0], tu.READ_UNCOMMITTED)[0][1]

        b0 = tu.idem_batch([b"a", b"b", b"c"], pid, epoch, 0)
        assert c.produce_one(topic, 0, b0, version=8) == (0, 0)
        assert c.produce_one(topic, 0, tu.idem_batch([b"d"], pid, epoch, 3), version=8) == (0, 3)
        assert hw() == 4
        # duplicates (the latest batch and an older one) get their original offsets
        assert c.produce_one(topic, 0, tu.idem_batch([b"d"], pid, epoch, 3), version=8) == (0, 3)
        assert c.produce_one(topic, 0, b0, version=8) == (0, 0)
        assert hw() == 4, "a duplicate batch was appended again"
        # a sequence gap
        err, _ = c.produce_one(topic, 0, tu.idem_batch([b"x"], pid, epoch, 6), version=8)
        assert err == kwire.OUT_OF_ORDER_SEQUENCE_NUMBER, err
        assert hw() == 4
        # epoch bump (KIP-360): same producer id, epoch + 1, sequences restart at 0
        err, pid2, epoch2 = c.init_producer_id(None, pid=pid, epoch=epoch)
        assert (err, pid2, epoch2) == (0, pid, epoch + 1)
        err, _ = c.produce_one(topic, 0, tu.idem_batch([b"y"], pid, epoch2, 5), version=8)
        assert err == kwire.OUT_OF_ORDER_SEQUENCE_NUMBER, \
            "new epoch must start at sequence 0: %d" % err
        assert c.produce_one(topic, 0, tu.idem_batch([b"e"], pid, epoch2, 0), version=8) == (0, 4)
        # the older epoch is now refused
        err, _ = c.produce_one(topic, 0, tu.idem_batch([b"z"], pid, epoch, 4), version=8)
        assert err == kwire.INVALID_PRODUCER_EPOCH, err
        assert hw() == 5
        dp = c.describe_producers(topic, [0])
        assert dp[0][0] == 0, dp
        mine = [s for s in dp[0][1] if s["pid"] == pid]
        assert len(mine) == 1 and mine[0]["epoch"] == epoch2 and mine[0]["last_seq"] == 0 \
            and mine[0]["txn_start"] == -1, dp
        # read back: five records, each once
        f = c.fetch(topic, 0, 0, version=11, max_wait_ms=0, min_bytes=0,
                    isolation=tu.READ_UNCOMMITTED)[-1]
        hdrs = kwire.batch_headers(f["records"])
        assert [(h["base"], h["count"], h["seq"], h["epoch"]) for h in hdrs] == [
            (0, 3, 0, epoch), (3, 1, 3, epoch), (4, 1, 0, epoch2)], hdrs
    # DescribeProducers to a follower: NOT_LEADER_OR_FOLLOWER
    follower = next(b for b in range(1, 7) if b != leader)
    with ctl.wire(follower) as c:
        assert c.describe_producers(topic, [0])[0][0] in (6,), "follower answered"


@pytest.mark.timeout(15)
def test_raw_error_answers_base_offset_minus_one(ctl, topic_name):
    """Kafka answers a refused partition with base_offset -1 (PartitionResponse(error))."""
    topic = topic_name()
    make_topic(ctl, topic, 1)
    with ctl.wire(tu.leaders(ctl, topic)[0]) as c:
        _, pid, epoch = c.init_producer_id(None)
        assert c.produce_one(topic, 0, tu.idem_batch([b"a"], pid, epoch, 0), version=8) == (0, 0)
        assert c.produce_one(topic, 0, tu.idem_batch([b"b"], pid, epoch, 7), version=8) == (
            kwire.OUT_OF_ORDER_SEQUENCE_NUMBER, -1)


@pytest.mark.timeout(30)
def test_raw_describe_and_list_transactions(ctl, topic_name):
    P = 2
    topic = topic_name()
    make_topic(ctl, topic, P)
    tid = "desc-" + topic
    coord = tu.txn_coordinator(ctl, tid)
    prod = tu.txn_producer(ctl.bootstrap, tid, **{"transaction.timeout.ms": 45000})
    prod.init_transactions(15)
    prod.begin_transaction()
    errors, acked = tu.produce_flush(prod, topic, [(p, None, b"v%d" % p) for p in range(P)])
    assert not errors
    # an unknown id that this same broker coordinates (the counter last: a counter in front
    # moves the Java hash in strides that missed one broker in all 200 for 0.6% of ids)
    with ctl.wire() as c:
        unknown = next(u for u in ("%s-no-such-%d" % (tid, i) for i in range(200))
                       if c.find_coordinator(u, key_type=1, version=1)[:2] == (0, coord))
    with ctl.wire(coord) as c:
        d = c.describe_transactions([tid, unknown])
        st = d[tid]
        assert st["error"] == 0 and st["state"] == "Ongoing", st
        assert st["timeout_ms"] == 45000 and st["pid"] >= 0 and st["epoch"] >= 0, st
        assert st["partitions"] == {(topic, p) for p in range(P)}, st
        assert abs(st["start_ms"] - time.time() * 1000) < 60000, st
        assert d[unknown]["error"] == kwire.TRANSACTIONAL_ID_NOT_FOUND, d
        err, lst = c.list_transactions()
        assert err == 0 and (tid, st["pid"], "Ongoing") in lst, lst
        err, lst = c.list_transactions(states=["Ongoing"], pids=[st["pid"]])
        assert err == 0 and lst == [(tid, st["pid"], "Ongoing")], lst
        err, lst = c.list_transactions(states=["CompleteCommit"], pids=[st["pid"]])
        assert err == 0 and lst == [], lst
    other = next(b for b in range(1, 7) if b != coord)
    with ctl.wire(other) as c:
        d = c.describe_transactions([tid])
        assert d[tid]["error"] == kwire.NOT_COORDINATOR, d
        err, lst = c.list_transactions()
        assert err == 0 and tid not in [x[0] for x in lst], lst
    ld = tu.leaders(ctl, topic)
    for p in range(P):
        with ctl.wire(ld[p]) as c:
            dp = c.describe_producers(topic, [p])[p]
        mine = [s for s in dp[1] if s["pid"] == st["pid"]]
        assert dp[0] == 0 and len(mine) == 1 and mine[0]["txn_start"] == acked[b"v%d" % p][1], dp
    prod.commit_transaction(15)
    with ctl.wire(coord) as c:
        st = c.describe_transactions([tid])[tid]
        assert st["state"] == "CompleteCommit" and st["partitions"] == set(), st
        err, lst = c.list_transactions(states=["Ongoing"])
        assert tid not in [x[0] for x in lst], lst
    for p in range(P):
        with ctl.wire(ld[p]) as c:
            dp = c.describe_producers(topic, [p])[p]
        mine = [s for s in dp[1] if s["pid"] == st["pid"]]
        assert len(mine) == 1 and mine[0]["txn_start"] == -1, dp


@pytest.fixture
def slow_repl_ctl(minikora):
    return minikora("--set", "minikora.cross.az.latency.ms=1500", control=True)


@pytest.mark.timeout(30)
def test_raw_duplicate_with_acks_all_waits_for_replication(slow_repl_ctl, topic_name):
    """A retried batch (same producer id/epoch/sequence) that is a duplicate of one appended
    but not yet replicated must, with acks=all, be answered only once the original is
    committed (Kafka parks it like the original: requiredOffset = its last offset + 1).
    Otherwise the client takes it as acknowledged and a leader crash loses it."""
    mk = slow_repl_ctl
    topic = topic_name()
    make_topic(mk, topic, 1, config={"min.insync.replicas": "2"})
    leader = tu.leaders(mk, topic)[0]
    c1, c2, c3 = mk.wire(leader), mk.wire(leader), mk.wire(leader)
    try:
        _, pid, epoch = c3.init_producer_id(None)
        batch = tu.idem_batch([b"precious"], pid, epoch, 0)
        # the original, parked (acks=all)
        c1.send(kwire.request(kwire.PRODUCE, 8, 4242, kwire.produce_body(8, topic, 0, batch)))
        deadline = time.monotonic() + 5
        while not c3.describe_producers(topic, [0])[0][1]:  # appended on the leader
            assert time.monotonic() < deadline, "the original batch was never appended"
            time.sleep(0.005)  # bounded
        t0 = time.monotonic()
        c2.sock.settimeout(0.3)
        try:
            answered = c2.produce_one(topic, 0, batch, version=8)
        except OSError:
            answered = None  # parked like the original: what Kafka does
        took = time.monotonic() - t0
        hw = tu.list_offsets(c3, topic, [0], tu.READ_UNCOMMITTED)[0][1]
        if answered is not None and answered[0] == 0 and hw < 1:
            mk.crash(leader)
            mk.start_broker(leader)
            wait_isr_full(mk, topic, timeout=20)
            after = tu.lso_hw(mk, topic, [0])[0][1]
            raise AssertionError(
                "duplicate with acks=all answered %r after %.3f s while the high watermark was "
                "%d (original not replicated); after a leader crash the partition holds %d "
                "records: an acknowledged record was lost" % (answered, took, hw, after))
    finally:
        for c in (c1, c2, c3):
            c.close()

