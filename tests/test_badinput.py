"""Bad input on raw sockets.  The broker must never crash, hang or harm stored data: every
malformed request gets a Kafka error or a closed connection.  After each case the process is
alive and a normal client on another connection still works.

Raw requests are built with tests/kwire.py; the static frames in testdata/frames/*.bin (made by
tests/gen_frames.py) are replayed too.
"""

import random
import socket
import struct
import time
from pathlib import Path

import pytest
import confluent_kafka as ck

import kwire
from kwire import i16, i32, i64, string, frame, request_header
from clients import ck_admin, ck_watermarks, create_topic_ok

FRAMES = Path(__file__).resolve().parent.parent / "testdata" / "frames"
DEFAULT_MAX_REQUEST = 104857600
RESOLVE_TIMEOUT = 5.0


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def healthy(cluster, what=""):
    """Process alive, every broker answers ApiVersions on a new connection, and a real client
    gets full metadata."""
    cluster.assert_alive(what)
    for host, port in cluster.brokers:
        with kwire.Conn(host, port, timeout=10) as c:
            err, apis = c.api_versions(0)
            assert err == 0 and kwire.METADATA in apis, (what, err)
    md = ck_admin(cluster.bootstrap).list_topics(timeout=10)
    assert len(md.brokers) == 6, (what, md.brokers)
    cluster.assert_alive(what)


def send_quiet(conn, data):
    """sendall that tolerates the server having closed already."""
    try:
        conn.send(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def outcome(conn, timeout=RESOLVE_TIMEOUT):
    """What the server did within `timeout`: 'closed' (EOF or reset before any byte),
    'response' (some bytes arrived) or 'hang' (nothing at all)."""
    conn.sock.settimeout(timeout)
    try:
        chunk = conn.sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        return "hang"
    return "response" if chunk else "closed"


def first_response(conn, timeout=RESOLVE_TIMEOUT):
    """The first response frame payload, or None if the server closed the connection."""
    try:
        return conn.recv_frame(timeout)
    except kwire.Closed:
        return None


def rejected(cluster, data, broker=0, allow_response=True, timeout=RESOLVE_TIMEOUT):
    """Send `data` on a fresh connection; the server must close it (or, if allowed, answer)
    within `timeout`: a silent hang fails.  Then the cluster must be healthy."""
    host, port = cluster.brokers[broker]
    with kwire.Conn(host, port) as c:
        send_quiet(c, data)
        res = outcome(c, timeout)
    allowed = ("closed", "response") if allow_response else ("closed",)
    assert res in allowed, "server reaction %r to %r..., expected one of %r" % (
        res, data[:40], allowed)
    healthy(cluster, "sending %r..." % data[:40])
    return res


@pytest.fixture
def topic(cluster):
    t = "badinput-%d" % time.time_ns()
    create_topic_ok(cluster.bootstrap, t, 1)
    return t


def leader_of(cluster, topic, partition=0):
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        md = c.metadata([topic])
    leader = [p["leader"] for p in md["topics"][0]["partitions"] if p["index"] == partition][0]
    b = [b for b in md["brokers"] if b["node_id"] == leader][0]
    return b["host"], b["port"]


def latest(cluster, topic, partition=0):
    return ck_watermarks(cluster.bootstrap, topic, partition)[1]


# ---------------------------------------------------------------------------------------------
# framing
# ---------------------------------------------------------------------------------------------
def test_truncated_frame_then_close(cluster):
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        c.send(i32(100) + b"\x00\x12\x00\x00" + b"x" * 6)
    healthy(cluster)


def test_length_lies_bigger_than_sent(cluster):
    """The header promises 1000 bytes, 24 arrive, the client closes: the broker must just drop
    the connection.  While the half frame is pending, other connections are served."""
    host, port = cluster.brokers[0]
    body = request_header(kwire.API_VERSIONS, 0, 1)
    with kwire.Conn(host, port) as c:
        c.send(i32(1000) + body)
        assert outcome(c, 1.0) == "hang"  # it is waiting for the rest: correct
        healthy(cluster, "half frame pending")
    healthy(cluster, "half frame then close")


def test_frame_shorter_than_header(cluster):
    for n in (0, 1, 2, 3, 5, 7):
        rejected(cluster, i32(n) + b"\x00" * n, allow_response=False)


def test_truncated_request_body(cluster):
    # Metadata v1 says 3 topics, carries one
    body = i32(3) + string("only-one")
    rejected(cluster, kwire.request(kwire.METADATA, 1, 7, body))
    # client id longer than the frame
    hdr = i16(kwire.METADATA) + i16(1) + i32(8) + i16(500) + b"abc"
    rejected(cluster, frame(hdr))
    # ApiVersions v3 (flexible) with a compact string length past the end
    body = kwire.uvarint(1000) + b"abc"
    rejected(cluster, kwire.request(kwire.API_VERSIONS, 3, 9, body, flexible=True))


def test_byte_at_a_time(cluster):
    """A valid request trickled one byte at a time still gets its answer (resumable framing)."""
    host, port = cluster.brokers[0]
    req = kwire.request(kwire.API_VERSIONS, 0, 42, b"")
    with kwire.Conn(host, port) as c:
        for b in req:
            c.send(bytes([b]))
            time.sleep(0.01)
        payload = c.recv_frame(10)
    assert struct.unpack(">i", payload[:4])[0] == 42
    err, apis = kwire.parse_api_versions_v0(payload[4:])
    assert err == 0 and apis


def test_two_requests_in_one_segment(cluster):
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        c.send(kwire.request(kwire.API_VERSIONS, 0, 1, b"") +
               kwire.request(kwire.API_VERSIONS, 1, 2, b""))
        ids = [struct.unpack(">i", c.recv_frame(10)[:4])[0] for _ in range(2)]
    assert ids == [1, 2], "responses out of order or missing: %r" % ids


@pytest.mark.parametrize("length", [-1, -2, -(1 << 31)], ids=["-1", "-2", "INT_MIN"])
def test_negative_length(cluster, length):
    rejected(cluster, i32(length) + b"\x00" * 16, allow_response=False)


def test_length_over_socket_request_max_bytes(cluster):
    """One byte over socket.request.max.bytes (default 104857600): closed, nothing allocated."""
    host, port = cluster.brokers[0]
    before = cluster.vm_status()
    with kwire.Conn(host, port) as c:
        send_quiet(c, i32(DEFAULT_MAX_REQUEST + 1) + request_header(kwire.API_VERSIONS, 0, 1))
        assert outcome(c) == "closed"
    after = cluster.vm_status()
    grew = (after["VmPeak"] - before["VmPeak"]) // 1024
    assert grew < 64, "VmPeak grew by %d MiB after a rejected %d-byte frame header" % (
        grew, DEFAULT_MAX_REQUEST + 1)
    healthy(cluster)


def test_length_int_max(cluster):
    host, port = cluster.brokers[0]
    before = cluster.vm_status()
    with kwire.Conn(host, port) as c:
        send_quiet(c, i32(0x7FFFFFFF) + b"\x00\x12\x00\x00")
        assert outcome(c) == "closed"
    after = cluster.vm_status()
    grew = (after["VmPeak"] - before["VmPeak"]) // 1024
    assert grew < 512, "VmPeak grew by %d MiB after a 2 GiB frame header" % grew
    healthy(cluster)


def test_small_socket_request_max_bytes(minikora):
    """--set socket.request.max.bytes=4096: a 4000-byte request is served, 5000 is refused."""
    mk = minikora("--set", "socket.request.max.bytes=4096")
    host, port = mk.brokers[0]
    names = ["t%04d-%s" % (i, "x" * 40) for i in range(200)]

    def metadata_req(n_topics):
        return kwire.request(kwire.METADATA, 4, 5,
                             kwire.metadata_body(4, names[:n_topics], False))
    n = 1
    while len(metadata_req(n + 1)) - 4 <= 4000:
        n += 1
    ok_req, big_req = metadata_req(n), metadata_req(n + 20)
    assert len(ok_req) - 4 <= 4096 < len(big_req) - 4
    with kwire.Conn(host, port) as c:
        c.send(ok_req)
        assert first_response(c) is not None, "request under the limit was not answered"
    with kwire.Conn(host, port) as c:
        send_quiet(c, big_req)
        assert outcome(c) == "closed"
    healthy(mk)


# ---------------------------------------------------------------------------------------------
# API keys and versions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [9999, 32767, -1, 1000])
def test_unknown_api_key(cluster, key):
    data = frame(i16(key) + i16(0) + i32(5) + string("kwire") + b"\x00" * 8)
    res = rejected(cluster, data)
    assert res in ("closed", "response")


def test_unsupported_version_of_known_api(cluster):
    rejected(cluster, kwire.request(kwire.METADATA, 999, 3, kwire.metadata_body(1)))
    rejected(cluster, kwire.request(kwire.PRODUCE, -5, 3, b""))


@pytest.mark.parametrize("version", [127, 5, 32767])
def test_api_versions_unsupported_version(cluster, version):
    """Kafka answers an ApiVersions request of a version it does not know with a v0-format
    response: UNSUPPORTED_VERSION (35) and the list of supported APIs; the connection stays
    usable so the client can retry with a version from that list."""
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        c.send(kwire.request(kwire.API_VERSIONS, version, 77,
                             kwire.compact_string("x") + kwire.compact_string("1") + b"\x00",
                             flexible=True))
        payload = first_response(c)
        assert payload is not None, "connection closed instead of an UNSUPPORTED_VERSION answer"
        assert struct.unpack(">i", payload[:4])[0] == 77
        err, apis = kwire.parse_api_versions_v0(payload[4:])
        assert err == kwire.UNSUPPORTED_VERSION, err
        assert kwire.API_VERSIONS in apis and kwire.METADATA in apis, apis
        # same connection, supported version
        err, apis = c.api_versions(0)
        assert err == 0
    healthy(cluster)


# ---------------------------------------------------------------------------------------------
# Produce with bad batches
# ---------------------------------------------------------------------------------------------
def produce_raw(cluster, topic, batch):
    host, port = leader_of(cluster, topic)
    with kwire.Conn(host, port) as c:
        c.send(kwire.request(kwire.PRODUCE, 7, 11, kwire.produce_body(7, topic, 0, batch)))
        payload = first_response(c, 15)
    if payload is None:
        return None
    assert struct.unpack(">i", payload[:4])[0] == 11
    ((name, part, err, base),) = kwire.parse_produce(7, payload[4:])
    return err


def good_batch(n=3, size=10):
    return kwire.record_batch([(b"k%d" % i, b"v" * size, [("h", b"x")]) for i in range(n)])


def test_valid_raw_produce(cluster, topic):
    before = latest(cluster, topic)
    assert produce_raw(cluster, topic, good_batch()) == 0
    assert latest(cluster, topic) == before + 3


@pytest.mark.parametrize("where", ["crc_field", "payload", "last_byte"])
def test_corrupt_crc(cluster, topic, where):
    before = latest(cluster, topic)
    b = good_batch()
    idx = {"crc_field": kwire.CRC_OFFSET + 1, "payload": 40, "last_byte": len(b) - 1}[where]
    err = produce_raw(cluster, topic, kwire.flip_byte(b, idx))
    assert err == kwire.CORRUPT_MESSAGE, "flipped %s: error %r, expected CORRUPT_MESSAGE (2)" % (
        where, err)
    assert latest(cluster, topic) == before, "log changed after a corrupt batch"
    assert produce_raw(cluster, topic, good_batch()) == 0  # and the partition still works
    assert latest(cluster, topic) == before + 3
    healthy(cluster)


def fixup(batch):
    """Recompute batchLength and CRC after a test edited the batch."""
    batch = batch[:8] + i32(len(batch) - 12) + batch[12:]
    body = batch[kwire.CRC_OFFSET + 4:]
    return batch[:kwire.CRC_OFFSET] + kwire.u32(kwire.crc32c(body)) + body


BAD_BATCHES = {
    # valid CRC, record count lies (1000 declared, 3 present)
    "count_lies": lambda: kwire.record_batch([(b"k", b"v", [])] * 3, record_count=1000),
    "count_negative": lambda: kwire.record_batch([(b"k", b"v", [])], record_count=-5),
    # batchLength bigger / smaller than the bytes sent
    "batch_length_big": lambda: (lambda b: b[:8] + i32(len(b) + 100) + b[12:])(good_batch()),
    "batch_length_small": lambda: (lambda b: b[:8] + i32(20) + b[12:])(good_batch()),
    # magic 1 and 7 in an otherwise v2 batch (the CRC does not cover the magic byte)
    "magic_1": lambda: (lambda b: b[:16] + b"\x01" + b[17:])(good_batch()),
    "magic_7": lambda: (lambda b: b[:16] + b"\x07" + b[17:])(good_batch()),
    # compression codec 7 (does not exist) / gzip flag on plain records
    "codec_7": lambda: kwire.record_batch([(b"k", b"v", [])], attributes=7),
    "gzip_not_gzip": lambda: kwire.record_batch([(b"k", b"v", [])], attributes=1),
    "zstd_not_zstd": lambda: kwire.record_batch([(b"k", b"v" * 50, [])], attributes=4),
    # a record whose varint length runs past the batch (CRC valid)
    "record_len_lies": lambda: fixup(
        good_batch()[:61] + kwire.varint(5000) + good_batch()[62:]),
    # only a batch header, no records section at all
    "header_only": lambda: good_batch()[:30],
    # a batch of zero records (lastOffsetDelta -1 style), CRC valid
    "zero_records": lambda: kwire.record_batch([]),
    # a valid batch followed by trailing garbage (not a second batch)
    "trailing_garbage": lambda: good_batch() + b"\x01\x02\x03",
    # empty / null records
    "empty_bytes": lambda: b"",
    "null_records": lambda: None,
}


@pytest.mark.parametrize("kind", sorted(BAD_BATCHES))
def test_invalid_batches(cluster, topic, kind):
    before = latest(cluster, topic)
    err = produce_raw(cluster, topic, BAD_BATCHES[kind]())
    assert err is None or err != 0, "%s was accepted" % kind
    assert latest(cluster, topic) == before, "log changed after an invalid batch (%s)" % kind
    healthy(cluster, kind)


def test_message_too_large_default(cluster, topic):
    """Default max.message.bytes (Kafka: 1048588): a 1.2 MB batch -> MESSAGE_TOO_LARGE (10)."""
    before = latest(cluster, topic)
    batch = kwire.record_batch([(b"big", b"\x00" * (1200 * 1024), [])])
    assert produce_raw(cluster, topic, batch) == kwire.MESSAGE_TOO_LARGE
    assert latest(cluster, topic) == before
    healthy(cluster)


@pytest.mark.parametrize("how", ["set-message.max.bytes", "set-max.message.bytes",
                                 "topic-config"])
def test_message_too_large_configured(minikora, how):
    """The limit set three ways: broker name, topic name (both accepted by --set per the
    contract) and the topic-level config at creation."""
    args = {"set-message.max.bytes": ["--set", "message.max.bytes=2000"],
            "set-max.message.bytes": ["--set", "max.message.bytes=2000"]}.get(how, [])
    mk = minikora(*args)
    t = "toolarge-%d" % time.time_ns()
    create_topic_ok(mk.bootstrap, t, 1,
                    config={"max.message.bytes": "2000"} if how == "topic-config" else None)
    small = kwire.record_batch([(b"k", b"v" * 1000, [])])
    big = kwire.record_batch([(b"k", b"v" * 3000, [])])
    assert len(small) < 2000 < len(big)
    assert produce_raw(mk, t, small) == 0
    assert produce_raw(mk, t, big) == kwire.MESSAGE_TOO_LARGE
    assert ck_watermarks(mk.bootstrap, t, 0) == (0, 1)
    healthy(mk)


def test_produce_acks_invalid(cluster, topic):
    host, port = leader_of(cluster, topic)
    with kwire.Conn(host, port) as c:
        c.send(kwire.request(kwire.PRODUCE, 7, 12,
                             kwire.produce_body(7, topic, 0, good_batch(), acks=5)))
        payload = first_response(c)
    if payload is not None:
        ((_, _, err, _),) = kwire.parse_produce(7, payload[4:])
        assert err == kwire.INVALID_REQUIRED_ACKS, err
    healthy(cluster)


# ---------------------------------------------------------------------------------------------
# huge array counts
# ---------------------------------------------------------------------------------------------
HUGE = [
    ("metadata_topics", lambda: kwire.request(kwire.METADATA, 1, 1, i32(0x7FFFFFFF))),
    ("metadata_topics_v4", lambda: kwire.request(kwire.METADATA, 4, 1, i32(0x40000000) + b"\x01")),
    ("create_topics", lambda: kwire.request(kwire.CREATE_TOPICS, 2, 1, i32(0x7FFFFFFF))),
    ("create_topics_assignments", lambda: kwire.request(
        kwire.CREATE_TOPICS, 2, 1, i32(1) + string("x") + i32(1) + i16(1) + i32(0x7FFFFFFF))),
    ("produce_topics", lambda: kwire.request(
        kwire.PRODUCE, 7, 1, string(None) + i16(1) + i32(1000) + i32(0x3FFFFFFF))),
    ("produce_partitions", lambda: kwire.request(
        kwire.PRODUCE, 7, 1, string(None) + i16(1) + i32(1000) + i32(1) + string("t")
        + i32(0x7FFFFFFF))),
    ("produce_records_len", lambda: kwire.request(
        kwire.PRODUCE, 7, 1, string(None) + i16(1) + i32(1000) + i32(1) + string("t") + i32(1)
        + i32(0) + i32(0x7FFFFFF0))),
    ("list_offsets", lambda: kwire.request(kwire.LIST_OFFSETS, 1, 1, i32(-1) + i32(0x7FFFFFFF))),
    ("delete_topics", lambda: kwire.request(kwire.DELETE_TOPICS, 1, 1, i32(0x7FFFFFFF)
                                            + i32(1000))),
    ("api_versions_v3_compact", lambda: kwire.request(
        kwire.API_VERSIONS, 3, 1, kwire.uvarint(0x7FFFFFFF) + b"ab", flexible=True)),
    ("flexible_tag_count", lambda: kwire.request(
        kwire.API_VERSIONS, 3, 1, kwire.compact_string("a") + kwire.compact_string("b")
        + kwire.uvarint(0xFFFFFFF), flexible=False)),
    ("header_tag_size", lambda: frame(
        i16(kwire.API_VERSIONS) + i16(3) + i32(1) + string("c") + b"\x01\x00"
        + kwire.uvarint(0x7FFFFFFF))),
    ("varint_too_long", lambda: kwire.request(
        kwire.API_VERSIONS, 3, 1, b"\xff" * 12, flexible=True)),
]


@pytest.mark.parametrize("name,make", HUGE, ids=[n for n, _ in HUGE])
def test_huge_array_counts(cluster, name, make):
    before = cluster.vm_status()
    rejected(cluster, make())
    after = cluster.vm_status()
    grew = (after["VmPeak"] - before["VmPeak"]) // 1024
    assert grew < 256, "%s: VmPeak grew by %d MiB" % (name, grew)


# ---------------------------------------------------------------------------------------------
# garbage
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,data", [
    ("http_get", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("tls_client_hello", bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) * 5),
    ("zeros", b"\x00" * 4096),
    ("ones", b"\xff" * 4096),
], ids=lambda x: x if isinstance(x, str) else "")
def test_garbage_stream(cluster, name, data):
    rejected(cluster, data)


@pytest.mark.timeout(120)
def test_random_frames(cluster):
    """300 seeded random frames, each with a plausible header (a supported api key, a version in
    its range) and random body bytes, each on a fresh connection, to all 6 brokers."""
    rng = random.Random(20240611)
    host0, port0 = cluster.brokers[0]
    with kwire.Conn(host0, port0) as c:
        _, apis = c.api_versions(0)
    keys = sorted(apis)
    hangs = []
    for i in range(300):
        key = rng.choice(keys)
        lo, hi = apis[key]
        ver = rng.randint(lo, hi)
        flexible = rng.random() < 0.5
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
        data = kwire.request(key, ver, i, body, flexible=flexible)
        host, port = cluster.brokers[i % len(cluster.brokers)]
        with kwire.Conn(host, port) as c:
            send_quiet(c, data)
            res = outcome(c, 0.5 if key == kwire.PRODUCE else 2.0)
        if res == "hang" and key != kwire.PRODUCE:  # Produce acks=0 legitimately stays silent
            hangs.append((key, ver, body[:16].hex()))
        cluster.assert_alive("random frame #%d (key %d v%d)" % (i, key, ver))
    healthy(cluster, "random frames")
    assert not hangs, "%d random frames got neither an answer nor a close, e.g. %r" % (
        len(hangs), hangs[:3])


def test_random_bytes_stream(cluster):
    rng = random.Random(7)
    for broker in range(len(cluster.brokers)):
        data = bytes(rng.getrandbits(8) for _ in range(65536))
        host, port = cluster.brokers[broker]
        with kwire.Conn(host, port) as c:
            send_quiet(c, data)
            c.wait_closed(0.5)
    healthy(cluster, "random byte streams")


# ---------------------------------------------------------------------------------------------
# connection behaviour
# ---------------------------------------------------------------------------------------------
def test_close_with_responses_pending(cluster):
    """Pipeline 200 Metadata requests and reset the connection without reading: the broker
    writes into a dead socket (EPIPE / ECONNRESET; a broker that does not ignore SIGPIPE dies)."""
    for host, port in cluster.brokers:
        c = kwire.Conn(host, port)
        c.send(b"".join(kwire.request(kwire.METADATA, 1, i, i32(-1)) for i in range(200)))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    time.sleep(0.5)  # give the broker time to write into the dead sockets
    healthy(cluster, "closing with responses pending")


def test_many_connections(cluster):
    conns = []
    try:
        for i in range(300):
            host, port = cluster.brokers[i % 6]
            conns.append(kwire.Conn(host, port))
        for c in conns[::10]:
            err, _ = c.api_versions(0)
            assert err == 0
    finally:
        for c in conns:
            c.close()
    healthy(cluster, "300 connections")


# ---------------------------------------------------------------------------------------------
# static frames in testdata/frames
# ---------------------------------------------------------------------------------------------
STATIC = sorted(FRAMES.glob("*.bin")) if FRAMES.is_dir() else []


@pytest.mark.skipif(not STATIC, reason="no testdata/frames/*.bin")
@pytest.mark.parametrize("path", STATIC, ids=[p.stem for p in STATIC])
def test_static_frame(cluster, path):
    """ok_*.bin must be answered; every other frame must be answered or closed."""
    data = path.read_bytes()
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        send_quiet(c, data)
        if path.stem.startswith("ok_"):
            assert first_response(c) is not None, "%s not answered" % path.name
        else:
            assert outcome(c) in ("closed", "response"), "%s: silent hang" % path.name
    healthy(cluster, path.name)
