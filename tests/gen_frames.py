#!/usr/bin/python3
"""Regenerate testdata/frames/*.bin: static request frames (4-byte size prefix included) that
test_badinput.py replays against a live broker and that tests/run_all.sh uses to seed the
fuzzers.  Frames named ok_*.bin are valid and must be answered; all others are malformed and
must be answered with an error or make the broker close the connection.

    /usr/bin/python3 tests/gen_frames.py        # writes testdata/frames/
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kwire  # noqa: E402
from kwire import i16, i32, string, frame, request  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "testdata" / "frames"
TS = 1700000000000  # fixed timestamps keep the files reproducible


def batch(n=3):
    return kwire.record_batch([(b"k%d" % i, b"value-%d" % i, [("h", b"x")]) for i in range(n)],
                              base_timestamp=TS)


def frames():
    f = {}
    # --- valid ---
    f["ok_api_versions_v0"] = request(kwire.API_VERSIONS, 0, 1, b"")
    f["ok_api_versions_v3"] = request(kwire.API_VERSIONS, 3, 2, kwire.compact_string("kwire")
                                      + kwire.compact_string("1.0") + kwire.TAGS, flexible=True)
    f["ok_metadata_v1_all"] = request(kwire.METADATA, 1, 3, i32(-1))
    f["ok_metadata_v4_one"] = request(kwire.METADATA, 4, 4, kwire.metadata_body(4, ["frames"]))
    f["ok_produce_v7_unknown_topic"] = request(
        kwire.PRODUCE, 7, 5, kwire.produce_body(7, "frames-no-such-topic", 0, batch()))
    f["ok_list_offsets_v1"] = request(kwire.LIST_OFFSETS, 1, 6,
                                      kwire.list_offsets_body(1, "frames", [(0, -1)]))
    f["ok_list_offsets_v7_max_ts"] = request(
        kwire.LIST_OFFSETS, 7, 7, kwire.list_offsets_body(7, "frames", [(0, -3)]), flexible=True)
    f["ok_api_versions_v127"] = request(kwire.API_VERSIONS, 127, 8, kwire.compact_string("k")
                                        + kwire.compact_string("1") + kwire.TAGS, flexible=True)
    f["ok_consumer_group_heartbeat_v1_join"] = request(
        kwire.CONSUMER_GROUP_HEARTBEAT, 1, 9, kwire.consumer_group_heartbeat_body(
            "frames-cg", "frames-member-1", 0, None, None, 30000, ["frames"], "fr.*", "range", {},
            version=1), flexible=True)
    # --- malformed ---
    b = batch()
    f["produce_v7_bad_crc"] = request(kwire.PRODUCE, 7, 10, kwire.produce_body(
        7, "frames", 0, kwire.flip_byte(b, kwire.CRC_OFFSET + 2)))
    f["produce_v7_count_lies"] = request(kwire.PRODUCE, 7, 11, kwire.produce_body(
        7, "frames", 0, kwire.record_batch([(b"k", b"v", [])], record_count=100000,
                                           base_timestamp=TS)))
    f["produce_v7_batch_len_lies"] = request(kwire.PRODUCE, 7, 12, kwire.produce_body(
        7, "frames", 0, b[:8] + i32(0x7FFFFFF0) + b[12:]))
    f["metadata_v1_truncated"] = request(kwire.METADATA, 1, 13, i32(3) + string("one"))
    f["metadata_v1_huge_count"] = request(kwire.METADATA, 1, 14, i32(0x7FFFFFFF))
    f["create_topics_v2_huge_count"] = request(kwire.CREATE_TOPICS, 2, 15, i32(0x7FFFFFFF))
    f["api_versions_v3_bad_compact"] = request(kwire.API_VERSIONS, 3, 16,
                                               kwire.uvarint(0x7FFFFFFF) + b"x", flexible=True)
    f["consumer_group_heartbeat_v0_huge_count"] = request(
        kwire.CONSUMER_GROUP_HEARTBEAT, 0, 19, kwire.compact_string("frames-cg")
        + kwire.compact_string("m") + i32(0) + b"\x00\x00" + i32(30000) + kwire.uvarint(0x7FFFFFFF),
        flexible=True)
    f["unknown_api_key"] = frame(i16(9999) + i16(0) + i32(17) + string("kwire"))
    f["client_id_too_long"] = frame(i16(kwire.METADATA) + i16(1) + i32(18) + i16(3000) + b"ab")
    f["zero_length"] = i32(0)
    f["negative_length"] = i32(-1) + b"\x00" * 8
    f["oversize_length"] = i32(104857601) + b"\x00\x12\x00\x00"
    f["http_get"] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    return f


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(frames().items()):
        (OUT / (name + ".bin")).write_bytes(data)
    print("wrote %d frames to %s" % (len(frames()), OUT))


if __name__ == "__main__":
    main()
