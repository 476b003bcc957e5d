"""Tiered storage (src/tier/, KIP-405): sealed segments go to S3, local copies go after local
retention, and every record still reads back.

* 50 MB to a tiered topic with 1 MiB segments and a local retention of a second: the segments
  appear in the bundled S3 server (`aws s3 ls --recursive`), with their indexes, leader-epoch
  checkpoint, producer snapshot and manifest; the local segment files are deleted on every
  replica; a consumer from offset 0 reads every record byte-identical (CRCs checked by the
  client); offsets by time resolve in S3 and locally; ListOffsets earliest is 0 while
  earliest-local (-4) is past it and latest-tiered (-5) names the last offset in S3; the admin
  API and /metrics tell it.  After a restart the remote state is back and offset 0 reads.
* S3 failing (the bundled server's fault switch, POST /v1/s3/fault): produce and local fetches go
  on, copies fail and are retried, local segments stay past local retention, a fetch of data only
  in S3 gets the retriable KAFKA_STORAGE_ERROR; once S3 is back the copies resume and the same
  fetch succeeds.  A slow S3 delays remote reads, never a produce.
* A follower that was down while the leader's local log moved past it (KIP-405's
  OFFSET_MOVED_TO_TIERED_STORAGE) is rebuilt at the leader's local log start and rejoins the ISR.
* An external S3 endpoint (minikora.s3.endpoint): one minikora tiers to another's bundled server.
* Configs: KIP-405's names in DescribeConfigs, the external key pair never listed, a local
  retention above the total refused.
"""

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import threading
import time
import urllib.request

import pytest

import kwire
from clients import ck_create_topic, ck_delete_topic, ck_describe_configs, wait_topic_ready

ck = pytest.importorskip("confluent_kafka")

S3_RE = re.compile(r" s3 (http://\S+) bucket (\S+) key (\S+) secret (\S+)")
AWS = "/usr/bin/aws" if os.path.exists("/usr/bin/aws") else shutil.which("aws")
MB = 1 << 20
VALUE = 1000
# Record timestamps: T0 + offset * 10 ms, an hour ago (well within retention.ms, well past the
# local retention of the tests).
T0 = (int(time.time()) - 3600) * 1000

# Fast tiering for tests: copy and retention looked at every 100 ms, local data kept 1 s.
FAST = ["--set", "remote.log.manager.task.interval.ms=100", "--set", "log.local.retention.ms=1000",
        "--set", "minikora.tier.chunk.bytes=262144"]


def s3_of(mk):
    m = S3_RE.search(mk.ready_line or "")
    assert m, "the ready line names no S3 server: %r" % mk.ready_line
    return {"url": m.group(1), "bucket": m.group(2), "key": m.group(3), "secret": m.group(4)}


def value_of(i):
    seed = hashlib.sha256(b"%d" % i).digest()
    return (seed * (VALUE // len(seed) + 1))[:VALUE]


def admin_get(mk, path, timeout=10):
    with urllib.request.urlopen(mk.admin_url + path, timeout=timeout) as r:
        return json.loads(r.read())


def admin_send(mk, method, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(mk.admin_url + path, data=data, method=method,
                                 headers=dict(mk.admin_headers(), **{"Content-Type": "application/json"}))
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_until(cond, what, timeout=30, interval=0.05):
    """Bounded wait for cond() to be truthy; returns its value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)  # bounded by `timeout`
    raise AssertionError("%s: not within %ss (last: %r)" % (what, timeout, last))


def partition_of(mk, topic, p=0):
    t = admin_get(mk, "/v1/topics/%s" % topic)["topic"]
    return t["partition_details"][p]


def produce(bootstrap, topic, first, count, **extra):
    """count records with keys and values from their index, timestamps T0 + 10 ms * index."""
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 256 * 1024,
            "compression.type": "none", "enable.idempotence": False}
    conf.update(extra)
    p = ck.Producer(conf)
    errors = []

    def cb(err, msg):
        if err:
            errors.append(err)
    for i in range(first, first + count):
        while True:
            try:
                p.produce(topic, key=b"k%d" % i, value=value_of(i), timestamp=T0 + 10 * i, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0, "records not delivered"
    assert not errors, errors[:3]


def consume_all(bootstrap, topic, start, count, timeout=60, timestamps=True):
    """Read [start, start + count) of partition 0 and check every record byte for byte."""
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "tier-%d" % time.monotonic_ns(),
                     "enable.auto.commit": False, "check.crcs": True, "fetch.max.bytes": 8 * MB,
                     "max.partition.fetch.bytes": 4 * MB})
    try:
        c.assign([ck.TopicPartition(topic, 0, start)])
        want = start
        deadline = time.monotonic() + timeout
        while want < start + count:
            assert time.monotonic() < deadline, "consumed up to %d of %d..%d" % (want, start, start + count)
            msgs = c.consume(1000, 1.0)
            for m in msgs:
                assert m.error() is None, m.error()
                assert m.offset() == want, (m.offset(), want)
                assert m.key() == b"k%d" % want and m.value() == value_of(want), "record %d differs" % want
                assert not timestamps or m.timestamp()[1] == T0 + 10 * want, (want, m.timestamp())
                want += 1
                if want == start + count:
                    break
        return want - start
    finally:
        c.close()


def list_offsets(mk, topic, ts, broker):
    with mk.wire(broker) as w:
        ((_, _, err, rts, off),) = w.list_offsets(topic, [(0, ts)])
        return err, off, rts


def aws_ls(s3, tmp_path):
    cfg = tmp_path / "aws-config"
    cfg.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
    env = dict(os.environ, AWS_CONFIG_FILE=str(cfg), AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_ACCESS_KEY_ID=s3["key"], AWS_SECRET_ACCESS_KEY=s3["secret"], AWS_PAGER="",
               AWS_EC2_METADATA_DISABLED="true")
    p = subprocess.run([AWS, "--endpoint-url", s3["url"], "s3", "ls", "--recursive", "s3://%s/tier/" % s3["bucket"]],
                       env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    return [line.split()[-1] for line in p.stdout.decode().splitlines() if line.strip()]


def replica_dirs(data_dir, topic):
    return sorted(str(p) for p in data_dir.glob("broker-*/%s-0" % topic))


def local_logs(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".log"))


# ---------------------------------------------------------------------------------------------
# 50 MB through S3 and back
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not AWS, reason="awscli is not installed")
@pytest.mark.timeout(180)
def test_tiering_50mb(minikora, tmp_path, topic_name):
    data_dir = tmp_path / "data"
    mk = minikora("--brokers", "3", *FAST, data_dir=data_dir, ephemeral=False)
    t = topic_name()
    assert ck_create_topic(mk.bootstrap, t, 1, rf=3, config={"segment.bytes": str(MB)}) is None
    wait_topic_ready(mk.bootstrap, t, 1)
    n = 50 * MB // VALUE
    t_produce = time.monotonic()
    produce(mk.bootstrap, t, 0, n)
    t_produce = time.monotonic() - t_produce

    # Copied and deleted locally: the leader's local log starts well past 0 and every replica
    # holds a few segments only.
    part = wait_until(lambda: (lambda d: d if d["remote_segments"]["COPY_FINISHED"] >= 40 and
                               d["local_log_start_offset"] > n * 3 // 4 else None)(partition_of(mk, t)),
                      "segments copied to S3 and deleted locally", timeout=60)
    assert part["tiered"] is True and part["log_start_offset"] == 0 and part["remote_log_start_offset"] == 0
    assert part["remote_log_end_offset"] >= part["local_log_start_offset"] - 1
    assert part["remote_size_bytes"] >= 38 * MB
    for d in replica_dirs(data_dir, t):
        wait_until(lambda: len(local_logs(d)) <= 12, "local segments of %s deleted" % d, timeout=30)

    # The bundled server has every segment with its companions.
    keys = aws_ls(s3_of(mk), tmp_path)
    logs = [k for k in keys if k.endswith(".log")]
    assert len(logs) >= part["remote_segments"]["COPY_FINISHED"], (len(logs), part)
    for ext in (".index", ".timeindex", ".leader-epoch-checkpoint", ".snapshot", ".manifest"):
        assert len([k for k in keys if k.endswith(ext)]) == len(logs), ext
    assert all(("/%s-" % t) in k for k in logs), logs[:3]

    # Every record from offset 0, byte for byte, with CRCs checked; cold, then warm.
    t_cold = time.monotonic()
    assert consume_all(mk.bootstrap, t, 0, n) == n
    t_cold = time.monotonic() - t_cold

    # ListOffsets: earliest 0 (S3 included), earliest-local past it, latest-tiered in S3; by
    # time in S3 and in the local log.
    leader = part["leader"]
    local_start = partition_of(mk, t)["local_log_start_offset"]
    assert list_offsets(mk, t, -2, leader)[:2] == (0, 0)
    err, off, _ = list_offsets(mk, t, -4, leader)
    assert err == 0 and off == local_start > 0
    err, off, _ = list_offsets(mk, t, -5, leader)
    assert err == 0 and local_start - 1 <= off < n
    for i in (0, 1234, n // 2, n - 10):
        err, off, ts = list_offsets(mk, t, T0 + 10 * i, leader)
        assert (err, off, ts) == (0, i, T0 + 10 * i), i
    err, off, ts = list_offsets(mk, t, T0 + 10 * i + 5, leader)
    assert (err, off) == (0, i + 1)
    c = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": "times"})
    got = c.offsets_for_times([ck.TopicPartition(t, 0, T0 + 10 * 777)], timeout=20)
    c.close()
    assert got[0].offset == 777

    # The admin API and /metrics tell it.
    tier = admin_get(mk, "/v1/tier")
    assert tier["enabled"] and tier["target"]["bundled"] and tier["s3"]["status"] == "ok"
    assert tier["uploads"]["done"] >= 40 and tier["remote"]["segments"] >= 40
    assert tier["cache"]["misses"] > 0 and tier["cache"]["memory_bytes"] > 0
    b = next(x for x in tier["brokers"] if x["id"] == leader)
    assert b["upload_bytes"] >= 38 * MB and b["uploads_done"] >= 40
    s3 = admin_get(mk, "/v1/s3")
    assert s3["objects"] >= 6 * 40 and s3["requests_by_op"]["PutObject"] >= 6 * 40
    storage = admin_get(mk, "/v1/storage")
    dt = next(x for x in storage["tenants"] if x["id"] == "default")
    tt = next(x for x in dt["topics"] if x["name"] == t)
    assert tt["remote_bytes"] >= 38 * MB and tt["local_bytes"] < 20 * MB and tt["tiered"]
    with urllib.request.urlopen(mk.admin_url + "/metrics", timeout=10) as r:
        metrics = r.read().decode()
    m = re.search(r'kafka_server_brokertopicmetrics_remotecopybytes_total\{broker="%d"\} (\S+)' % leader, metrics)
    assert m and float(m.group(1)) >= 38 * MB
    assert "kafka_server_brokertopicmetrics_remotefetchbytes_total" in metrics
    assert "kafka_server_brokertopicmetrics_remotelogsizebytes" in metrics

    # A restart: the remote log metadata is back, and so is offset 0.
    remote_before = tier["remote"]["segments"]
    mk.restart()
    wait_topic_ready(mk.bootstrap, t, 1)
    tier = admin_get(mk, "/v1/tier")
    assert tier["remote"]["segments"] == remote_before
    assert consume_all(mk.bootstrap, t, 0, 3000) == 3000
    leader = partition_of(mk, t)["leader"]
    assert list_offsets(mk, t, -2, leader)[:2] == (0, 0)
    print("\n50 MB: produce %.1f s, consume from S3 (cold) %.1f s" % (t_produce, t_cold))


# ---------------------------------------------------------------------------------------------
# S3 down, failing, slow
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_s3_faults(minikora, topic_name):
    mk = minikora("--brokers", "1", *FAST, "--set", "minikora.tier.cache.memory.bytes=300000",
                  "--set", "minikora.tier.cache.disk.bytes=0")
    t = topic_name()
    assert ck_create_topic(mk.bootstrap, t, 1, rf=1, config={"segment.bytes": str(256 * 1024)}) is None
    wait_topic_ready(mk.bootstrap, t, 1)
    produce(mk.bootstrap, t, 0, 4000)
    wait_until(lambda: partition_of(mk, t)["local_log_start_offset"] > 2000, "first segments copied and deleted locally")

    # S3 answers 500 to everything: produce and local reads go on, copies fail and are retried,
    # local data past local retention stays.
    admin_send(mk, "POST", "/v1/s3/fault", {"type": "error"})
    produce(mk.bootstrap, t, 4000, 4000)
    st = wait_until(lambda: (lambda x: x if x["uploads"]["failed"] >= 2 else None)(admin_get(mk, "/v1/tier")),
                    "copies fail while S3 fails")
    assert st["s3"]["status"] == "failing" and st["s3"]["error"]
    copied = partition_of(mk, t)["remote_segments"]["COPY_FINISHED"]
    time.sleep(1.5)  # past local.retention.ms: what is not in S3 must stay anyway
    part = partition_of(mk, t)
    assert part["remote_segments"]["COPY_FINISHED"] == copied
    assert part["upload_pending_segments"] >= 3 and part["local_log_start_offset"] <= 4000
    with mk.wire(1) as w:
        (r,) = w.fetch(t, 0, 7990)
        assert r["error"] == 0 and kwire.decode_batches(r["records"])
    assert consume_all(mk.bootstrap, t, part["local_log_start_offset"], 100) == 100

    # S3 down: a fetch of data that is only in S3 (not cached) gets KAFKA_STORAGE_ERROR.
    admin_send(mk, "POST", "/v1/s3/fault", {"type": "down"})
    with mk.wire(1) as w:
        errs = set()
        deadline = time.monotonic() + 20
        while 56 not in errs and time.monotonic() < deadline:
            (r,) = w.fetch(t, 0, 0, max_wait_ms=200)
            errs.add(r["error"])
        assert 56 in errs, errs  # KAFKA_STORAGE_ERROR: retriable
        assert errs <= {0, 56}, errs

    # S3 back: copies resume, local data goes, the same fetch and all the rest succeed.
    admin_send(mk, "DELETE", "/v1/s3/fault")
    wait_until(lambda: partition_of(mk, t)["local_log_start_offset"] > 6000, "copies resumed")
    assert consume_all(mk.bootstrap, t, 0, 8000) == 8000
    assert admin_get(mk, "/v1/tier")["s3"]["status"] == "ok"

    # S3 slow (each request held 0.6 s, longer than remote.fetch.max.wait.ms): a remote read of
    # chunks no longer cached (the cache here holds about one) arrives anyway, and produce
    # meanwhile is not held by it.
    admin_send(mk, "POST", "/v1/s3/fault", {"type": "slow", "delay_ms": 600})
    assert admin_get(mk, "/v1/s3")["fault"]["type"] == "slow"
    misses = admin_get(mk, "/v1/tier")["cache"]["misses"]
    done = []
    reader = threading.Thread(target=lambda: done.append(consume_all(mk.bootstrap, t, 0, 600, timeout=60)))
    reader.start()
    try:
        t0 = time.monotonic()
        produce(mk.bootstrap, t, 8000, 200)
        assert time.monotonic() - t0 < 3, "a produce waited for S3"
    finally:
        reader.join(70)
    assert done == [600]
    assert admin_get(mk, "/v1/tier")["cache"]["misses"] > misses
    assert admin_get(mk, "/v1/s3")["fault"]["injected"] > 0
    admin_send(mk, "DELETE", "/v1/s3/fault")


# ---------------------------------------------------------------------------------------------
# A follower behind the leader's local log start
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_follower_below_local_start_catches_up(minikora, topic_name):
    mk = minikora("--brokers", "3", *FAST, control=True)
    t = topic_name()
    assert ck_create_topic(mk.bootstrap, t, 1, rf=3, config={"segment.bytes": str(256 * 1024)}) is None
    wait_topic_ready(mk.bootstrap, t, 1)
    part = partition_of(mk, t)
    follower = next(b for b in part["replicas"] if b != part["leader"])
    mk.crash(follower)
    produce(mk.bootstrap, t, 0, 6000)
    part = wait_until(lambda: (lambda d: d if d["local_log_start_offset"] > 3000 else None)(partition_of(mk, t)),
                      "the leader's local log moved past the stopped follower")
    mk.start_broker(follower)
    end = 6000

    def caught_up():
        d = partition_of(mk, t)
        st = {s["broker"]: s for s in d["replica_states"]}
        return d if follower in d["isr"] and st[follower]["log_end_offset"] == end else None
    wait_until(caught_up, "the follower rebuilt and back in the ISR", timeout=60)
    assert "rebuilding it from the remote log metadata" in mk.stderr_text()
    # It serves reads as any replica: it leads now, and offset 0 still reads (from S3).
    mk.crash(part["leader"])
    wait_until(lambda: partition_of(mk, t)["leader"] not in (-1, part["leader"]), "a new leader")
    assert consume_all(mk.bootstrap, t, 0, end) == end


# ---------------------------------------------------------------------------------------------
# An external S3 endpoint: another minikora's bundled server
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not AWS, reason="awscli is not installed")
@pytest.mark.timeout(120)
def test_external_s3_endpoint(minikora, tmp_path, topic_name):
    store = minikora("--brokers", "1", "--set", "remote.log.storage.system.enable=false")
    s3 = s3_of(store)
    mk = minikora("--brokers", "1", "--s3-port", "-1", *FAST,
                  "--set", "minikora.s3.endpoint=%s" % s3["url"], "--set", "minikora.s3.bucket=%s" % s3["bucket"],
                  "--set", "minikora.s3.access.key=%s" % s3["key"], "--set", "minikora.s3.secret.key=%s" % s3["secret"])
    assert " s3 " not in mk.ready_line
    tier = admin_get(mk, "/v1/tier")
    assert tier["enabled"] and not tier["target"]["bundled"] and tier["target"]["url"] == s3["url"]
    t = topic_name()
    assert ck_create_topic(mk.bootstrap, t, 1, rf=1, config={"segment.bytes": str(256 * 1024)}) is None
    wait_topic_ready(mk.bootstrap, t, 1)
    produce(mk.bootstrap, t, 0, 3000)
    wait_until(lambda: partition_of(mk, t)["local_log_start_offset"] > 1000, "copied to the other server")
    keys = aws_ls(s3, tmp_path)
    assert any(k.endswith(".log") and ("/%s-" % t) in k for k in keys), keys[:5]
    assert consume_all(mk.bootstrap, t, 0, 3000) == 3000
    # the key pair is never listed
    cfg = ck_describe_configs(mk.bootstrap, "broker", "1")
    assert "minikora.s3.endpoint" in cfg and cfg["minikora.s3.endpoint"].value == s3["url"]
    assert "minikora.s3.secret.key" not in cfg and "minikora.s3.access.key" not in cfg
    assert not [e for e in cfg.values() if e.value and s3["secret"] in e.value]


# ---------------------------------------------------------------------------------------------
# Total retention in S3, and a deleted topic's remote segments
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_total_retention_and_topic_delete(minikora, topic_name):
    mk = minikora("--brokers", "1", *FAST)
    t = topic_name()
    # retention.bytes counts S3 and local together: about 2 MB of the 6 MB produced stay.
    assert ck_create_topic(mk.bootstrap, t, 1, rf=1, config={"segment.bytes": str(256 * 1024),
                                                            "retention.bytes": str(2 * MB)}) is None
    wait_topic_ready(mk.bootstrap, t, 1)
    produce(mk.bootstrap, t, 0, 6000, **{"batch.size": 64 * 1024})
    # The oldest segments are copied, then deleted from S3 (DELETE_STARTED, objects, row), and
    # the log start moves up with them.
    part = wait_until(lambda: (lambda d: d if d["log_start_offset"] > 3000 and d["remote_segments"]["COPY_FINISHED"] > 0
                               and d["remote_segments"]["DELETE_STARTED"] == 0 else None)(partition_of(mk, t)),
                      "old segments deleted from S3", timeout=30)
    start = part["log_start_offset"]
    assert part["remote_size_bytes"] + part["size_bytes"] >= 2 * MB
    assert part["remote_log_start_offset"] == start or part["local_log_start_offset"] == start
    assert admin_get(mk, "/v1/tier")["deletes"]["done"] >= 1
    with mk.wire(1) as w:
        ((_, _, err, _, off),) = w.list_offsets(t, [(0, -2)])
        assert (err, off) == (0, start)
        (r,) = w.fetch(t, 0, 0)
        assert r["error"] == 1  # OFFSET_OUT_OF_RANGE: it is gone
    assert consume_all(mk.bootstrap, t, start, 6000 - start) == 6000 - start
    objects = admin_get(mk, "/v1/s3")["objects"]
    assert objects == 6 * partition_of(mk, t)["remote_segments"]["COPY_FINISHED"]

    # Deleting the topic deletes its remote segments: objects, then rows.
    assert ck_delete_topic(mk.bootstrap, t) is None
    wait_until(lambda: admin_get(mk, "/v1/s3")["objects"] == 0, "the deleted topic's objects removed")
    wait_until(lambda: admin_get(mk, "/v1/tier")["remote"]["segments"] == 0 and
               sum(admin_get(mk, "/v1/tier")["remote"]["by_state"].values()) == 0, "its metadata removed")


# ---------------------------------------------------------------------------------------------
# The scrubber covers the S3 copies (issue 13)
# ---------------------------------------------------------------------------------------------
def s3_objects(data_dir, bucket):
    """The bundled server's object files (src/s3d/store.c's layout): key -> (path, data start,
    data size)."""
    out = {}
    d = data_dir / "s3" / bucket
    for f in d.iterdir():
        if f.name.startswith("_"):
            continue
        with open(f, "rb") as fh:
            head = fh.read(65536)
        if head[:8] != b"MKS3OBJ1":
            continue
        h, = struct.unpack(">I", head[8:12])
        size, = struct.unpack(">Q", head[16:24])
        pos = 80
        n, = struct.unpack(">H", head[pos:pos + 2])
        pos += 2 + n
        n, = struct.unpack(">H", head[pos:pos + 2])
        key = head[pos + 2:pos + 2 + n].decode()
        out[key] = (f, h, size)
    return out


def remote_logs(data_dir, bucket, topic, ext=".log"):
    """The .log (or ext) objects of topic's partition 0, by start offset: start -> (key, path,
    h, size)."""
    logs = {}
    for key, (f, h, size) in s3_objects(data_dir, bucket).items():
        m = re.search(r"/%s-[^/]+/0/(\d{20})-[^/]+%s$" % (re.escape(topic), re.escape(ext)), key)
        if m:
            logs[int(m.group(1))] = (key, f, h, size)
    return logs


def object_data(f, h, size):
    with open(f, "rb") as fh:
        fh.seek(h)
        return fh.read(size)


def flip(f, pos):
    with open(f, "r+b") as fh:
        fh.seek(pos)
        b = fh.read(1)
        fh.seek(pos)
        fh.write(bytes([b[0] ^ 0x5A]))


def remote_integrity(mk):
    return admin_get(mk, "/v1/integrity")["remote"]


def events_of(mk, type_):
    req = urllib.request.Request(mk.admin_url + "/v1/events?type=" + type_, headers=mk.admin_headers())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["events"]


@pytest.mark.timeout(150)
def test_scrubber_checks_remote_copies(minikora, tmp_path, topic_name):
    data_dir = tmp_path / "data"
    mk = minikora("--brokers", "1", *FAST, "--set", "minikora.scrub.interval.ms=300",
                  "--set", "minikora.scrub.rate.bytes.per.sec=50000000", data_dir=data_dir, ephemeral=False)
    bucket = s3_of(mk)["bucket"]
    keep, gone = topic_name(), topic_name() + "-gone"
    # keep: its local segments stay (a day of local retention: the records are an hour old);
    # gone: FAST's second applies.
    assert ck_create_topic(mk.bootstrap, keep, 1, rf=1, config={"segment.bytes": str(256 * 1024),
                                                               "local.retention.ms": "86400000"}) is None
    assert ck_create_topic(mk.bootstrap, gone, 1, rf=1, config={"segment.bytes": str(256 * 1024)}) is None
    wait_topic_ready(mk.bootstrap, keep, 1)
    wait_topic_ready(mk.bootstrap, gone, 1)
    produce(mk.bootstrap, keep, 0, 2000)
    produce(mk.bootstrap, gone, 0, 2000)
    wait_until(lambda: partition_of(mk, keep)["remote_segments"]["COPY_FINISHED"] >= 4, "keep's segments copied")
    wait_until(lambda: partition_of(mk, gone)["local_log_start_offset"] > 1000, "gone's first segments deleted locally")

    # Sound copies are verified, and nothing is found.
    r = wait_until(lambda: (lambda x: x if x["segments_verified"] >= 8 else None)(remote_integrity(mk)),
                   "remote segments verified by the scrubber")
    assert r["checked"] and r["bytes_verified"] >= 8 * 200000 and r["corrupt"] == 0, r

    # A byte changed in keep's first S3 copy, behind minikora's back: found within the scrub
    # interval and uploaded again from the local copy, which is the same bytes as before.
    logs = remote_logs(data_dir, bucket, keep)
    assert 0 in logs, sorted(logs)
    key, f, h, size = logs[0]
    good = object_data(f, h, size)
    local = data_dir / "broker-1" / ("%s-0" % keep) / ("%020d.log" % 0)
    with open(local, "rb") as fh:
        assert fh.read(size) == good, "the S3 copy is not the local segment's bytes"
    t0 = time.monotonic()
    flip(f, h + 100)
    r = wait_until(lambda: (lambda x: x if x["reuploaded"] >= 1 else None)(remote_integrity(mk)),
                   "the corrupt S3 copy found and uploaded again", timeout=30)
    found_s = time.monotonic() - t0
    assert r["corrupt"] >= 1 and r["unrepairable"] == 0 and r["unrepairable_now"] == 0, r
    key2, f2, h2, size2 = remote_logs(data_dir, bucket, keep)[0]
    assert key2 == key and object_data(f2, h2, size2) == good, "the S3 copy is not good again"
    ev = [e for e in events_of(mk, "integrity_remote_fixed") if keep in e["message"]]
    assert ev and "offsets 0.." in ev[0]["message"], ev
    assert consume_all(mk.bootstrap, keep, 0, 2000) == 2000

    # A byte changed in the manifest of keep's second segment (in its cluster id, a field the
    # check does not compare): its bytes no longer have their ETag; uploaded again as well.
    second = sorted(remote_logs(data_dir, bucket, keep, ".manifest"))[1]
    key, f, h, size = remote_logs(data_dir, bucket, keep, ".manifest")[second]
    manifest = object_data(f, h, size)
    flip(f, h + manifest.index(b'"cluster_id": "') + 16)
    r = wait_until(lambda: (lambda x: x if x["reuploaded"] >= 2 else None)(remote_integrity(mk)),
                   "the corrupt manifest found and uploaded again", timeout=30)
    key2, f2, h2, size2 = remote_logs(data_dir, bucket, keep, ".manifest")[second]
    assert json.loads(object_data(f2, h2, size2))["cluster_id"] == json.loads(manifest)["cluster_id"]
    ev = [e for e in events_of(mk, "integrity_remote_fixed") if keep in e["message"]]
    assert len(ev) == 2 and "ETag" in ev[1]["message"], ev

    # The same in gone's first copy, whose local segment is deleted: reported, once.
    key, f, h, size = remote_logs(data_dir, bucket, gone)[0]
    assert not (data_dir / "broker-1" / ("%s-0" % gone) / ("%020d.log" % 0)).exists()
    flip(f, h + 100)
    r = wait_until(lambda: (lambda x: x if x["unrepairable"] >= 1 else None)(remote_integrity(mk)),
                   "the corrupt S3 copy without a local copy reported", timeout=30)
    assert r["unrepairable_now"] == 1 and r["reuploaded"] == 2, r
    ev = [e for e in events_of(mk, "integrity_remote_lost") if gone in e["message"]]
    assert len(ev) == 1 and "no local copy on any replica" in ev[0]["message"], ev
    passes = admin_get(mk, "/v1/integrity")["scrubber"]["passes"]
    wait_until(lambda: admin_get(mk, "/v1/integrity")["scrubber"]["passes"] >= passes + 2, "two more passes")
    r = remote_integrity(mk)
    assert r["unrepairable"] == 1 and r["unrepairable_now"] == 1, r   # counted and told once
    assert len([e for e in events_of(mk, "integrity_remote_lost") if gone in e["message"]]) == 1
    with urllib.request.urlopen(mk.admin_url + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert re.search(r"^minikora_scrub_remote_reuploads_total 2$", metrics, re.M), metrics[-3000:]
    assert re.search(r"^minikora_scrub_remote_unrepairable_total 1$", metrics, re.M)
    print("\nremote copy: corruption found and uploaded again in %.1f s" % found_s)


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------
def test_tiering_configs(cluster, topic_name):
    t = topic_name()
    assert ck_create_topic(cluster.bootstrap, t, 1, rf=1, config={"retention.ms": "60000"}) is None
    wait_topic_ready(cluster.bootstrap, t, 1)
    cfg = ck_describe_configs(cluster.bootstrap, "topic", t)
    assert cfg["remote.storage.enable"].value == "true"
    assert cfg["local.retention.ms"].value == "3600000"   # the broker default (60 s applies)
    assert cfg["local.retention.bytes"].value == "-2"
    bcfg = ck_describe_configs(cluster.bootstrap, "broker", "1")
    assert bcfg["remote.log.storage.system.enable"].value == "true"
    assert bcfg["log.local.retention.ms"].value == "3600000"
    # local above total, both given: refused (KIP-405); local within total: fine
    bad = ck_create_topic(cluster.bootstrap, topic_name(), 1, rf=1,
                          config={"retention.ms": "1000", "local.retention.ms": "5000"})
    assert bad is not None and bad.code() == ck.KafkaError.INVALID_CONFIG, bad
    assert ck_create_topic(cluster.bootstrap, topic_name(), 1, rf=1,
                           config={"retention.ms": "10000", "local.retention.ms": "5000",
                                   "remote.storage.enable": "false"}) is None
