"""kwire -- a tiny hand-rolled Kafka wire helper for the bad-input and raw-protocol tests.

Everything here is built with struct.pack on purpose: the tests must be able to send bytes that
no real client would ever send (lying lengths, flipped CRCs, absurd array counts).  Only the few
request/response shapes the tests need are implemented:

  * primitives: int8..int64, (nullable) strings, bytes, varints, compact (flexible) forms
  * request header v1 (non-flexible) and v2 (flexible, with an empty tagged-field section)
  * frames: int32 big-endian size + payload
  * record batches, magic v2, with a real CRC32C (pure Python, table driven), optionally
    idempotent/transactional (producer id, epoch, base sequence); batch decoders
  * ApiVersions (any version; v0 body parsing), Metadata v1..v8, Produce v3..v8 (optionally
    with a transactional id), Fetch v4..v11 (isolation level, rack), ListOffsets v1..v5 and v7
    (flexible; needed for MAX_TIMESTAMP = -3), DescribeCluster, FindCoordinator v0..v4
  * group APIs (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
    DescribeGroups, ListGroups, DeleteGroups, OffsetDelete) and the consumer protocol's
    subscription/assignment; transaction APIs (InitProducerId, DescribeProducers,
    ListTransactions, DescribeTransactions); OffsetForLeaderEpoch v3
  * SASL PLAIN login (SaslHandshake v1 + SaslAuthenticate v1), CreateTopics v4 and v5+ (flexible),
    DeleteTopics v4+ by name, the client quota APIs (DescribeClientQuotas, AlterClientQuotas v0/v1)
  * KIP-848 consumer groups: ConsumerGroupHeartbeat v0/v1, ConsumerGroupDescribe v0,
    OffsetCommit v9 (member epoch), ListGroups v5 (types filter)
  * the admin APIs of issue 15 (flexible versions): IncrementalAlterConfigs, AlterConfigs v2,
    DescribeConfigs v4, DeleteRecords v2, ElectLeaders v2, ListPartitionReassignments v0,
    DescribeLogDirs v4, DescribeTopicPartitions v0, GetTelemetrySubscriptions / PushTelemetry v0
  * the API keys and error codes the tests use, with ename(code) for messages

This is the one home of raw wire helpers; groups_util / txn_util / repl_util keep only what is
specific to their area (client-driven members, transactional clients, replica files, waits).

The module is stdlib-only so it can also be used from a REPL against a running broker:

    >>> import kwire; c = kwire.Conn("127.0.0.1", 9092); c.api_versions()
"""

import socket
import struct
import time

# ---------------------------------------------------------------------------------------------
# API keys and error codes used by the tests (Kafka's numbering)
# ---------------------------------------------------------------------------------------------
PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
INIT_PRODUCER_ID = 22
OFFSET_FOR_LEADER_EPOCH = 23
DESCRIBE_CONFIGS = 32
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
DESCRIBE_CLIENT_QUOTAS = 48
ALTER_CLIENT_QUOTAS = 49
DELETE_GROUPS = 42
OFFSET_DELETE = 47
DESCRIBE_CLUSTER = 60
DESCRIBE_PRODUCERS = 61
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66
DELETE_RECORDS = 21
ALTER_CONFIGS = 33
DESCRIBE_LOG_DIRS = 35
CREATE_PARTITIONS = 37
ELECT_LEADERS = 43
ALTER_PARTITION_REASSIGNMENTS = 45
LIST_PARTITION_REASSIGNMENTS = 46
INCREMENTAL_ALTER_CONFIGS = 44
GET_TELEMETRY_SUBSCRIPTIONS = 71
PUSH_TELEMETRY = 72
DESCRIBE_TOPIC_PARTITIONS = 75
CONSUMER_GROUP_HEARTBEAT = 68
CONSUMER_GROUP_DESCRIBE = 69

_NOT_ERRORS = set(globals())
NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_FETCH_SIZE = 4
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6
MESSAGE_TOO_LARGE = 10
OFFSET_METADATA_TOO_LARGE = 12
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_TOPIC_EXCEPTION = 17
RECORD_LIST_TOO_LARGE = 18
INVALID_REQUIRED_ACKS = 21
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
CLUSTER_AUTHORIZATION_FAILED = 31
UNSUPPORTED_VERSION = 35
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REQUEST = 42
POLICY_VIOLATION = 44
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
CONCURRENT_TRANSACTIONS = 51
SASL_AUTHENTICATION_FAILED = 58
UNKNOWN_PRODUCER_ID = 59
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
TOPIC_AUTHORIZATION_FAILED = 29
INVALID_CONFIG = 40
INVALID_REPLICA_ASSIGNMENT = 39
REASSIGNMENT_IN_PROGRESS = 60
UNSUPPORTED_COMPRESSION_TYPE = 76
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
NO_REASSIGNMENT_IN_PROGRESS = 85
NOT_ENOUGH_REPLICAS = 19
FENCED_INSTANCE_ID = 82
GROUP_SUBSCRIBED_TO_TOPIC = 86
INVALID_RECORD = 87
THROTTLING_QUOTA_EXCEEDED = 89
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105
GROUP_AUTHORIZATION_FAILED = 30
GROUP_MAX_SIZE_REACHED = 81
FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111
UNSUPPORTED_ASSIGNOR = 112
STALE_MEMBER_EPOCH = 113
INVALID_REGULAR_EXPRESSION = 128

# {code: name} of every error code above (the names between _NOT_ERRORS and here)
ERROR_NAMES = {v: k for k, v in list(globals().items())
               if k.isupper() and not k.startswith("_") and k not in _NOT_ERRORS}


def ename(code):
    """'NAME(code)' for an error code ('?(code)' if unknown)."""
    return "%s(%d)" % (ERROR_NAMES.get(code, "?"), code)

EARLIEST = -2
LATEST = -1
MAX_TIMESTAMP = -3


# ---------------------------------------------------------------------------------------------
# Primitive encoders
# ---------------------------------------------------------------------------------------------
def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def u32(v):
    return struct.pack(">I", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def string(s):
    """Classic STRING / NULLABLE_STRING (int16 length, -1 = null)."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def bytes_(b):
    """Classic BYTES / NULLABLE_BYTES (int32 length, -1 = null)."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc=None):
    """Classic ARRAY (int32 count).  `items` are already-encoded bytes unless `enc` is given."""
    if items is None:
        return i32(-1)
    items = list(items)
    return i32(len(items)) + b"".join(enc(x) if enc else x for x in items)


def uvarint(v):
    out = bytearray()
    v &= 0xFFFFFFFFFFFFFFFF
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    """Zig-zag signed varint (records use this for lengths, deltas, ...)."""
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s):
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def compact_array(items, enc=None):
    if items is None:
        return uvarint(0)
    items = list(items)
    return uvarint(len(items) + 1) + b"".join(enc(x) if enc else x for x in items)


TAGS = b"\x00"  # an empty tagged-field section


# ---------------------------------------------------------------------------------------------
# Decoder
# ---------------------------------------------------------------------------------------------
class Reader:
    """A bounds-checked cursor over a response body; raises ValueError past the end."""

    def __init__(self, data, pos=0):
        self.data = bytes(data)
        self.pos = pos

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("short read: want %d at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _s(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def i8(self):
        return self._s(">b", 1)

    def i16(self):
        return self._s(">h", 2)

    def i32(self):
        return self._s(">i", 4)

    def i64(self):
        return self._s(">q", 8)

    def boolean(self):
        return self.i8() != 0

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode("utf-8", "replace")

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        if n < 0:
            return None
        if n > self.remaining():
            raise ValueError("array count %d larger than remaining bytes" % n)
        return [fn(self) for _ in range(n)]

    def uvarint(self):
        shift = 0
        v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def compact_string(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode("utf-8", "replace")

    def compact_array(self, fn):
        n = self.uvarint()
        if n == 0:
            return None
        if n - 1 > self.remaining():
            raise ValueError("compact array count %d larger than remaining bytes" % (n - 1))
        return [fn(self) for _ in range(n - 1)]

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


# ---------------------------------------------------------------------------------------------
# Headers and frames
# ---------------------------------------------------------------------------------------------
def request_header(api_key, api_version, correlation_id, client_id="kwire", flexible=False):
    """Request header v1 (or v2 when flexible: same plus an empty tagged-field section).
    Note: the client id stays a classic int16-length string even in header v2."""
    h = i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)
    return h + TAGS if flexible else h


def frame(payload):
    return i32(len(payload)) + payload


def request(api_key, api_version, correlation_id, body, flexible=False, client_id="kwire"):
    return frame(request_header(api_key, api_version, correlation_id, client_id, flexible) + body)


# ---------------------------------------------------------------------------------------------
# CRC32C (Castagnoli), as used by record batches v2
# ---------------------------------------------------------------------------------------------
def _crc32c_table():
    poly = 0x82F63B78
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---------------------------------------------------------------------------------------------
# Record batches (magic v2, uncompressed)
# ---------------------------------------------------------------------------------------------
CRC_OFFSET = 17  # baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1) -> crc at 17


def record(offset_delta, key, value, headers=(), timestamp_delta=0):
    headers = [(hk.encode() if isinstance(hk, str) else hk, hv) for hk, hv in headers]
    body = (i8(0) + varint(timestamp_delta) + varint(offset_delta)
            + (varint(-1) if key is None else varint(len(key)) + key)
            + (varint(-1) if value is None else varint(len(value)) + value)
            + varint(len(headers))
            + b"".join(varint(len(hk)) + hk + (varint(-1) if hv is None else varint(len(hv)) + hv)
                       for hk, hv in headers))
    return varint(len(body)) + body


ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20


def record_batch(records, base_timestamp=None, base_offset=0, timestamps=None,
                 record_count=None, attributes=0, producer_id=-1, producer_epoch=-1,
                 base_sequence=-1, max_timestamp=None):
    """Encode one uncompressed v2 batch.  `records` is a list of (key, value, headers) tuples
    (bytes).  `timestamps` (ms) per record override base_timestamp.  `record_count` lets a test
    lie about the number of records.  producer_id/epoch/base_sequence make it an idempotent
    batch (with attributes=ATTR_TRANSACTIONAL a transactional one)."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    if timestamps is None:
        timestamps = [base_timestamp] * len(records)
    base_ts = min(timestamps) if timestamps else base_timestamp
    max_ts = max(timestamps) if timestamps else base_timestamp
    if max_timestamp is not None:  # what a producer wrote there (Sarama 1.22 leaves -1)
        max_ts = max_timestamp
    recs = b"".join(record(i, k, v, h, timestamps[i] - base_ts)
                    for i, (k, v, h) in enumerate(records))
    n = len(records) if record_count is None else record_count
    after_crc = (i16(attributes) + i32(max(len(records) - 1, 0)) + i64(base_ts) + i64(max_ts)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_sequence) + i32(n) + recs)
    crc = crc32c(after_crc)
    after_len = i32(-1) + i8(2) + u32(crc) + after_crc  # partitionLeaderEpoch, magic, crc
    return i64(base_offset) + i32(len(after_len)) + after_len


def decode_batches(data):
    """Uncompressed v2 batches -> [(offset, leader_epoch, value)]; a partial batch at the end
    (a Fetch may cut one) is ignored."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        r = Reader(data, pos)
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


def decode_records(data):
    """Uncompressed v2 batches (a log segment, a Fetch) -> [(offset, key, value)], keys and
    values None when null; compacted batches (fewer records than offsets) read fine.  A partial
    batch at the end is ignored."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        r = Reader(data, pos)
        base = r.i64()
        blen = r.i32()
        end = pos + 12 + blen
        if end > len(data):
            break
        r.i32(); r.i8(); r.take(4)
        attrs = r.i16()
        assert attrs & 7 == 0, "compressed batch in a raw test"
        r.i32(); r.i64(); r.i64(); r.i64(); r.i16(); r.i32()
        n = r.i32()
        for _ in range(n):
            r.varint(); r.i8(); r.varint()
            od = r.varint()
            kl = r.varint()
            k = r.take(kl) if kl >= 0 else None
            vl = r.varint()
            v = r.take(vl) if vl >= 0 else None
            for _ in range(r.varint()):
                r.take(r.varint())
                hl = r.varint()
                if hl > 0:
                    r.take(hl)
            if not attrs & 0x20:  # not a transaction marker
                out.append((base + od, k, v))
        pos = end
    return out


def batch_headers(data):
    """Record batches in `data` -> [{base, last, pid, epoch, seq, attrs, count, base_timestamp,
    max_timestamp}] (headers only, any compression)."""
    out = []
    pos = 0
    while pos + 61 <= len(data):
        base, blen = struct.unpack_from(">qi", data, pos)
        if pos + 12 + blen > len(data):
            break
        attrs, lod, base_ts, max_ts = struct.unpack_from(">hiqq", data, pos + 21)
        pid, epoch, seq, count = struct.unpack_from(">qhii", data, pos + 43)
        out.append({"base": base, "last": base + lod, "pid": pid, "epoch": epoch, "seq": seq,
                    "attrs": attrs, "count": count, "base_timestamp": base_ts,
                    "max_timestamp": max_ts})
        pos += 12 + blen
    return out


def flip_byte(b, index, mask=0xFF):
    ba = bytearray(b)
    ba[index] ^= mask
    return bytes(ba)


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------
def metadata_body(version, topics=None, allow_auto_create=False):
    """Metadata v1..v8 (non-flexible).  topics None = all topics."""
    b = array(topics, string) if topics is not None else i32(-1)
    if version >= 4:
        b += boolean(allow_auto_create)
    if version >= 8:
        b += boolean(False) + boolean(False)
    return b


def produce_body(version, topic, partition, records_bytes, acks=-1, timeout_ms=10000,
                 transactional_id=None):
    """Produce v3..v8 (non-flexible): one topic, one partition."""
    assert 3 <= version <= 8
    return (string(transactional_id) + i16(acks) + i32(timeout_ms)
            + array([string(topic) + array([i32(partition) + bytes_(records_bytes)])]))


def list_offsets_body(version, topic, partitions_ts, isolation=0):
    """ListOffsets v1..v5 (non-flexible) or v6..v8 (flexible); partitions_ts: [(partition, ts)];
    isolation 0 = read_uncommitted, 1 = read_committed (v2+)."""
    if version >= 6:
        parts = compact_array([i32(p) + i32(-1) + i64(ts) + TAGS for p, ts in partitions_ts])
        b = i32(-1) + i8(isolation) + compact_array([compact_string(topic) + parts + TAGS])
        if version >= 10:
            b += i32(5000)
        return b + TAGS
    parts = []
    for p, ts in partitions_ts:
        parts.append(i32(p) + (i32(-1) if version >= 4 else b"") + i64(ts))
    b = i32(-1) + (i8(isolation) if version >= 2 else b"")
    return b + array([string(topic) + array(parts)])


# ---------------------------------------------------------------------------------------------
# Response parsers (body only: after the correlation id / response header)
# ---------------------------------------------------------------------------------------------
def parse_api_versions_v0(body):
    """ApiVersions response v0 layout: error_code, [api_key, min, max].  Also the layout a
    broker must use for an ApiVersions request with a version it does not support."""
    r = Reader(body)
    err = r.i16()
    apis = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    return err, {k: (lo, hi) for k, lo, hi in (apis or [])}


def parse_api_versions(version, body):
    if version < 3:
        r = Reader(body)
        err = r.i16()
        apis = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
        return err, {k: (lo, hi) for k, lo, hi in (apis or [])}
    r = Reader(body)
    err = r.i16()

    def api(r):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        r.tags()
        return k, lo, hi
    apis = r.compact_array(api)
    return err, {k: (lo, hi) for k, lo, hi in (apis or [])}


def parse_metadata(version, body):
    r = Reader(body)
    if version >= 3:
        r.i32()  # throttle

    def broker(r):
        nid, host, port = r.i32(), r.string(), r.i32()
        rack = r.string() if version >= 1 else None
        return {"node_id": nid, "host": host, "port": port, "rack": rack}
    brokers = r.array(broker)
    cluster_id = r.string() if version >= 2 else None
    controller = r.i32() if version >= 1 else -1

    def partition(r):
        p = {"error": r.i16(), "index": r.i32(), "leader": r.i32()}
        if version >= 7:
            p["leader_epoch"] = r.i32()
        p["replicas"] = r.array(lambda r: r.i32())
        p["isr"] = r.array(lambda r: r.i32())
        if version >= 5:
            p["offline"] = r.array(lambda r: r.i32())
        return p

    def topic(r):
        t = {"error": r.i16(), "name": r.string()}
        if version >= 1:
            t["internal"] = r.boolean()
        t["partitions"] = r.array(partition)
        if version >= 8:
            r.i32()
        return t
    topics = r.array(topic)
    if version >= 8:
        r.i32()
    return {"brokers": brokers, "cluster_id": cluster_id, "controller": controller,
            "topics": topics}


def parse_produce(version, body, with_message=False):
    """-> list of (topic, partition, error_code, base_offset), plus the error message (v8+,
    else None) with_message."""
    return parse_produce_throttled(version, body, with_message)[0]


def parse_produce_throttled(version, body, with_message=False):
    """-> (parse_produce's list, ThrottleTimeMs)."""
    r = Reader(body)
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            idx, err, base = r.i32(), r.i16(), r.i64()
            r.i64()  # log append time (v2+)
            if version >= 5:
                r.i64()
            msg = None
            if version >= 8:
                r.array(lambda r: (r.i32(), r.string()))
                msg = r.string()
            out.append((name, idx, err, base, msg) if with_message else (name, idx, err, base))
    return out, r.i32()


def parse_list_offsets(version, body):
    """-> list of (topic, partition, error_code, timestamp, offset)."""
    r = Reader(body)
    out = []
    if version >= 6:
        r.i32()
        for _ in range(r.uvarint() - 1):
            name = r.compact_string()
            for _ in range(r.uvarint() - 1):
                idx, err, ts, off, _epoch = r.i32(), r.i16(), r.i64(), r.i64(), r.i32()
                r.tags()
                out.append((name, idx, err, ts, off))
            r.tags()
        r.tags()
        return out
    if version >= 2:
        r.i32()
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            idx, err, ts, off = r.i32(), r.i16(), r.i64(), r.i64()
            if version >= 4:
                r.i32()
            out.append((name, idx, err, ts, off))
    return out


def fetch_body(version, topic, partition, offset, max_bytes=1 << 20, max_wait_ms=100,
               min_bytes=1, isolation=0, rack=""):
    """Fetch v4..v11 (non-flexible): one topic, one partition, no fetch session; `rack` (v11)
    is the consumer's rack id."""
    assert 4 <= version <= 11
    b = i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(max_bytes) + i8(isolation)
    if version >= 7:
        b += i32(0) + i32(-1)  # no fetch session
    p = i32(partition)
    if version >= 9:
        p += i32(-1)
    p += i64(offset)
    if version >= 5:
        p += i64(-1)
    p += i32(max_bytes)
    b += array([string(topic) + array([p])])
    if version >= 7:
        b += array([])
    if version >= 11:
        b += string(rack)
    return b


def parse_fetch(version, body):
    """-> list of dicts {topic, partition, error, high_watermark, last_stable_offset,
    log_start_offset (v5+), aborted [(producer_id, first_offset)], preferred_read_replica (v11),
    records (bytes or None)}."""
    r = Reader(body)
    r.i32()
    if version >= 7:
        r.i16()
        r.i32()
    out = []
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            p = {"topic": name, "partition": r.i32(), "error": r.i16(),
                 "high_watermark": r.i64()}
            p["last_stable_offset"] = r.i64()  # v4+
            if version >= 5:
                p["log_start_offset"] = r.i64()
            p["aborted"] = r.array(lambda r: (r.i64(), r.i64()))
            if version >= 11:
                p["preferred_read_replica"] = r.i32()
            p["records"] = r.bytes_()
            out.append(p)
    return out


def parse_describe_cluster(version, body):
    r = Reader(body)
    out = {"throttle": r.i32(), "error": r.i16(), "error_message": r.compact_string()}
    if version >= 1:
        out["endpoint_type"] = r.i8()
    out["cluster_id"] = r.compact_string()
    out["controller"] = r.i32()

    def broker(r):
        b = {"node_id": r.i32(), "host": r.compact_string(), "port": r.i32(),
             "rack": r.compact_string()}
        r.tags()
        return b
    out["brokers"] = r.compact_array(broker)
    out["cluster_authorized_operations"] = r.i32()
    r.tags()
    return out


# ---------------------------------------------------------------------------------------------
# Consumer-group protocol (embedded in JoinGroup metadata / SyncGroup assignment)
# ---------------------------------------------------------------------------------------------
GROUP_SESSION_MS = 6000      # the broker's minimum session timeout: fast rebalances in tests
GROUP_REBALANCE_MS = 10000


def subscription(topics, user_data=b""):
    return i16(0) + array(topics, string) + bytes_(user_data)


def assignment(parts_by_topic, user_data=b""):
    """{topic: [partitions]} -> ConsumerProtocolAssignment v0 bytes."""
    return i16(0) + array([string(t) + array([i32(p) for p in ps])
                           for t, ps in sorted(parts_by_topic.items())]) + bytes_(user_data)


def parse_assignment(data):
    """ConsumerProtocolAssignment bytes -> {topic: [partitions]} ({} for empty bytes)."""
    if not data:
        return {}
    r = Reader(data)
    r.i16()
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        out[t] = sorted(r.array(lambda r: r.i32()) or [])
    return out


def _partition_errors(r):
    """[topic, [partition, error_code]] (classic arrays) -> {(topic, partition): error_code}."""
    out = {}
    for _ in range(r.i32()):
        t = r.string()
        for _ in range(r.i32()):
            p, e = r.i32(), r.i16()
            out[(t, p)] = e
    return out


def f64(v):
    return struct.pack(">d", v)


def _str(flex, s):
    return compact_string(s) if flex else string(s)


def _arr(flex, items):
    return compact_array(items) if flex else array(items)


def _tags(flex):
    return TAGS if flex else b""


def create_topics_body(version, topics, timeout_ms=10000, validate_only=False):
    """CreateTopics v1..v7 (flexible from v5); topics: [(name, partitions, replication)]."""
    fl = version >= 5
    ts = [_str(fl, n) + i32(p) + i16(rf) + _arr(fl, []) + _arr(fl, []) + _tags(fl) for n, p, rf in topics]
    return _arr(fl, ts) + i32(timeout_ms) + boolean(validate_only) + _tags(fl)


def parse_create_topics(version, body):
    """-> (throttle_ms, [(name, error, message)])"""
    fl = version >= 5
    r = Reader(body)
    throttle = r.i32() if version >= 2 else 0

    def topic(rr):
        name = rr.compact_string() if fl else rr.string()
        if version >= 7:
            rr.take(16)
        err = rr.i16()
        msg = (rr.compact_string() if fl else rr.string()) if version >= 1 else None
        if fl:
            rr.i32(); rr.i16()

            def cfg(r3):
                r3.compact_string(); r3.compact_string(); r3.boolean(); r3.i8(); r3.boolean(); r3.tags()
            rr.compact_array(cfg)
            rr.tags()
        return name, err, msg
    return throttle, (r.compact_array(topic) if fl else r.array(topic))


def delete_topics_body(version, names, timeout_ms=10000):
    """DeleteTopics v1..v5 by name (flexible from v4)."""
    fl = version >= 4
    return (compact_array([compact_string(n) for n in names]) if fl else array(names, string)) \
        + i32(timeout_ms) + _tags(fl)


def parse_delete_topics(version, body):
    """-> (throttle_ms, [(name, error, message)])"""
    fl = version >= 4
    r = Reader(body)
    throttle = r.i32()

    def topic(rr):
        name = rr.compact_string() if fl else rr.string()
        err = rr.i16()
        msg = rr.compact_string() if version >= 5 else None
        if fl:
            rr.tags()
        return name, err, msg
    return throttle, (r.compact_array(topic) if fl else r.array(topic))


def describe_client_quotas_body(version, components, strict=False):
    """components: [(entity_type, match_type, match)]; match_type 0 exact, 1 default, 2 any."""
    fl = version >= 1
    cs = [_str(fl, t) + i8(mt) + _str(fl, m) + _tags(fl) for t, mt, m in components]
    return _arr(fl, cs) + boolean(strict) + _tags(fl)


def parse_describe_client_quotas(version, body):
    """-> (error, message, entries) with entries [({type: name or None}, {key: value})] or None."""
    fl = version >= 1
    r = Reader(body)
    r.i32()  # throttle
    err = r.i16()
    msg = r.compact_string() if fl else r.string()

    def ent(rr):
        t = rr.compact_string() if fl else rr.string()
        n = rr.compact_string() if fl else rr.string()
        if fl:
            rr.tags()
        return t, n

    def val(rr):
        k = rr.compact_string() if fl else rr.string()
        v = struct.unpack(">d", rr.take(8))[0]
        if fl:
            rr.tags()
        return k, v

    def entry(rr):
        e = rr.compact_array(ent) if fl else rr.array(ent)
        v = rr.compact_array(val) if fl else rr.array(val)
        if fl:
            rr.tags()
        return dict(e or []), dict(v or [])
    entries = r.compact_array(entry) if fl else r.array(entry)
    return err, msg, entries


def alter_client_quotas_body(version, entries, validate_only=False):
    """entries: [([(entity_type, name or None)], [(key, value, remove)])]"""
    fl = version >= 1
    es = []
    for entity, ops in entries:
        e = _arr(fl, [_str(fl, t) + _str(fl, n) + _tags(fl) for t, n in entity])
        o = _arr(fl, [_str(fl, k) + f64(v) + boolean(rm) + _tags(fl) for k, v, rm in ops])
        es.append(e + o + _tags(fl))
    return _arr(fl, es) + boolean(validate_only) + _tags(fl)


def parse_alter_client_quotas(version, body):
    """-> [(error, message, {type: name or None})], one per entry."""
    fl = version >= 1
    r = Reader(body)
    r.i32()  # throttle

    def ent(rr):
        t = rr.compact_string() if fl else rr.string()
        n = rr.compact_string() if fl else rr.string()
        if fl:
            rr.tags()
        return t, n

    def entry(rr):
        err = rr.i16()
        msg = rr.compact_string() if fl else rr.string()
        e = rr.compact_array(ent) if fl else rr.array(ent)
        if fl:
            rr.tags()
        return err, msg, dict(e or [])
    return r.compact_array(entry) if fl else r.array(entry)


# ---------------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------------
class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


class Conn:
    """One TCP connection to one broker.  All waits are bounded by `timeout` seconds.  The
    typed helpers send one request and return its parsed answer."""

    client_id = "kwire"  # the ClientId of every request header (set per connection to change it)

    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.corr = 0
        self.versions = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def next_corr(self):
        self.corr += 1
        return self.corr

    def _recv_exact(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out after %d of %d bytes" % (len(buf), n))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_frame(self, timeout=None):
        """Read one response frame; returns its payload.  Raises Closed or socket.timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        (n,) = struct.unpack(">i", self._recv_exact(4, deadline))
        if n < 4 or n > 256 << 20:
            raise ValueError("bad response frame size %d" % n)
        return self._recv_exact(n, deadline)

    def wait_closed(self, timeout=5.0):
        """True if the peer closes the connection within `timeout` seconds.  Responses that
        arrive meanwhile are returned as a list in the second element."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, got
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True, got
            except socket.timeout:
                return False, got
            if not chunk:
                return True, got
            got.append(chunk)

    def call(self, api_key, api_version, body, flexible_req=False, flexible_resp=None,
             timeout=None):
        """Send a request and return the response body (after the response header)."""
        corr = self.next_corr()
        self.send(request(api_key, api_version, corr, body, flexible=flexible_req,
                          client_id=self.client_id))
        payload = self.recv_frame(timeout)
        r = Reader(payload)
        got = r.i32()
        if got != corr:
            raise ValueError("correlation id %d, expected %d" % (got, corr))
        if flexible_resp is None:
            flexible_resp = flexible_req and api_key != API_VERSIONS
        if flexible_resp:
            r.tags()
        return payload[r.pos:]

    # ---- typed helpers -----------------------------------------------------------------
    def api_versions(self, version=0):
        flexible = version >= 3
        body = (compact_string("kwire") + compact_string("0.1") + TAGS) if flexible else b""
        resp = self.call(API_VERSIONS, version, body, flexible_req=flexible, flexible_resp=False)
        err, apis = parse_api_versions(version, resp)
        if err == 0:
            self.versions = apis
        return err, apis

    def pick(self, api_key, lo, hi):
        """Highest version in [lo, hi] that the broker advertises (None if none)."""
        if self.versions is None:
            self.api_versions(0)
        if api_key not in self.versions:
            return None
        bmin, bmax = self.versions[api_key]
        v = min(hi, bmax)
        return v if v >= max(lo, bmin) else None

    def metadata(self, topics=None, allow_auto_create=False):
        v = self.pick(METADATA, 1, 8)
        assert v is not None, "broker advertises no non-flexible Metadata version in 1..8"
        return parse_metadata(v, self.call(METADATA, v, metadata_body(v, topics, allow_auto_create)))

    def produce(self, topic, partition, records_bytes, acks=-1, version=None,
                transactional_id=None):
        """Produce (`version`, or the highest of 3..8 the broker advertises) -> parse_produce."""
        v = version or self.pick(PRODUCE, 3, 8)
        assert v is not None, "broker advertises no non-flexible Produce version in 3..8"
        resp = self.call(PRODUCE, v, produce_body(v, topic, partition, records_bytes, acks,
                                                  transactional_id=transactional_id))
        return parse_produce(v, resp)

    def produce_throttled(self, topic, partition, records_bytes, acks=-1, version=None):
        """Produce (as produce()) -> ((error_code, base_offset), ThrottleTimeMs)."""
        v = version or self.pick(PRODUCE, 3, 8)
        assert v is not None, "broker advertises no non-flexible Produce version in 3..8"
        res, throttle = parse_produce_throttled(v, self.call(PRODUCE, v, produce_body(
            v, topic, partition, records_bytes, acks)))
        assert len(res) == 1, res
        return (res[0][2], res[0][3]), throttle

    def metadata_throttled(self, version=8):
        """Metadata v3..v8 for no topics -> ThrottleTimeMs (the first field of the answer)."""
        assert 3 <= version <= 8
        return Reader(self.call(METADATA, version, metadata_body(version, []))).i32()

    def produce_one(self, topic, partition, records_bytes, acks=-1, version=None,
                    transactional_id=None):
        """Produce to one partition -> (error_code, base_offset)."""
        res = self.produce(topic, partition, records_bytes, acks, version, transactional_id)
        assert len(res) == 1, res
        return res[0][2], res[0][3]

    def fetch(self, topic, partition, offset, max_bytes=1 << 20, version=None, **body):
        """Fetch (`version`, or the highest of 4..11 the broker advertises) -> parse_fetch.
        `body`: fetch_body's max_wait_ms, min_bytes, isolation, rack."""
        v = version or self.pick(FETCH, 4, 11)
        assert v is not None, "broker advertises no non-flexible Fetch version in 4..11"
        return parse_fetch(v, self.call(FETCH, v, fetch_body(v, topic, partition, offset,
                                                             max_bytes, **body)))

    def describe_cluster(self):
        v = self.pick(DESCRIBE_CLUSTER, 0, 1)
        assert v is not None, "broker does not advertise DescribeCluster"
        body = boolean(False) + (i8(1) if v >= 1 else b"") + TAGS
        return parse_describe_cluster(v, self.call(DESCRIBE_CLUSTER, v, body, flexible_req=True))

    def list_offsets(self, topic, partitions_ts, flexible_ok=True, isolation=0, version=None):
        """ListOffsets (`version`, or the highest the broker advertises up to v7, v5 without
        flexible_ok) -> parse_list_offsets."""
        hi = 7 if flexible_ok else 5
        if version is not None:
            v = version
        elif any(ts == MAX_TIMESTAMP for _, ts in partitions_ts):
            v = self.pick(LIST_OFFSETS, 7, 8)
            assert v is not None, "broker advertises no ListOffsets v7+ (needed for MAX_TIMESTAMP)"
        else:
            v = self.pick(LIST_OFFSETS, 1, hi)
        flex = v >= 6
        resp = self.call(LIST_OFFSETS, v, list_offsets_body(v, topic, partitions_ts, isolation),
                         flexible_req=flex)
        return parse_list_offsets(v, resp)

    def sasl_plain(self, user, password):
        """SaslHandshake v1 (PLAIN) + SaslAuthenticate v1 -> (error, message); the broker may
        close the connection after a failure (then Closed is raised by a later call)."""
        r = Reader(self.call(SASL_HANDSHAKE, 1, string("PLAIN")))
        err = r.i16()
        if err:
            return err, "SaslHandshake failed"
        token = b"\0%s\0%s" % (user.encode(), password.encode())
        r = Reader(self.call(SASL_AUTHENTICATE, 1, bytes_(token)))
        return r.i16(), r.string()

    def create_topics(self, topics, version=7, validate_only=False):
        """CreateTopics; topics [(name, partitions, replication)] -> (throttle_ms, [(name, err, msg)])"""
        body = create_topics_body(version, topics, validate_only=validate_only)
        return parse_create_topics(version, self.call(CREATE_TOPICS, version, body,
                                                      flexible_req=version >= 5))

    def delete_topics(self, names, version=5):
        """DeleteTopics by name -> (throttle_ms, [(name, err, msg)])"""
        return parse_delete_topics(version, self.call(DELETE_TOPICS, version,
                                                      delete_topics_body(version, names),
                                                      flexible_req=version >= 4))

    def describe_client_quotas(self, components=(), strict=False, version=1):
        """-> (error, message, [({type: name}, {key: value})] or None)"""
        return parse_describe_client_quotas(version, self.call(
            DESCRIBE_CLIENT_QUOTAS, version, describe_client_quotas_body(version, components, strict),
            flexible_req=version >= 1))

    def alter_client_quotas(self, entries, validate_only=False, version=1):
        """entries [([(type, name)], [(key, value, remove)])] -> [(err, msg, {type: name})]"""
        return parse_alter_client_quotas(version, self.call(
            ALTER_CLIENT_QUOTAS, version, alter_client_quotas_body(version, entries, validate_only),
            flexible_req=version >= 1))

    def find_coordinator(self, key, key_type=0, version=2):
        """FindCoordinator v0..v3 (key_type 0 = group, 1 = transaction; v1+)
        -> (error, node_id, host, port)."""
        body = string(key) + (i8(key_type) if version >= 1 else b"")
        r = Reader(self.call(FIND_COORDINATOR, version, body))
        if version >= 1:
            r.i32()
        err = r.i16()
        if version >= 1:
            r.string()
        return err, r.i32(), r.string(), r.i32()

    def find_coordinators_v4(self, keys, key_type=0):
        """FindCoordinator v4 (batched, flexible) -> [(key, error, node_id, host, port)]."""
        body = i8(key_type) + compact_array([compact_string(k) for k in keys]) + TAGS
        r = Reader(self.call(FIND_COORDINATOR, 4, body, flexible_req=True))
        r.i32()
        out = []
        for _ in range(r.uvarint() - 1):
            key, node, host, port, err = (r.compact_string(), r.i32(), r.compact_string(),
                                          r.i32(), r.i16())
            r.compact_string()
            r.tags()
            out.append((key, err, node, host, port))
        return out

    # ---- group APIs (non-flexible versions unless said otherwise) ------------------------
    def join(self, group, member_id="", protocols=None, topics=("t",), session_ms=GROUP_SESSION_MS,
             rebalance_ms=GROUP_REBALANCE_MS, instance_id=None, protocol_type="consumer", version=5,
             timeout=None):
        """JoinGroup v4/v5 (non-flexible).  Returns a dict; blocks until the broker answers."""
        assert version in (1, 2, 3, 4, 5)
        if protocols is None:
            protocols = [("range", subscription(list(topics)))]
        body = string(group) + i32(session_ms) + i32(rebalance_ms) + string(member_id)
        if version >= 5:
            body += string(instance_id)
        body += string(protocol_type) + array([string(n) + bytes_(m) for n, m in protocols])
        r = Reader(self.call(JOIN_GROUP, version, body,
                             timeout=timeout if timeout is not None else self.timeout))
        if version >= 2:
            r.i32()
        out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(),
               "leader": r.string(), "member_id": r.string()}

        def member(r):
            m = {"member_id": r.string()}
            if version >= 5:
                m["instance_id"] = r.string()
            m["metadata"] = r.bytes_()
            return m
        out["members"] = r.array(member)
        return out

    def join_send(self, group, member_id="", topics=("t",), session_ms=GROUP_SESSION_MS,
                  rebalance_ms=GROUP_REBALANCE_MS, instance_id=None, protocols=None, version=5):
        """Send a JoinGroup (v3..v5) without waiting; read the answer later with join_recv()."""
        if protocols is None:
            protocols = [("range", subscription(list(topics)))]
        body = string(group) + i32(session_ms) + i32(rebalance_ms) + string(member_id)
        if version >= 5:
            body += string(instance_id)
        body += string("consumer") + array([string(n) + bytes_(m) for n, m in protocols])
        self._pending = (self.next_corr(), version)
        self.send(request(JOIN_GROUP, version, self._pending[0], body))

    def join_recv(self, timeout=None):
        corr, version = self._pending
        r = Reader(self.recv_frame(timeout))
        assert r.i32() == corr
        r.i32()
        out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(),
               "leader": r.string(), "member_id": r.string()}
        out["members"] = r.array(lambda r: dict(
            member_id=r.string(), instance_id=r.string() if version >= 5 else None,
            metadata=r.bytes_()))
        return out

    def sync(self, group, generation, member_id, assignments=None, instance_id=None, version=3,
             timeout=None):
        """SyncGroup v3 (assignments: {member_id: bytes}) -> (error, assignment bytes)."""
        body = string(group) + i32(generation) + string(member_id)
        if version >= 3:
            body += string(instance_id)
        body += array([string(m) + bytes_(a) for m, a in (assignments or {}).items()])
        r = Reader(self.call(SYNC_GROUP, version, body,
                             timeout=timeout if timeout is not None else self.timeout))
        if version >= 1:
            r.i32()
        return r.i16(), r.bytes_()

    def sync_send(self, group, generation, member_id, assignments=None, instance_id=None):
        body = (string(group) + i32(generation) + string(member_id) + string(instance_id)
                + array([string(m) + bytes_(a) for m, a in (assignments or {}).items()]))
        self._pending = (self.next_corr(), 3)
        self.send(request(SYNC_GROUP, 3, self._pending[0], body))

    def sync_recv(self, timeout=None):
        r = Reader(self.recv_frame(timeout))
        assert r.i32() == self._pending[0]
        r.i32()
        return r.i16(), r.bytes_()

    def heartbeat(self, group, generation, member_id, instance_id=None, version=3):
        body = string(group) + i32(generation) + string(member_id)
        if version >= 3:
            body += string(instance_id)
        r = Reader(self.call(HEARTBEAT, version, body))
        if version >= 1:
            r.i32()
        return r.i16()

    def leave(self, group, members):
        """LeaveGroup v3: members [(member_id, instance_id)] -> (error, [(mid, iid, error)])."""
        body = string(group) + array([string(m) + string(i) for m, i in members])
        r = Reader(self.call(LEAVE_GROUP, 3, body))
        r.i32()
        err = r.i16()
        return err, r.array(lambda r: (r.string(), r.string(), r.i16()))

    def leave_v1(self, group, member_id):
        r = Reader(self.call(LEAVE_GROUP, 1, string(group) + string(member_id)))
        r.i32()
        return r.i16()

    def commit(self, group, offsets, generation=-1, member_id="", instance_id=None, version=7):
        """OffsetCommit v7 (or v2..v6): offsets {(topic, p): offset or (offset, metadata[, epoch])}.
        Returns {(topic, p): error}."""
        by_topic = {}
        for (t, p), v in offsets.items():
            if not isinstance(v, tuple):
                v = (v, "")
            off, meta = v[0], v[1]
            epoch = v[2] if len(v) > 2 else -1
            by_topic.setdefault(t, []).append((p, off, meta, epoch))
        body = string(group) + i32(generation) + string(member_id)
        if version >= 7:
            body += string(instance_id)
        if 2 <= version <= 4:
            body += i64(-1)
        body += array([string(t) + array([i32(p) + i64(o) + (i32(e) if version >= 6 else b"")
                                          + string(m) for p, o, m, e in parts])
                       for t, parts in by_topic.items()])
        r = Reader(self.call(OFFSET_COMMIT, version, body))
        if version >= 3:
            r.i32()
        return _partition_errors(r)

    def fetch_offsets(self, group, topics=None):
        """OffsetFetch v5: topics {topic: [partitions]} or None for all.
        Returns (error, {(topic, p): (offset, epoch, metadata, error)})."""
        if topics is None:
            tb = i32(-1)
        else:
            tb = array([string(t) + array([i32(p) for p in ps]) for t, ps in topics.items()])
        r = Reader(self.call(OFFSET_FETCH, 5, string(group) + tb))
        r.i32()
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p, off, ep, meta, e = r.i32(), r.i64(), r.i32(), r.string(), r.i16()
                out[(t, p)] = (off, ep, meta, e)
        return r.i16(), out

    def fetch_offsets_v8(self, groups):
        """OffsetFetch v8 (flexible, multi-group): groups {group: {topic: [p]} or None}.
        Returns {group: (error, {(topic, p): (offset, epoch, metadata, error)})}."""
        gb = []
        for g, topics in groups.items():
            if topics is None:
                tb = uvarint(0)
            else:
                tb = compact_array([compact_string(t) + compact_array([i32(p) for p in ps])
                                    + TAGS for t, ps in topics.items()])
            gb.append(compact_string(g) + tb + TAGS)
        body = compact_array(gb) + boolean(False) + TAGS
        r = Reader(self.call(OFFSET_FETCH, 8, body, flexible_req=True))
        r.i32()
        out = {}
        for _ in range(r.uvarint() - 1):
            g = r.compact_string()
            offs = {}
            for _ in range(r.uvarint() - 1):
                t = r.compact_string()
                for _ in range(r.uvarint() - 1):
                    p, off, ep, meta, e = (r.i32(), r.i64(), r.i32(), r.compact_string(),
                                           r.i16())
                    r.tags()
                    offs[(t, p)] = (off, ep, meta, e)
                r.tags()
            err = r.i16()
            r.tags()
            out[g] = (err, offs)
        return out

    def describe(self, groups):
        """DescribeGroups v4 -> {group: {error, state, protocol_type, protocol, members}}."""
        body = array([string(g) for g in groups]) + boolean(False)
        r = Reader(self.call(DESCRIBE_GROUPS, 4, body))
        r.i32()
        out = {}
        for _ in range(r.i32()):
            d = {"error": r.i16()}
            gid = r.string()
            d.update(state=r.string(), protocol_type=r.string(), protocol=r.string())
            d["members"] = r.array(lambda r: {
                "member_id": r.string(), "instance_id": r.string(), "client_id": r.string(),
                "client_host": r.string(), "metadata": r.bytes_(), "assignment": r.bytes_()})
            r.i32()
            out[gid] = d
        return out

    def list_groups(self, states=None):
        """ListGroups v2, or v4 (flexible) with a state filter -> {group: (protocol_type, state)}."""
        if states is None:
            r = Reader(self.call(LIST_GROUPS, 2, b""))
            r.i32()
            err = r.i16()
            groups = r.array(lambda r: (r.string(), r.string()))
            return err, {g: (pt, None) for g, pt in groups}
        body = compact_array([compact_string(s) for s in states]) + TAGS
        r = Reader(self.call(LIST_GROUPS, 4, body, flexible_req=True))
        r.i32()
        err = r.i16()
        out = {}
        for _ in range(r.uvarint() - 1):
            g, pt, st = r.compact_string(), r.compact_string(), r.compact_string()
            r.tags()
            out[g] = (pt, st)
        return err, out

    def delete_groups(self, groups):
        r = Reader(self.call(DELETE_GROUPS, 1, array([string(g) for g in groups])))
        r.i32()
        return dict(r.array(lambda r: (r.string(), r.i16())))

    def offset_delete(self, group, topics):
        """OffsetDelete v0: topics {topic: [p]} -> (error, {(topic, p): error})."""
        body = string(group) + array([string(t) + array([i32(p) for p in ps])
                                      for t, ps in topics.items()])
        r = Reader(self.call(OFFSET_DELETE, 0, body))
        err = r.i16()
        r.i32()
        return err, _partition_errors(r)

    # ---- transaction APIs ----------------------------------------------------------------
    def init_producer_id(self, tid=None, timeout_ms=60000, pid=-1, epoch=-1, version=4):
        """InitProducerId v0..v1 (classic) or v2+ (flexible; pid/epoch v3+)
        -> (error, pid, epoch)."""
        if version >= 2:
            body = compact_string(tid) + i32(timeout_ms)
            if version >= 3:
                body += i64(pid) + i16(epoch)
            body += TAGS
            r = Reader(self.call(INIT_PRODUCER_ID, version, body, flexible_req=True))
        else:
            body = string(tid) + i32(timeout_ms)
            r = Reader(self.call(INIT_PRODUCER_ID, version, body))
        r.i32()
        return r.i16(), r.i64(), r.i16()

    def describe_producers(self, topic, partitions):
        """DescribeProducers v0 -> {partition: (error, [{pid, epoch, last_seq, last_ts,
        coord_epoch, txn_start}])}"""
        body = (compact_array([compact_string(topic)
                               + compact_array([i32(p) for p in partitions])
                               + TAGS]) + TAGS)
        r = Reader(self.call(DESCRIBE_PRODUCERS, 0, body, flexible_req=True))
        r.i32()
        out = {}

        def prod(r):
            d = {"pid": r.i64(), "epoch": r.i32(), "last_seq": r.i32(), "last_ts": r.i64(),
                 "coord_epoch": r.i32(), "txn_start": r.i64()}
            r.tags()
            return d

        def part(r):
            idx, err = r.i32(), r.i16()
            r.compact_string()
            ps = r.compact_array(prod) or []
            r.tags()
            out[idx] = (err, ps)

        def top(r):
            r.compact_string()
            r.compact_array(part)
            r.tags()
        r.compact_array(top)
        r.tags()
        return out

    def list_transactions(self, states=(), pids=(), duration_ms=None):
        """ListTransactions v0 (v1 with duration) -> (error, [(tid, pid, state)])"""
        v = 1 if duration_ms is not None else 0
        body = (compact_array([compact_string(s) for s in states])
                + compact_array([i64(p) for p in pids]))
        if v >= 1:
            body += i64(duration_ms)
        body += TAGS
        r = Reader(self.call(LIST_TRANSACTIONS, v, body, flexible_req=True))
        r.i32()
        err = r.i16()
        r.compact_array(lambda r: r.compact_string())

        def st(r):
            x = (r.compact_string(), r.i64(), r.compact_string())
            r.tags()
            return x
        states_out = r.compact_array(st) or []
        r.tags()
        return err, states_out

    def describe_transactions(self, tids):
        """DescribeTransactions v0 -> {tid: {error, state, timeout_ms, start_ms, pid, epoch,
        partitions: set((topic, p))}}"""
        body = compact_array([compact_string(t) for t in tids]) + TAGS
        r = Reader(self.call(DESCRIBE_TRANSACTIONS, 0, body, flexible_req=True))
        r.i32()
        out = {}

        def topic(r):
            name = r.compact_string()
            ps = r.compact_array(lambda r: r.i32()) or []
            r.tags()
            return [(name, p) for p in ps]

        def st(r):
            d = {"error": r.i16()}
            tid = r.compact_string()
            d.update(state=r.compact_string(), timeout_ms=r.i32(), start_ms=r.i64(), pid=r.i64(),
                     epoch=r.i16())
            d["partitions"] = set(x for t in (r.compact_array(topic) or []) for x in t)
            r.tags()
            out[tid] = d
        r.compact_array(st)
        r.tags()
        return out

    # ---- replication ---------------------------------------------------------------------
    # ---- KIP-848 consumer groups ------------------------------------------------------
    def cg_heartbeat(self, group, member_id="", epoch=0, instance_id=None, rack_id=None,
                     rebalance_ms=-1, topics=None, regex=None, assignor=None, owned=None,
                     version=0, timeout=None):
        """ConsumerGroupHeartbeat v0/v1.  topics: [names] or None (unchanged); owned:
        {topic_id(bytes16): [partitions]} or None.  Returns {error, message, member_id, epoch,
        interval, assignment: {topic_id: [partitions]} or None}."""
        body = consumer_group_heartbeat_body(group, member_id, epoch, instance_id, rack_id,
                                             rebalance_ms, topics, regex, assignor, owned, version)
        return parse_consumer_group_heartbeat(
            self.call(CONSUMER_GROUP_HEARTBEAT, version, body, flexible_req=True, timeout=timeout))

    def cg_describe(self, groups):
        """ConsumerGroupDescribe v0 -> {group: {error, message, state, epoch, assignment_epoch,
        assignor, members: [{member_id, instance_id, rack_id, epoch, client_id, client_host,
        topics, regex, assignment, target}]}}; assignments {topic name: [partitions]}."""
        body = compact_array([compact_string(g) for g in groups]) + boolean(False) + TAGS
        return parse_consumer_group_describe(
            self.call(CONSUMER_GROUP_DESCRIBE, 0, body, flexible_req=True))

    def commit_v9(self, group, offsets, member_epoch=-1, member_id="", instance_id=None):
        """OffsetCommit v9 (flexible; member epoch): offsets {(topic, p): offset}.
        Returns {(topic, p): error}."""
        by_topic = {}
        for (t, p), off in offsets.items():
            by_topic.setdefault(t, []).append((p, off))
        body = (compact_string(group) + i32(member_epoch) + compact_string(member_id)
                + compact_string(instance_id)
                + compact_array([compact_string(t) + compact_array(
                    [i32(p) + i64(o) + i32(-1) + compact_string("") + TAGS for p, o in parts])
                    + TAGS for t, parts in by_topic.items()]) + TAGS)
        r = Reader(self.call(OFFSET_COMMIT, 9, body, flexible_req=True))
        r.i32()
        out = {}
        for _ in range(r.uvarint() - 1):
            t = r.compact_string()
            for _ in range(r.uvarint() - 1):
                p, e = r.i32(), r.i16()
                r.tags()
                out[(t, p)] = e
            r.tags()
        return out

    def list_groups_v5(self, states=(), types=()):
        """ListGroups v5 (state and type filters) -> (error, {group: (protocol_type, state, type)})."""
        body = (compact_array([compact_string(x) for x in states])
                + compact_array([compact_string(x) for x in types]) + TAGS)
        r = Reader(self.call(LIST_GROUPS, 5, body, flexible_req=True))
        r.i32()
        err = r.i16()
        out = {}
        for _ in range(r.uvarint() - 1):
            g, pt, st, ty = r.compact_string(), r.compact_string(), r.compact_string(), r.compact_string()
            r.tags()
            out[g] = (pt, st, ty)
        return err, out

    def offset_for_leader_epoch(self, topic, partition, epoch, current_epoch=-1):
        """OffsetForLeaderEpoch v3 (one partition) -> (error, leader_epoch, end_offset)."""
        body = (i32(-1) + array([string(topic) + array(
            [i32(partition) + i32(current_epoch) + i32(epoch)])]))
        r = Reader(self.call(OFFSET_FOR_LEADER_EPOCH, 3, body))
        r.i32()
        out = []
        for _ in range(r.i32()):
            r.string()
            for _ in range(r.i32()):
                err, _p, ep, end = r.i16(), r.i32(), r.i32(), r.i64()
                out.append((err, ep, end))
        assert len(out) == 1, out
        return out[0]


def parse_bootstrap(bootstrap):
    """'h1:p1,h2:p2' -> [(h1, p1), (h2, p2)]"""
    out = []
    for hp in bootstrap.split(","):
        host, _, port = hp.rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


# ---------------------------------------------------------------------------------------------
# Admin APIs of issue 15 (flexible versions, compact encodings)
# ---------------------------------------------------------------------------------------------
def uuid(b=b"\0" * 16):
    return bytes(b)


def _cnullable_array_i32(items):
    return uvarint(0) if items is None else compact_array([i32(x) for x in items])


def incremental_alter_configs_body(resources, validate_only=False):
    """v1: resources [(type, name, [(key, op, value)])], op 0 SET 1 DELETE 2 APPEND 3 SUBTRACT."""
    return compact_array([i8(t) + compact_string(n) + compact_array(
        [compact_string(k) + i8(op) + compact_string(v) + TAGS for k, op, v in cfgs]) + TAGS
        for t, n, cfgs in resources]) + boolean(validate_only) + TAGS


def alter_configs_body(resources, validate_only=False):
    """v2: resources [(type, name, [(key, value)])]."""
    return compact_array([i8(t) + compact_string(n) + compact_array(
        [compact_string(k) + compact_string(v) + TAGS for k, v in cfgs]) + TAGS
        for t, n, cfgs in resources]) + boolean(validate_only) + TAGS


def parse_alter_configs(body):
    """IncrementalAlterConfigs v1 / AlterConfigs v2 -> [(error, message, type, name)]."""
    r = Reader(body)
    r.i32()

    def res(rr):
        e, m, t, n = rr.i16(), rr.compact_string(), rr.i8(), rr.compact_string()
        rr.tags()
        return e, m, t, n
    return r.compact_array(res)


def describe_configs_body(resources, synonyms=True, docs=False):
    """v4: resources [(type, name, keys or None)]."""
    return compact_array([i8(t) + compact_string(n) + (
        uvarint(0) if keys is None else compact_array([compact_string(k) for k in keys])) + TAGS
        for t, n, keys in resources]) + boolean(synonyms) + boolean(docs) + TAGS


def parse_describe_configs(body):
    """v4 -> [(error, message, type, name, {key: {value, read_only, source, sensitive,
    synonyms [(name, value, source)], type, doc}})]"""
    r = Reader(body)
    r.i32()

    def syn(rr):
        x = (rr.compact_string(), rr.compact_string(), rr.i8())
        rr.tags()
        return x

    def cfg(rr):
        c = {"name": rr.compact_string(), "value": rr.compact_string(), "read_only": rr.boolean(),
             "source": rr.i8(), "sensitive": rr.boolean()}
        c["synonyms"] = rr.compact_array(syn)
        c["type"] = rr.i8()
        c["doc"] = rr.compact_string()
        rr.tags()
        return c

    def res(rr):
        e, m, t, n = rr.i16(), rr.compact_string(), rr.i8(), rr.compact_string()
        cfgs = rr.compact_array(cfg) or []
        rr.tags()
        return e, m, t, n, {c["name"]: c for c in cfgs}
    return r.compact_array(res)


def delete_records_body(topics, timeout_ms=10000):
    """v2: topics [(name, [(partition, offset)])]."""
    return compact_array([compact_string(n) + compact_array(
        [i32(p) + i64(o) + TAGS for p, o in parts]) + TAGS for n, parts in topics]) \
        + i32(timeout_ms) + TAGS


def parse_delete_records(body):
    """v2 -> {(topic, partition): (low_watermark, error)}"""
    r = Reader(body)
    r.i32()
    out = {}
    for _ in range(r.uvarint() - 1):
        t = r.compact_string()
        for _ in range(r.uvarint() - 1):
            p, low, e = r.i32(), r.i64(), r.i16()
            r.tags()
            out[(t, p)] = (low, e)
        r.tags()
    return out


def elect_leaders_body(election_type, topics, timeout_ms=10000):
    """v2: election_type 0 preferred 1 unclean; topics [(name, [partitions])] or None (all)."""
    tp = uvarint(0) if topics is None else compact_array(
        [compact_string(n) + compact_array([i32(p) for p in ps]) + TAGS for n, ps in topics])
    return i8(election_type) + tp + i32(timeout_ms) + TAGS


def parse_elect_leaders(body):
    """v2 -> (error, {(topic, partition): (error, message)})"""
    r = Reader(body)
    r.i32()
    top = r.i16()
    out = {}
    for _ in range(r.uvarint() - 1):
        t = r.compact_string()
        for _ in range(r.uvarint() - 1):
            p, e, m = r.i32(), r.i16(), r.compact_string()
            r.tags()
            out[(t, p)] = (e, m)
        r.tags()
    return top, out


def list_partition_reassignments_body(topics=None, timeout_ms=10000):
    """v0: topics [(name, [partitions])] or None (all)."""
    tp = uvarint(0) if topics is None else compact_array(
        [compact_string(n) + compact_array([i32(p) for p in ps]) + TAGS for n, ps in topics])
    return i32(timeout_ms) + tp + TAGS


def parse_list_partition_reassignments(body):
    """v0 -> (error, {(topic, partition): (replicas, adding, removing)})"""
    r = Reader(body)
    r.i32()
    err, _msg = r.i16(), r.compact_string()
    out = {}
    for _ in range(r.uvarint() - 1):
        t = r.compact_string()
        for _ in range(r.uvarint() - 1):
            p = r.i32()
            reps = r.compact_array(lambda rr: rr.i32())
            add = r.compact_array(lambda rr: rr.i32())
            rem = r.compact_array(lambda rr: rr.i32())
            r.tags()
            out[(t, p)] = (reps, add, rem)
        r.tags()
    return err, out


def describe_log_dirs_body(topics=None):
    """v4: topics [(name, [partitions])] or None (all)."""
    tp = uvarint(0) if topics is None else compact_array(
        [compact_string(n) + compact_array([i32(p) for p in ps]) + TAGS for n, ps in topics])
    return tp + TAGS


def parse_describe_log_dirs(body):
    """v4 -> (error, [{dir, error, total, usable, parts: {(topic, p): (size, lag)}}])"""
    r = Reader(body)
    r.i32()
    err = r.i16()
    dirs = []
    for _ in range(r.uvarint() - 1):
        d = {"error": r.i16(), "dir": r.compact_string(), "parts": {}}
        for _ in range(r.uvarint() - 1):
            t = r.compact_string()
            for _ in range(r.uvarint() - 1):
                p, size, lag, _fut = r.i32(), r.i64(), r.i64(), r.boolean()
                r.tags()
                d["parts"][(t, p)] = (size, lag)
            r.tags()
        d["total"], d["usable"] = r.i64(), r.i64()
        r.tags()
        dirs.append(d)
    return err, dirs


def describe_topic_partitions_body(topics, limit=2000, cursor=None):
    """v0: topics [names] ([] = all), cursor (topic, partition) or None."""
    c = i8(-1) if cursor is None else i8(1) + compact_string(cursor[0]) + i32(cursor[1]) + TAGS
    return compact_array([compact_string(n) + TAGS for n in topics]) + i32(limit) + c + TAGS


def parse_describe_topic_partitions(body):
    """v0 -> ([{error, name, id, partitions: [{error, index, leader, epoch, replicas, isr,
    elr, last_known_elr, offline}]}], next_cursor (topic, partition) or None)"""
    r = Reader(body)
    r.i32()

    def part(rr):
        d = {"error": rr.i16(), "index": rr.i32(), "leader": rr.i32(), "epoch": rr.i32(),
             "replicas": rr.compact_array(lambda x: x.i32()),
             "isr": rr.compact_array(lambda x: x.i32()),
             "elr": rr.compact_array(lambda x: x.i32()),
             "last_known_elr": rr.compact_array(lambda x: x.i32()),
             "offline": rr.compact_array(lambda x: x.i32())}
        rr.tags()
        return d

    def topic(rr):
        d = {"error": rr.i16(), "name": rr.compact_string(), "id": rr.take(16),
             "internal": rr.boolean()}
        d["partitions"] = rr.compact_array(part)
        rr.i32()
        rr.tags()
        return d
    topics = r.compact_array(topic)
    cur = None
    if r.i8() >= 0:
        cur = (r.compact_string(), r.i32())
        r.tags()
    r.tags()
    return topics, cur


def get_telemetry_subscriptions_body(instance_id=b"\0" * 16):
    return uuid(instance_id) + TAGS


def parse_get_telemetry_subscriptions(body):
    """v0 -> {error, instance_id, subscription_id, compression, push_interval, max_bytes,
    delta, metrics}"""
    r = Reader(body)
    r.i32()
    d = {"error": r.i16(), "instance_id": r.take(16), "subscription_id": r.i32(),
         "compression": r.compact_array(lambda x: x.i8()), "push_interval": r.i32(),
         "max_bytes": r.i32(), "delta": r.boolean(),
         "metrics": r.compact_array(lambda x: x.compact_string())}
    r.tags()
    return d


def push_telemetry_body(instance_id, subscription_id, terminating=False, metrics=b""):
    return (uuid(instance_id) + i32(subscription_id) + boolean(terminating) + i8(0)
            + uvarint(len(metrics) + 1) + metrics + TAGS)


# ---------------------------------------------------------------------------------------------
# KIP-848 consumer groups (flexible)
# ---------------------------------------------------------------------------------------------
def consumer_group_heartbeat_body(group, member_id, epoch, instance_id=None, rack_id=None,
                                  rebalance_ms=-1, topics=None, regex=None, assignor=None,
                                  owned=None, version=0):
    b = (compact_string(group) + compact_string(member_id) + i32(epoch)
         + compact_string(instance_id) + compact_string(rack_id) + i32(rebalance_ms)
         + (uvarint(0) if topics is None else compact_array([compact_string(t) for t in topics])))
    if version >= 1:
        b += compact_string(regex)
    b += compact_string(assignor)
    if owned is None:
        b += uvarint(0)
    else:
        b += compact_array([uuid(tid) + compact_array([i32(p) for p in ps]) + TAGS
                            for tid, ps in owned.items()])
    return b + TAGS


def parse_consumer_group_heartbeat(body):
    r = Reader(body)
    r.i32()
    d = {"error": r.i16(), "message": r.compact_string(), "member_id": r.compact_string(),
         "epoch": r.i32(), "interval": r.i32(), "assignment": None}
    if r.i8() >= 0:
        asg = {}
        for _ in range(r.uvarint() - 1):
            tid = r.take(16)
            asg[tid] = r.compact_array(lambda x: x.i32())
            r.tags()
        r.tags()
        d["assignment"] = asg
    r.tags()
    return d


def parse_consumer_group_describe(body):
    r = Reader(body)
    r.i32()

    def assignment(rr):
        out = {}
        for _ in range(rr.uvarint() - 1):
            rr.take(16)
            name = rr.compact_string()
            out[name] = rr.compact_array(lambda x: x.i32())
            rr.tags()
        rr.tags()
        return out

    def member(rr):
        d = {"member_id": rr.compact_string(), "instance_id": rr.compact_string(),
             "rack_id": rr.compact_string(), "epoch": rr.i32(), "client_id": rr.compact_string(),
             "client_host": rr.compact_string(),
             "topics": rr.compact_array(lambda x: x.compact_string()),
             "regex": rr.compact_string()}
        d["assignment"] = assignment(rr)
        d["target"] = assignment(rr)
        rr.tags()
        return d

    out = {}
    for _ in range(r.uvarint() - 1):
        d = {"error": r.i16(), "message": r.compact_string()}
        gid = r.compact_string()
        d.update(state=r.compact_string(), epoch=r.i32(), assignment_epoch=r.i32(),
                 assignor=r.compact_string())
        d["members"] = r.compact_array(member)
        r.i32()
        r.tags()
        out[gid] = d
    r.tags()
    return out
