"""Helpers for the replication tests (tests/test_replication.py).

* `ControlMinikora`: a conftest `Minikora` started with `--control-stdin` and stdin=PIPE; the
  lifecycle commands (crash/stop/start/az-down/az-up/stats) are written one per line and each
  waits (bounded) for its single `control: ...` answer line on stdout.
* Raw metadata through kwire (leader, replicas, ISR per partition; broker racks), asked of
  whichever broker is up; bounded waits on it.
* Replica log files under <data-dir>/broker-<id>/<topic>-<partition>/*.log and their digests.

Every wait is bounded; loops that poll metadata sleep a little between polls (bounded).
"""

import hashlib
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

import conftest
import kwire


class ControlError(AssertionError):
    pass


class ControlMinikora(conftest.Minikora):
    """`minikora serve --control-stdin ...` with a pipe on stdin."""

    CONTROL_TIMEOUT = 15.0

    def __init__(self, *extra, **kw):
        super().__init__("--control-stdin", *extra, **kw)
        self.control_q = None
        self.down = set()  # brokers crashed/stopped through control()

    def start(self, timeout=conftest.READY_TIMEOUT):
        """Same as conftest.Minikora.start, but stdin is a pipe and 'control:' lines are routed
        to their own queue."""
        if not conftest.BIN.exists():
            pytest.fail("minikora binary not found at %s (run `make minikora`)" % conftest.BIN)
        self.starts += 1
        self.stderr_path = conftest.LOG_DIR / ("%s.%d.stderr" % (self.name, self.starts))
        errf = open(self.stderr_path, "ab")
        errf.write(("\n==== start #%d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
        errf.flush()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=errf,
                                     preexec_fn=conftest._die_with_parent,
                                     cwd=str(conftest.REPO))
        errf.close()
        conftest._all_procs.append(self.proc)
        lines = queue.Queue()
        ctl = self.control_q = queue.Queue()
        proc = self.proc

        def reader():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout_lines.append(line)
                (ctl if line.startswith("control:") else lines).put(line)
            lines.put(None)
            ctl.put(None)

        threading.Thread(target=reader, daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                pytest.fail("minikora: no ready line within %.0f s\n%s" % (timeout, self.diag()))
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail("minikora closed stdout before the ready line (rc=%s)\n%s"
                            % (proc.poll(), self.diag()))
            m = conftest.READY_RE.search(line)
            if m and "ready" in line:
                self.bootstrap = m.group(1)
                self.brokers = kwire.parse_bootstrap(self.bootstrap)
                self.down = set()
                return self

    def stop(self, *a, **kw):
        if self.proc is not None and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        return super().stop(*a, **kw)

    # -- control ---------------------------------------------------------------------------
    def control(self, cmd, check=True, timeout=None):
        """Send one control line, return its answer line (without 'control: ')."""
        self.assert_alive("control %r" % cmd)
        while True:  # drop stale answers (none expected)
            try:
                self.control_q.get_nowait()
            except queue.Empty:
                break
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        try:
            line = self.control_q.get(timeout=timeout or self.CONTROL_TIMEOUT)
        except queue.Empty:
            raise ControlError("no answer to control %r within %.0f s\n%s"
                               % (cmd, timeout or self.CONTROL_TIMEOUT, self.diag()))
        if line is None:
            raise ControlError("minikora closed stdout after control %r\n%s" % (cmd, self.diag()))
        ans = line[len("control:"):].strip()
        if check and not (ans.startswith("ok ") or ans.startswith("stats ")):
            raise ControlError("control %r answered %r" % (cmd, line))
        parts = cmd.split()
        if ans.startswith("ok "):
            if parts[0] in ("crash", "stop"):
                self.down.add(int(parts[1]))
            elif parts[0] == "start":
                self.down.discard(int(parts[1]))
        return ans

    def crash(self, broker):
        return self.control("crash %d" % broker)

    def start_broker(self, broker):
        return self.control("start %d" % broker)

    def stats(self):
        ans = self.control("stats")
        assert ans.startswith("stats "), ans
        return json.loads(ans[len("stats "):])

    def up_brokers(self):
        return [(i + 1, hp) for i, hp in enumerate(self.brokers) if i + 1 not in self.down]

    def addr(self, broker):
        return self.brokers[broker - 1]

    def stderr_text(self):
        try:
            return Path(self.stderr_path).read_text("utf-8", "replace")
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------------
# Raw metadata
# ---------------------------------------------------------------------------------------------
def wire(mk, broker=None, timeout=10.0):
    """A kwire connection to `broker` (1-based id) or to the first broker that accepts one."""
    cands = [(broker, mk.addr(broker))] if broker else mk.up_brokers()
    last = None
    for _, (h, p) in cands:
        try:
            return kwire.Conn(h, p, timeout=timeout)
        except OSError as e:
            last = e
    raise AssertionError("no broker accepts connections (%s)" % last)


def metadata(mk, topic):
    """-> (brokers {id: rack}, partitions {index: {leader, replicas, isr, error, leader_epoch}})"""
    with wire(mk) as c:
        md = c.metadata([topic])
    racks = {b["node_id"]: b["rack"] for b in md["brokers"]}
    t = [x for x in md["topics"] if x["name"] == topic]
    assert t and t[0]["error"] == 0, "metadata for %s: %r" % (topic, t)
    return racks, {p["index"]: p for p in t[0]["partitions"]}


def broker_racks(mk):
    """{broker id: AZ} from DescribeCluster (all running brokers)."""
    with wire(mk) as c:
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
    with wire(mk, broker) as c:
        res = c.produce(topic, partition, batch, acks=acks)
    assert len(res) == 1, res
    return res[0][2], res[0][3]


def decode_batches(data):
    """Uncompressed v2 batches -> [(offset, leader_epoch, value)] (enough for these tests)."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        r = kwire.Reader(data, pos)
        base = r.i64()
        blen = r.i32()
        end = pos + 12 + blen
        if end > len(data):
            break
        epoch = r.i32()
        r.i8()   # magic
        r.take(4)  # crc
        attrs = r.i16()
        assert attrs & 7 == 0, "compressed batch in a raw test"
        r.i32(); r.i64(); r.i64(); r.i64(); r.i16(); r.i32()
        n = r.i32()
        for _ in range(n):
            r.varint()  # length
            r.i8()
            r.varint()
            od = r.varint()
            kl = r.varint()
            if kl > 0:
                r.take(kl)
            vl = r.varint()
            v = r.take(vl) if vl >= 0 else None
            for _ in range(r.varint()):
                r.take(r.varint())
                hl = r.varint()
                if hl > 0:
                    r.take(hl)
            out.append((base + od, epoch, v))
        pos = end
    return out


def raw_fetch_all(mk, broker, topic, partition, rack=None, max_rounds=200):
    """Read a partition from `broker` with raw Fetch v11 (optionally with a rack id).
    -> (records [(offset, epoch, value)], errors seen, preferred read replicas seen, hw)"""
    got, errors, prefs, hw = [], [], [], None
    off = 0
    with wire(mk, broker) as c:
        for _ in range(max_rounds):
            body = fetch_v11_body(topic, partition, off, rack or "")
            resp = c.call(kwire.FETCH, 11, body)
            p = parse_fetch_v11(resp)
            hw = p["high_watermark"]
            if p["error"]:
                errors.append(p["error"])
                break
            if p["preferred"] >= 0:
                prefs.append(p["preferred"])
                break
            recs = decode_batches(p["records"] or b"")
            recs = [x for x in recs if x[0] >= off]
            if not recs:
                break
            got += recs
            off = recs[-1][0] + 1
            if off >= hw:
                break
    return got, errors, prefs, hw


def fetch_v11_body(topic, partition, offset, rack, max_bytes=1 << 20):
    b = (kwire.i32(-1) + kwire.i32(0) + kwire.i32(1) + kwire.i32(max_bytes) + kwire.i8(0)
         + kwire.i32(0) + kwire.i32(-1))
    p = kwire.i32(partition) + kwire.i32(-1) + kwire.i64(offset) + kwire.i64(-1) + kwire.i32(max_bytes)
    b += kwire.array([kwire.string(topic) + kwire.array([p])])
    b += kwire.array([])
    b += kwire.string(rack)
    return b


def parse_fetch_v11(body):
    r = kwire.Reader(body)
    r.i32()
    r.i16()
    r.i32()
    out = None
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            p = {"partition": r.i32(), "error": r.i16(), "high_watermark": r.i64()}
            r.i64()
            p["log_start_offset"] = r.i64()
            r.array(lambda r: (r.i64(), r.i64()))
            p["preferred"] = r.i32()
            p["records"] = r.bytes_()
            out = p
    return out


# ---------------------------------------------------------------------------------------------
# OffsetForLeaderEpoch v3 (non-flexible)
# ---------------------------------------------------------------------------------------------
OFFSET_FOR_LEADER_EPOCH = 23


def offset_for_leader_epoch(mk, broker, topic, partition, epoch, current_epoch=-1):
    """-> (error, leader_epoch, end_offset) as `broker` answers for `epoch`."""
    body = (kwire.i32(-1) + kwire.array([kwire.string(topic) + kwire.array(
        [kwire.i32(partition) + kwire.i32(current_epoch) + kwire.i32(epoch)])]))
    with wire(mk, broker) as c:
        resp = c.call(OFFSET_FOR_LEADER_EPOCH, 3, body)
    r = kwire.Reader(resp)
    r.i32()
    out = []
    for _ in range(r.i32()):
        r.string()
        for _ in range(r.i32()):
            err, _p, ep, end = r.i16(), r.i32(), r.i32(), r.i64()
            out.append((err, ep, end))
    assert len(out) == 1, out
    return out[0]
