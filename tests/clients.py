"""Client-side helpers shared by the integration tests: record generation, produce/consume with
confluent-kafka (librdkafka), kafka-python, kafkajs (through node scripts) and kcat, and the
check that a consumed partition is exactly what was produced, in order.

Every wait here is bounded; nothing sleeps to poll except where noted with a bounded loop.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic, ConfigResource

JS_DIR = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node") or "node"
KCAT = shutil.which("kcat") or "kcat"

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


# ---------------------------------------------------------------------------------------------
# librdkafka logs: a client talking to a misbehaving broker can log thousands of lines a
# second (one run produced 500 MB); route them through a logger that keeps the first few
# per test (conftest resets the count).
# ---------------------------------------------------------------------------------------------
class _CappedHandler(logging.Handler):
    limit = 40

    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record):
        self.count += 1
        if self.count <= self.limit:
            sys.stderr.write("librdkafka: %s\n" % record.getMessage())
        elif self.count == self.limit + 1:
            sys.stderr.write("librdkafka: (further log lines of this test suppressed)\n")


RDK_LOG = logging.getLogger("minikora.tests.librdkafka")
RDK_LOG.propagate = False
RDK_LOG.setLevel(logging.DEBUG)
_rdk_handler = _CappedHandler()
RDK_LOG.addHandler(_rdk_handler)


def reset_log_cap():
    _rdk_handler.count = 0


def rdk_conf(bootstrap, **extra):
    """Base confluent-kafka config: bootstrap servers plus the capped logger."""
    conf = {"bootstrap.servers": bootstrap, "logger": RDK_LOG}
    conf.update(extra)
    return conf


# ---------------------------------------------------------------------------------------------
# Records: the same deterministic generator is implemented in tests/js/produce.js
# ---------------------------------------------------------------------------------------------
def make_records(tag, n, partitions):
    """-> list of (partition, key, value, headers) with bytes key/value and (str, bytes) headers.
    Record i goes to partition i % partitions; values vary in size and are compressible."""
    out = []
    for i in range(n):
        key = ("%s-k%d" % (tag, i)).encode()
        value = ("%s|v%d|" % (tag, i) + "lorem-ipsum-" * (1 + i % 7)).encode()
        headers = [("idx", str(i).encode()), ("src", tag.encode())]
        out.append((i % partitions, key, value, headers))
    return out


def expected_by_partition(records):
    by = {}
    for p, k, v, h in records:
        by.setdefault(p, []).append((k, v, h))
    return by


def check_partitions(expected, got, what=""):
    """expected: {p: [(key, value, headers)]}; got: {p: [(offset, key, value, headers)]}.
    Asserts same content, same order, consecutive offsets, nothing extra."""
    for p, exp in sorted(expected.items()):
        g = got.get(p, [])
        assert len(g) == len(exp), "%s partition %d: got %d records, expected %d" % (
            what, p, len(g), len(exp))
        for i, ((k, v, h), (off, gk, gv, gh)) in enumerate(zip(exp, g)):
            gh = [(hk, bytes(hv) if hv is not None else None) for hk, hv in (gh or [])]
            if (k, v, list(h)) != (gk, gv, gh):
                raise AssertionError(
                    "%s partition %d record #%d (offset %d) differs:\n expected key=%r value=%r "
                    "headers=%r\n got      key=%r value=%r headers=%r"
                    % (what, p, i, off, k, v[:60], h, gk, (gv or b"")[:60], gh))
        offs = [o for o, *_ in g]
        assert offs == list(range(offs[0], offs[0] + len(offs))) if offs else True, \
            "%s partition %d: offsets not consecutive: %r..." % (what, p, offs[:20])
    extra = set(got) - set(expected)
    assert not any(got[p] for p in extra), "%s: records in unexpected partitions %r" % (what, extra)


# ---------------------------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# ---------------------------------------------------------------------------------------------
def ck_admin(bootstrap, **extra):
    return AdminClient(rdk_conf(bootstrap, **{"socket.timeout.ms": 10000, **extra}))


def ck_result(fut, timeout=30):
    """Wait for an admin future; return None on success or the KafkaError on failure."""
    try:
        fut.result(timeout=timeout)
        return None
    except ck.KafkaException as e:
        return e.args[0]


def ck_create_topic(bootstrap, name, partitions=1, rf=1, validate_only=False, config=None,
                    admin=None):
    admin = admin or ck_admin(bootstrap)
    futs = admin.create_topics([NewTopic(name, partitions, rf, config=config or {})],
                               validate_only=validate_only, operation_timeout=10,
                               request_timeout=30)
    return ck_result(futs[name])


# Note: an AdminClient must stay referenced until its futures are done; a temporary one is
# destroyed at once and its futures fail with _DESTROY.  Hence these wrappers.
def ck_delete_topic(bootstrap, name, timeout=30):
    admin = ck_admin(bootstrap)
    return ck_result(admin.delete_topics([name], operation_timeout=10)[name], timeout)


def ck_describe_configs(bootstrap, restype, name, timeout=30):
    """restype 'topic' or 'broker' -> {config name: ConfigEntry}; raises KafkaException."""
    admin = ck_admin(bootstrap)
    t = ConfigResource.Type.TOPIC if restype == "topic" else ConfigResource.Type.BROKER
    res = admin.describe_configs([ConfigResource(t, name)])
    return list(res.values())[0].result(timeout=timeout)


def ck_create_topics(bootstrap, new_topics, validate_only=False, timeout=30):
    """[NewTopic] -> {name: None or KafkaError}"""
    admin = ck_admin(bootstrap)
    futs = admin.create_topics(new_topics, validate_only=validate_only, operation_timeout=10,
                               request_timeout=timeout)
    return {n: ck_result(f, timeout) for n, f in futs.items()}


def create_topic_ok(bootstrap, name, partitions=1, config=None):
    err = ck_create_topic(bootstrap, name, partitions, config=config)
    assert err is None, "create topic %s failed: %s" % (name, err)
    wait_topic_ready(bootstrap, name, partitions)


def topic_metadata(bootstrap, name, admin=None, timeout=10):
    admin = admin or ck_admin(bootstrap)
    md = admin.list_topics(topic=name, timeout=timeout)
    return md.topics.get(name)


def wait_topic_ready(bootstrap, name, partitions, timeout=20):
    """Bounded wait until metadata shows `partitions` partitions, each with a live leader."""
    admin = ck_admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = admin.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        last = t
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader in md.brokers and p.error is None for p in t.partitions.values()):
            return md
        time.sleep(0.1)  # bounded by `timeout`
    raise AssertionError("topic %s not ready within %ds: %r" % (name, timeout, last and (
        last.error, {p: (m.leader, m.error) for p, m in last.partitions.items()})))


def wait_topic_gone(bootstrap, name, timeout=20):
    admin = ck_admin(bootstrap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10)
        if name not in md.topics:
            return
        time.sleep(0.1)  # bounded by `timeout`
    raise AssertionError("topic %s still listed %ds after delete" % (name, timeout))


def ck_produce(bootstrap, topic, records, codec="none", timestamps=None, **extra):
    """Produce (partition, key, value, headers) records; assert every one was acknowledged.
    Returns {partition: [offsets]} in produce order."""
    conf = {"bootstrap.servers": bootstrap, "logger": RDK_LOG, "compression.type": codec,
            "acks": "all", "linger.ms": 5, "enable.idempotence": False,
            "message.timeout.ms": 60000, "queue.buffering.max.messages": 200000}
    conf.update(extra)
    p = ck.Producer(conf)
    errors, offsets = [], {}

    def dr(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.setdefault(msg.partition(), []).append(msg.offset())

    for i, (part, k, v, h) in enumerate(records):
        kw = {"partition": part, "key": k, "value": v, "headers": h, "on_delivery": dr}
        if timestamps is not None:
            kw["timestamp"] = timestamps[i]
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    assert left == 0, "confluent-kafka: %d messages still in flight after 60 s" % left
    assert not errors, "confluent-kafka delivery errors (%d), first: %s" % (len(errors), errors[0])
    assert sum(len(v) for v in offsets.values()) == len(records)
    return offsets


def ck_consumer(bootstrap, **extra):
    # confluent-kafka 1.7 insists on a group.id; we never subscribe nor commit, only assign().
    conf = {"bootstrap.servers": bootstrap, "logger": RDK_LOG,
            "group.id": "mk-assign-" + uuid.uuid4().hex[:8],
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "enable.partition.eof": False,
            "fetch.wait.max.ms": 100}
    conf.update(extra)
    return ck.Consumer(conf)


def ck_close_bounded(consumer, secs=20):
    """Close a confluent-kafka consumer, waiting at most `secs`.  librdkafka's close can
    block for good when its group was deleted under it (a known client-side hang, e.g.
    librdkafka issues #1002 and #3143); the broker's part is checked by the caller, so a
    consumer still closing after `secs` is left to the process exit.  Returns whether it
    closed."""
    t = threading.Thread(target=consumer.close, daemon=True)
    t.start()
    t.join(secs)
    if t.is_alive():
        print("note: consumer close still blocked after %d s; left to the process exit" % secs)
        return False
    return True


def ck_consume(bootstrap, topic, counts, timeout=60, start=ck.OFFSET_BEGINNING, **extra):
    """Consume from partitions in `counts` ({p: n}) until n records each (or timeout).
    Returns {p: [(offset, key, value, headers)]}; callers assert on the counts."""
    c = ck_consumer(bootstrap, **extra)
    try:
        starts = start if isinstance(start, dict) else {p: start for p in counts}
        c.assign([ck.TopicPartition(topic, p, starts[p]) for p in counts])
        got = {p: [] for p in counts}
        deadline = time.monotonic() + timeout
        errs = []
        while time.monotonic() < deadline and any(len(got[p]) < n for p, n in counts.items()):
            for m in c.consume(num_messages=5000, timeout=0.5):
                if m.error():
                    errs.append(m.error())
                    continue
                got[m.partition()].append((m.offset(), m.key(), m.value(), m.headers()))
        assert not [e for e in errs if e.code() != ck.KafkaError._PARTITION_EOF], \
            "consume errors: %s" % errs[:5]
        return got
    finally:
        c.close()


def ck_watermarks(bootstrap, topic, partition, timeout=10):
    c = ck_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(ck.TopicPartition(topic, partition), timeout=timeout,
                                       cached=False)
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------------------------
def kp_servers(bootstrap):
    return bootstrap.split(",")


def kp_produce(bootstrap, topic, records, codec="none", timestamps=None):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=kp_servers(bootstrap),
                      compression_type=None if codec == "none" else codec, acks="all",
                      linger_ms=5, batch_size=64 * 1024, request_timeout_ms=30000,
                      max_block_ms=30000, retries=0)
    try:
        futs = []
        for i, (part, k, v, h) in enumerate(records):
            futs.append(p.send(topic, key=k, value=v, headers=h, partition=part,
                               timestamp_ms=None if timestamps is None else timestamps[i]))
        p.flush(timeout=60)
        offsets = {}
        for f in futs:
            md = f.get(timeout=30)
            offsets.setdefault(md.partition, []).append(md.offset)
        return offsets
    finally:
        p.close(timeout=10)


def kp_consume(bootstrap, topic, counts, timeout=60):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=kp_servers(bootstrap), group_id=None,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      fetch_max_wait_ms=100, request_timeout_ms=30000)
    try:
        tps = [TopicPartition(topic, p) for p in counts]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = {p: [] for p in counts}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(len(got[p]) < n for p, n in counts.items()):
            for tp, msgs in c.poll(timeout_ms=500, max_records=10000).items():
                for m in msgs:
                    got[tp.partition].append((m.offset, m.key, m.value, list(m.headers)))
        return got
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# kafkajs (node) and kcat
# ---------------------------------------------------------------------------------------------
def node_available():
    return (JS_DIR / "node_modules" / "kafkajs").is_dir() and shutil.which("node") is not None


def run_node(script, *args, timeout=120):
    """Run tests/js/<script> and return the JSON object it prints last on stdout."""
    env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
    r = subprocess.run([NODE, str(JS_DIR / script)] + [str(a) for a in args], cwd=str(JS_DIR),
                       capture_output=True, timeout=timeout, env=env)
    out = r.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        res = json.loads(out[-1]) if out else None
    except ValueError:
        res = None
    if res is None:
        raise AssertionError("node %s %s: rc=%d, no JSON result\nstdout: %s\nstderr: %s" % (
            script, " ".join(map(str, args)), r.returncode, r.stdout[-2000:],
            r.stderr[-4000:].decode("utf-8", "replace")))
    res["_stderr"] = r.stderr.decode("utf-8", "replace")[-4000:]
    res["_rc"] = r.returncode
    return res


def js_admin(bootstrap, op, *args, timeout=60):
    """tests/js/admin.js: {'ok': true, 'result': ...} or {'ok': false, 'error': {...}}."""
    return run_node("admin.js", bootstrap, op, json.dumps(list(args)), timeout=timeout)


def js_produce(bootstrap, topic, count, partitions, codec, tag, timeout=120):
    res = run_node("produce.js", "--bootstrap", bootstrap, "--topic", topic, "--count", count,
                   "--partitions", partitions, "--codec", codec, "--tag", tag, timeout=timeout)
    assert res.get("ok"), "kafkajs produce failed: %s\n%s" % (res.get("error"), res["_stderr"])
    return res


def kcat(*args, input=None, timeout=60, check=True):
    r = subprocess.run([KCAT] + [str(a) for a in args], input=input, capture_output=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("kcat %s: rc=%d\nstderr: %s" % (
            " ".join(map(str, args)), r.returncode, r.stderr.decode("utf-8", "replace")[-3000:]))
    return r
