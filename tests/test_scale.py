"""Scale within one process (issue 16): six brokers share one process, so its file descriptors
and its memory are the whole cluster's.

- 10,000 partitions at RF 3 (30,000 replica logs) are created through CreateTopics, a sample
  of them takes one record each and gives it back, and the process's open descriptors
  (/proc/PID/fd) stay under the segment cache's bound plus a margin, started with the soft
  RLIMIT_NOFILE of a Debian container (1024; minikora raises it to the hard limit).
- Flushes (fsync on the threadpool, through dup()ed descriptors) stay within the limit when
  every replica log of 1,500 partitions at RF 3 flushes after every append.
- When descriptors do run out, the error that reaches the client names EMFILE.
- Idle connections cost little resident memory, and it goes back once they close.
"""

import os
import resource
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import cluster
from clients import RDK_LOG

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
import conns_bench  # noqa: E402  (tests/bench/conns_bench.py: the bench's measurement)

PARTITIONS = 10000
TOPICS = 5
SAMPLE_EVERY = 50           # one record to every 50th partition: 200 records
FD_MARGIN = 512             # listeners, connections, SQLite, threadpool duplicates in flight


@pytest.fixture
def data_dir(tmp_path):
    """Where the 30,000 replica directories go: tmpfs when there is a roomy one (/dev/shm), else
    tmp_path.  The test is about descriptors, not the disk: creating and removing 120,000
    files on a shared ext4 costs tens of seconds (inode allocation) and slows every other
    test on the machine.  Set up before `minikora`, so removed after it stopped."""
    # a container's /dev/shm may be 64 MB: the logs need a few hundred (a page per file)
    roomy = os.access("/dev/shm", os.W_OK) and shutil.disk_usage("/dev/shm").free >= 1 << 30
    base = "/dev/shm" if roomy else str(tmp_path)
    d = tempfile.mkdtemp(prefix="minikora-scale-", dir=base)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def open_fds(pid):
    return len(list(Path("/proc/%d/fd" % pid).iterdir()))


def metric(mk, name):
    req = urllib.request.Request(mk.admin_url + "/metrics", headers=mk.admin_headers())
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    vals = [float(l.split()[1]) for l in text.splitlines() if l.startswith(name + " ")]
    assert vals, "no %s in /metrics" % name
    return vals[0]


@pytest.mark.timeout(180)
def test_10k_partitions_rf3_bounded_fds(data_dir, minikora):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # inherited by minikora
    try:
        mk = minikora("--s3-port", "-1", data_dir=data_dir, ephemeral=False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    pid = mk.proc.pid
    assert "open files limit" in mk.stderr_text()
    limits = Path("/proc/%d/limits" % pid).read_text()
    assert any(l.startswith("Max open files") and l.split()[3] == l.split()[4] for l in limits.splitlines()), \
        "soft limit not raised to the hard one:\n" + limits
    bound = metric(mk, "minikora_log_open_files_limit")  # default: a quarter of the limit, >= 4096
    assert 4096 <= bound <= hard // 2 or bound == hard // 2, bound

    admin = AdminClient({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG})
    per = PARTITIONS // TOPICS
    names = ["scale-%d" % i for i in range(TOPICS)]
    t0 = time.monotonic()
    futs = admin.create_topics([NewTopic(n, per, 3) for n in names], operation_timeout=120, request_timeout=150)
    for n, f in futs.items():
        f.result(timeout=150)
    took = time.monotonic() - t0
    fds = open_fds(pid)
    print("created %d partitions x RF 3 in %.1f s; %d open descriptors" % (PARTITIONS, took, fds))
    assert fds < bound + FD_MARGIN, "%d descriptors open at %d partitions (bound %d)" % (fds, PARTITIONS, bound)
    assert took < 90, "creating %d partitions took %.1f s" % (PARTITIONS, took)

    sample = [(n, p) for n in names for p in range(0, per, SAMPLE_EVERY)]
    prod = ck.Producer({"bootstrap.servers": mk.bootstrap, "acks": "all", "linger.ms": 5, "logger": RDK_LOG})
    errs = []
    for n, p in sample:
        prod.produce(n, b"%s/%d" % (n.encode(), p), partition=p, on_delivery=lambda e, m: e and errs.append(e))
    assert prod.flush(60) == 0 and not errs, errs[:5]

    c = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": "scale", "enable.auto.commit": False,
                     "logger": RDK_LOG})
    try:
        c.assign([ck.TopicPartition(n, p, 0) for n, p in sample])
        got = set()
        deadline = time.monotonic() + 60
        while len(got) < len(sample):
            assert time.monotonic() < deadline, "read back %d of %d records" % (len(got), len(sample))
            for m in c.consume(num_messages=1000, timeout=0.5):
                if not m.error():
                    got.add((m.topic(), m.partition(), m.value()))
    finally:
        c.close()
    assert got == {(n, p, b"%s/%d" % (n.encode(), p)) for n, p in sample}
    fds = open_fds(pid)
    assert fds < bound + FD_MARGIN, "%d descriptors open after produce and consume" % fds
    assert metric(mk, "minikora_log_open_files") <= bound


@pytest.mark.timeout(120)
def test_flushes_bounded_fds(tmp_path, minikora, monkeypatch):
    """Hard limit 1024 in the child (segment cache bound 512): 1,500 partitions at RF 3 with
    flush.messages 1, so every append of every replica log asks for an fsync.  Each flush
    dup()s its files' descriptors; before flushes were bounded per loop, thousands queued on
    the threadpool at once held theirs and the log said "cannot start a flush: Too many open
    files" (main's binary did, here, in 9 s).  Now at most a few hold any, every record is
    acknowledged (acks=all) and read back, and no flush fails to start.  On the disk, not
    tmpfs: flushes pile up only when fsync takes time.  The first fetches' producer-state
    loads (txn/, a dup()ed cursor each) start at once too, bounded the same way."""
    def child():
        cluster._libc.prctl(1, 9, 0, 0, 0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
    monkeypatch.setattr(cluster, "_die_with_parent", child)
    mk = minikora("--s3-port", "-1", data_dir=tmp_path / "data", ephemeral=False)  # a disk: fsync takes time
    parts = 1500
    admin = AdminClient({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG})
    fut = admin.create_topics([NewTopic("flushy", parts, 3, config={"flush.messages": "1"})],
                              operation_timeout=60, request_timeout=90)
    fut["flushy"].result(timeout=90)
    c = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": "flushy", "enable.auto.commit": False,
                     "logger": RDK_LOG})
    try:
        c.assign([ck.TopicPartition("flushy", p, 0) for p in range(parts)])
        # The first fetches make every leader load its producer state (txn/) at once, each load
        # through a cursor holding a dup()ed .log descriptor until its worker ran; those are
        # bounded per loop too now (main's binary before: about 1,000 such descriptors, enough to
        # reach the limit alone), so producing right away is fine.
        prod = ck.Producer({"bootstrap.servers": mk.bootstrap, "acks": "all", "linger.ms": 20, "logger": RDK_LOG})
        errs = []
        for rnd in range(2):
            for p in range(parts):
                prod.produce("flushy", b"%d/%d" % (rnd, p), partition=p,
                             on_delivery=lambda e, m: e and errs.append(e))
            assert prod.flush(60) == 0 and not errs, errs[:5]
        got = set()
        deadline = time.monotonic() + 60
        while len(got) < 2 * parts:
            assert time.monotonic() < deadline, "read back %d of %d records" % (len(got), 2 * parts)
            for m in c.consume(num_messages=1000, timeout=0.5):
                if not m.error():
                    got.add(m.value())
    finally:
        c.close()
    assert got == {b"%d/%d" % (r, p) for r in range(2) for p in range(parts)}
    flushes = [l for l in mk.stderr_text().splitlines()
               if ("flush" in l or "loading" in l) and ("open files" in l or "cannot" in l)]
    assert not flushes, flushes[:5]


@pytest.mark.timeout(60)
def test_emfile_is_named(minikora, monkeypatch):
    """Hard limit 256 in the child: connections take every descriptor, so a topic's first
    segment cannot be opened even after the cache let go of its own; CreateTopics says why."""
    def child():
        cluster._libc.prctl(1, 9, 0, 0, 0)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    monkeypatch.setattr(cluster, "_die_with_parent", child)
    mk = minikora("--s3-port", "-1")
    socks = []
    try:
        with mk.wire(1) as w:
            for _ in range(300):  # more than the process may hold: the excess is refused
                try:
                    socks.append(socket.create_connection(mk.addr(2), timeout=5))
                except OSError:
                    break
            time.sleep(0.5)  # let the broker accept what it can (bounded, no event to await)
            _, topics = w.create_topics([("no-fds", 1, 1)])
        name, err, msg = topics[0]
        assert err != 0 and "EMFILE" in (msg or ""), topics
    finally:
        for s in socks:
            s.close()
    assert "EMFILE" in mk.stderr_text()


@pytest.mark.timeout(60)
def test_idle_connections_memory(minikora):
    if "asan" in str(cluster.BIN):
        pytest.skip("RSS bounds are for the plain build (ASan's redzones and quarantine add to RSS)")
    mk = minikora()
    n = 1000
    r = conns_bench.measure(mk.proc.pid, [mk.addr(b) for b in range(1, 7)], n)
    print("idle connections: %s" % r)
    added = r["conns_kib"] - r["idle_kib"]
    assert added < 16 * 1024, "%d connections added %d KiB RSS" % (n, added)
    assert r["closed_kib"] - r["idle_kib"] < 4 * 1024, "RSS stayed %d KiB above idle after close" % (
        r["closed_kib"] - r["idle_kib"])
