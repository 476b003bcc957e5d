"""GET /v1/topics/{name}/records (issue 14): a partition's records through the admin API, as the
TUI's tail reads them -- the same read path and checks as Fetch.

Covered: the newest N by default, the oldest with offset=-2, an exact offset with next_offset to
continue from, keys, values and headers as previews (bytes that are not printable ASCII written
\\xNN, sizes given, long values cut and marked), control batches of a transaction skipped,
errors (unknown topic or partition 404, bad parameters 400, an offset outside the log 416), and
lost data never served: after the scrubber found offsets lost on every replica, a read at them
answers 409 and a read below them stops before them (lost_from).
"""

import http.client
import json
from urllib.parse import urlsplit

import confluent_kafka as ck
import pytest

from clients import RDK_LOG, ck_produce
from repl_util import wait_replicas_identical
from test_integrity import (CLUSTER, ON_DEMAND, find_batch, flip_byte, integrity, make_topic,
                            produce_batches, scrub_now)


def get(mk, path):
    u = urlsplit(mk.admin_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
    try:
        conn.request("GET", path, headers=mk.admin_headers())
        r = conn.getresponse()
        return r.status, json.loads(r.read().decode())
    finally:
        conn.close()


@pytest.mark.timeout(90)
def test_records_newest_oldest_offset_and_previews(cluster, topic_name):
    mk, topic_name = cluster, topic_name()
    recs = [(0, b"k%d" % i, b"value %d" % i, [("h", b"v%d" % i)]) for i in range(10)]
    recs.append((0, None, b"bin\x00\x01\xff\\", [("raw", b"\xfe")]))
    recs.append((0, b"big", b"x" * 2000, None))
    ck_produce(mk.bootstrap, topic_name, recs)

    st, j = get(mk, "/v1/topics/%s/records" % topic_name)
    assert st == 200, j
    assert j["high_watermark"] == 12 and j["log_start_offset"] == 0
    assert [r["offset"] for r in j["records"]] == list(range(12))  # fewer than the default 20
    assert j["next_offset"] == 12
    st, j = get(mk, "/v1/topics/%s/records?limit=3" % topic_name)
    assert [r["offset"] for r in j["records"]] == [9, 10, 11] and j["offset"] == 9, j
    r9, r10, r11 = j["records"]
    assert r9["key"] == "k9" and r9["value"] == "value 9" and r9["headers"] == [{"key": "h", "value": "v9"}]
    assert r9["timestamp"] > 1_600_000_000_000 and not r9["truncated"]
    assert r10["key"] is None and r10["key_size"] == -1
    assert r10["value"] == "bin\\x00\\x01\\xff\\x5c" and r10["value_size"] == 7
    assert r10["headers"] == [{"key": "raw", "value": "\\xfe"}]
    assert r11["value_size"] == 2000 and r11["truncated"] and len(r11["value"]) < 2000

    st, j = get(mk, "/v1/topics/%s/records?offset=-2&limit=2" % topic_name)
    assert [r["offset"] for r in j["records"]] == [0, 1] and j["next_offset"] == 2, j
    st, j = get(mk, "/v1/topics/%s/records?offset=4&limit=3&partition=0" % topic_name)
    assert [r["key"] for r in j["records"]] == ["k4", "k5", "k6"] and j["next_offset"] == 7, j
    # At the end: nothing yet, and the tail goes on from there.
    st, j = get(mk, "/v1/topics/%s/records?offset=12" % topic_name)
    assert st == 200 and j["records"] == [] and j["next_offset"] == 12, j

    assert get(mk, "/v1/topics/%s/records?offset=13" % topic_name)[0] == 416
    assert get(mk, "/v1/topics/no-such-topic/records")[0] == 404
    assert get(mk, "/v1/topics/%s/records?partition=7" % topic_name)[0] == 404
    for bad in ("limit=0", "limit=501", "offset=-3", "offset=x", "partition=-1"):
        st, j = get(mk, "/v1/topics/%s/records?%s" % (topic_name, bad))
        assert st == 400, (bad, j)


@pytest.mark.timeout(90)
def test_records_skip_transaction_markers(cluster, topic_name):
    mk, topic_name = cluster, topic_name()
    p = ck.Producer({"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "transactional.id": topic_name})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic_name, key=b"t%d" % i, value=b"in a transaction", partition=0)
    p.commit_transaction(30)
    st, j = get(mk, "/v1/topics/%s/records?offset=-2" % topic_name)
    assert st == 200, j
    # Offsets 0..2 are the records, 3 the commit marker: not a record, but read past.
    assert [r["key"] for r in j["records"]] == ["t0", "t1", "t2"], j
    assert j["high_watermark"] == 4 and j["next_offset"] == 3, j
    st, j = get(mk, "/v1/topics/%s/records?offset=3" % topic_name)
    assert j["records"] == [] and j["next_offset"] == 4, j


@pytest.mark.timeout(120)
def test_records_never_serve_lost_data(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(*CLUSTER, *ON_DEMAND, data_dir=data)
    leader = make_topic(mk, "lostrec")
    values = produce_batches(mk, "lostrec", leader, 6)
    wait_replicas_identical(data, "lostrec", 0, [1, 2, 3])
    for b in (1, 2, 3):  # the batch of offsets 10..14 damaged on every replica
        seg, pos, base, last = find_batch(data, b, "lostrec", 12)
        flip_byte(seg, pos + 90 + b)
    scrub_now(mk)
    assert integrity(mk)["total"]["unrepairable_partitions"] == 1

    st, j = get(mk, "/v1/topics/lostrec/records?offset=10")
    assert st == 409 and j["error"] == "data_lost", j
    st, j = get(mk, "/v1/topics/lostrec/records?offset=12")
    assert st == 409, j
    st, j = get(mk, "/v1/topics/lostrec/records?offset=0&limit=100")
    assert st == 200, j
    assert [r["offset"] for r in j["records"]] == list(range(10)), j
    assert j["lost_from"] == 10 and j["next_offset"] == 10, j
    st, j = get(mk, "/v1/topics/lostrec/records?offset=15&limit=100")
    assert [r["offset"] for r in j["records"]] == list(range(15, 30))
    assert [r["value"].encode() for r in j["records"]] == values[15:]
    # The newest records (the default) come from after the lost ones.
    st, j = get(mk, "/v1/topics/lostrec/records?limit=5")
    assert [r["offset"] for r in j["records"]] == list(range(25, 30)), j
