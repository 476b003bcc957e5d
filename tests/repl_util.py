"""Helpers for the replication tests (tests/test_replication.py, also test_txn.py and
test_groups_failover.py).  The cluster is a cluster.Cluster(control=True) (crash/start brokers
through --control-stdin); the wire encoding is kwire's.

* Raw metadata through kwire (leader, replicas, ISR per partition; broker racks), asked of
  whichever broker is up; bounded waits on it.
* Replica log files under <data-dir>/broker-<id>/<topic>-<partition>/*.log and their digests.
* Raw Produce / Fetch (with a rack id) / OffsetForLeaderEpoch to one given broker.

Every wait is bounded; loops that poll metadata sleep a little between polls (bounded).
"""

import hashlib
import time
from pathlib import Path

import kwire


# ---------------------------------------------------------------------------------------------
# Raw metadata
# ---------------------------------------------------------------------------------------------
def metadata(mk, topic):
    """-> (brokers {id: rack}, partitions {index: {leader, replicas, isr, error, leader_epoch}})"""
    with mk.wire() as c:
        md = c.metadata([topic])
    racks = {b["node_id"]: b["rack"] for b in md["brokers"]}
    t = [x for x in md["topics"] if x["name"] == topic]
    assert t and t[0]["error"] == 0, "metadata for %s: %r" % (topic, t)
    return racks, {p["index"]: p for p in t[0]["partitions"]}


def leaders(mk, topic):
    """{partition: leader id} from Metadata (asked of any running broker)."""
    return {i: p["leader"] for i, p in metadata(mk, topic)[1].items()}


def broker_racks(mk):
    """{broker id: AZ} from DescribeCluster (all running brokers)."""
    with mk.wire() as c:
        d = c.describe_cluster()
    assert d["error"] == 0, d
    return {b["node_id"]: b["rack"] for b in d["brokers"]}


def wait_metadata(mk, topic, pred, timeout, what):
    """Poll Metadata until pred(partitions) is true; returns the partitions. Bounded."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            _, parts = metadata(mk, topic)
            last = parts
            if pred(parts):
                return parts
        except (OSError, ValueError, kwire.Closed, AssertionError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.0f s; last metadata: %s"
                                 % (what, timeout, summarize(last)))
        time.sleep(0.05)  # bounded by `timeout`


def summarize(parts):
    if not isinstance(parts, dict):
        return repr(parts)
    return "; ".join("p%d leader=%d replicas=%s isr=%s err=%d" % (
        i, p["leader"], p["replicas"], sorted(p["isr"]), p["error"]) for i, p in sorted(parts.items()))


def isr_full(parts):
    return all(p["error"] == 0 and p["leader"] >= 0 and sorted(p["isr"]) == sorted(p["replicas"])
               for p in parts.values())


def wait_isr_full(mk, topic, timeout=20):
    return wait_metadata(mk, topic, isr_full, timeout, "ISR of %s back to all replicas" % topic)


# ---------------------------------------------------------------------------------------------
# Replica files
# ---------------------------------------------------------------------------------------------
def replica_dir(data_dir, broker, topic, partition):
    return Path(data_dir) / ("broker-%d" % broker) / ("%s-%d" % (topic, partition))


def replica_log_files(data_dir, broker, topic, partition):
    d = replica_dir(data_dir, broker, topic, partition)
    files = sorted(d.glob("*.log"), key=lambda f: int(f.stem) if f.stem.isdigit() else f.stem)
    return files


def replica_digest(data_dir, broker, topic, partition):
    """(sha256 of the concatenated .log segments in offset order, total bytes, [file names])"""
    h = hashlib.sha256()
    n = 0
    files = replica_log_files(data_dir, broker, topic, partition)
    for f in files:
        b = f.read_bytes()
        h.update(b)
        n += len(b)
    return h.hexdigest(), n, [f.name for f in files]


def per_file_digests(data_dir, broker, topic, partition):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
            for f in replica_log_files(data_dir, broker, topic, partition)}


def wait_replicas_identical(data_dir, topic, partition, brokers, timeout=20):
    """Bounded wait until every replica's concatenated log has the same digest; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        ds = {b: replica_digest(data_dir, b, topic, partition) for b in brokers}
        if len({d[0] for d in ds.values()}) == 1 and all(d[1] > 0 for d in ds.values()):
            return ds
        if time.monotonic() >= deadline:
            raise AssertionError("replica logs of %s-%d differ after %.0f s: %s" % (
                topic, partition, timeout,
                {b: (d[0][:16], d[1], d[2]) for b, d in ds.items()}))
        time.sleep(0.05)  # bounded by `timeout`


# ---------------------------------------------------------------------------------------------
# Raw record batches through kwire
# ---------------------------------------------------------------------------------------------
def raw_produce(mk, broker, topic, partition, values, acks):
    """One Produce of one uncompressed batch to `broker`; -> (error_code, base_offset)."""
    batch = kwire.record_batch([(None, v, []) for v in values])
    with mk.wire(broker) as c:
        return c.produce_one(topic, partition, batch, acks=acks)


def raw_fetch_all(mk, broker, topic, partition, rack=None, max_rounds=200):
    """Read a partition from `broker` with raw Fetch v11 (optionally with a rack id).
    -> (records [(offset, epoch, value)], errors seen, preferred read replicas seen, hw)"""
    got, errors, prefs, hw = [], [], [], None
    off = 0
    with mk.wire(broker) as c:
        for _ in range(max_rounds):
            p = c.fetch(topic, partition, off, version=11, max_wait_ms=0, rack=rack or "")[-1]
            hw = p["high_watermark"]
            if p["error"]:
                errors.append(p["error"])
                break
            if p["preferred_read_replica"] >= 0:
                prefs.append(p["preferred_read_replica"])
                break
            recs = kwire.decode_batches(p["records"] or b"")
            recs = [x for x in recs if x[0] >= off]
            if not recs:
                break
            got += recs
            off = recs[-1][0] + 1
            if off >= hw:
                break
    return got, errors, prefs, hw


# ---------------------------------------------------------------------------------------------
# OffsetForLeaderEpoch v3 (non-flexible)
# ---------------------------------------------------------------------------------------------
def offset_for_leader_epoch(mk, broker, topic, partition, epoch, current_epoch=-1):
    """-> (error, leader_epoch, end_offset) as `broker` answers for `epoch`."""
    with mk.wire(broker) as c:
        return c.offset_for_leader_epoch(topic, partition, epoch, current_epoch)
