"""Helpers for the idempotence / transactions tests (tests/test_txn.py, issue 5).

* The wire side is kwire's (kwire.Conn has InitProducerId, DescribeProducers, ListTransactions,
  DescribeTransactions, FindCoordinator, Produce, Fetch; kwire has the batch decoders and the
  error codes); here: idem_batch() (kwire.record_batch with producer id, epoch, sequence) and
  list_offsets() as {partition: (error, offset)} with an isolation level.
* lso_hw(): per partition (LSO, HW) = ListOffsets latest with read_committed / read_uncommitted,
  asked of the partition's leader; wait_lso_eq_hw() waits (bounded) until no partition has a
  hanging transaction.
* confluent-kafka helpers: transactional producers, a consumer that reads every partition to
  its end (partition EOF = HW for read_uncommitted, LSO for read_committed).

Every wait is bounded; metadata/offset polls sleep a little between attempts (bounded).
"""

import time
import uuid

import confluent_kafka as ck

import kwire
from clients import RDK_LOG

from repl_util import leaders

READ_UNCOMMITTED = 0
READ_COMMITTED = 1


# ---------------------------------------------------------------------------------------------
# FindCoordinator (transaction key)
# ---------------------------------------------------------------------------------------------
def txn_coordinator(mk, tid, timeout=15):
    """Broker id coordinating transactional id `tid` (bounded retry while it moves)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            with mk.wire() as c:
                err, node = c.find_coordinator(tid, key_type=1, version=1)[:2]
            if err == 0 and node >= 1:
                return node
            last = (err, node)
        except (OSError, kwire.Closed, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("FindCoordinator(%s, txn): %r" % (tid, last))
        time.sleep(0.05)  # bounded by `timeout`


# ---------------------------------------------------------------------------------------------
# Idempotent / transactional record batches
# ---------------------------------------------------------------------------------------------
def idem_batch(values, pid, epoch, base_seq, transactional=False, base_timestamp=None):
    """One uncompressed v2 batch of `values` (bytes) with producer id/epoch/base sequence."""
    return kwire.record_batch([(None, v, []) for v in values], base_timestamp=base_timestamp,
                              attributes=kwire.ATTR_TRANSACTIONAL if transactional else 0,
                              producer_id=pid, producer_epoch=epoch, base_sequence=base_seq)


# ---------------------------------------------------------------------------------------------
# ListOffsets with an isolation level
# ---------------------------------------------------------------------------------------------
def list_offsets(c, topic, partitions, isolation, ts=kwire.LATEST):
    """ListOffsets v5 -> {partition: (error, offset)}."""
    res = c.list_offsets(topic, [(p, ts) for p in partitions], isolation=isolation, version=5)
    return {p: (err, off) for _, p, err, _, off in res}


def lso_hw(mk, topic, partitions, timeout=15):
    """{p: (lso, hw)}: ListOffsets latest read_committed / read_uncommitted from each leader.
    Retries (bounded) while leadership moves."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            out = {}
            ld = leaders(mk, topic)
            for p in partitions:
                if ld[p] < 1 or ld[p] in mk.down:
                    raise AssertionError("partition %d has no live leader (%d)" % (p, ld[p]))
                with mk.wire(ld[p]) as c:
                    rc = list_offsets(c, topic, [p], READ_COMMITTED)[p]
                    ru = list_offsets(c, topic, [p], READ_UNCOMMITTED)[p]
                if rc[0] or ru[0]:
                    raise AssertionError("ListOffsets p%d errors %d/%d" % (p, rc[0], ru[0]))
                out[p] = (rc[1], ru[1])
            return out
        except (OSError, kwire.Closed, ValueError, AssertionError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("LSO/HW of %s not readable within %.0f s: %s"
                                 % (topic, timeout, last))
        time.sleep(0.05)  # bounded by `timeout`


def wait_lso_eq_hw(mk, topic, partitions, timeout=10, what=""):
    """Bounded wait until LSO == HW on every partition (no open/hanging transaction)."""
    deadline = time.monotonic() + timeout
    while True:
        v = lso_hw(mk, topic, partitions)
        if all(lso == hw for lso, hw in v.values()):
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("%s: hanging transaction on %s after %.0f s: {p: (LSO, HW)} = %s"
                                 % (what, topic, timeout, v))
        time.sleep(0.05)  # bounded by `timeout`


# ---------------------------------------------------------------------------------------------
# confluent-kafka
# ---------------------------------------------------------------------------------------------
def txn_producer(bootstrap, tid, **extra):
    conf = {"bootstrap.servers": bootstrap, "logger": RDK_LOG, "transactional.id": tid,
            "linger.ms": 5, "message.timeout.ms": 30000, "transaction.timeout.ms": 60000,
            "socket.timeout.ms": 10000}
    conf.update(extra)
    return ck.Producer(conf)


def produce_flush(p, topic, items, timeout=30):
    """items: [(partition, key, value)]; flush; return delivery errors ([(value, KafkaError)])
    and {value: (partition, offset)}."""
    errors, acked = [], {}

    def dr(err, msg):
        if err is not None:
            errors.append((msg.value(), err))
        else:
            acked[msg.value()] = (msg.partition(), msg.offset())

    for part, k, v in items:
        p.produce(topic, key=k, value=v, partition=part, on_delivery=dr)
    try:
        left = p.flush(timeout)
    except ck.KafkaException as e:
        # librdkafka raises a fatal error (e.g. fenced) from flush(): that is the outcome.
        errors.append((items[-1][2], e.args[0]))
        return errors, acked
    assert left == 0, "%d messages still in flight after %d s" % (left, timeout)
    return errors, acked


def consume_to_end(bootstrap, topic, partitions, isolation, timeout=30, group=None,
                   min_counts=None):
    """Assign every partition from the beginning and read until each reports EOF (HW for
    read_uncommitted, LSO for read_committed) -- and, with min_counts {p: n}, has at least n
    records.  -> {p: [(offset, key, value)]}"""
    min_counts = min_counts or {}
    c = ck.Consumer({"bootstrap.servers": bootstrap, "logger": RDK_LOG,
                     "group.id": group or ("mk-txn-" + uuid.uuid4().hex[:8]),
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": True, "fetch.wait.max.ms": 50,
                     "isolation.level": isolation})
    got = {p: [] for p in partitions}
    eof = set()
    errs = []
    try:
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        while len(eof) < len(partitions) or any(len(got[p]) < n for p, n in min_counts.items()):
            assert time.monotonic() < deadline, (
                "%s consumer of %s: no EOF on %s within %d s (got %s)"
                % (isolation, topic, sorted(set(partitions) - eof), timeout,
                   {p: len(v) for p, v in got.items()}))
            for m in c.consume(num_messages=10000, timeout=0.2):
                if m.error():
                    if m.error().code() == ck.KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                    else:
                        errs.append(m.error())
                    continue
                eof.discard(m.partition())
                got[m.partition()].append((m.offset(), m.key(), m.value()))
        assert not errs, "consume errors: %s" % errs[:5]
        return got
    finally:
        c.close()


def values(got):
    """{p: [(offset, key, value)]} -> set of values"""
    return {v for recs in got.values() for _, _, v in recs}


def committed_offsets(bootstrap, group, topic, partitions, timeout=10):
    """{p: committed offset or None} for `group` (OffsetFetch through confluent-kafka)."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "logger": RDK_LOG, "group.id": group,
                     "enable.auto.commit": False})
    try:
        res = c.committed([ck.TopicPartition(topic, p) for p in partitions], timeout=timeout)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in res}
    finally:
        c.close()
