#!/usr/bin/python3
"""Regenerate the kafka-python golden batches in this directory.

kafka-python's DefaultRecordBatchBuilder is an independent implementation
of the v2 batch format (and of the codecs' Kafka framing: xerial snappy,
LZ4 frame, gzip, zstd), so these files check our parser against someone
else's writer.  Run: /usr/bin/python3 testdata/batches/gen_kafka_python.py
Content (batch_test.c knows it): baseOffset 0, timestamps 1700000000000+i,
  0: key "k0", value "value-0-" x 40, headers [("h0", "v0"), ("h1", null)]
  1: key null, value "value-1-" x 40, no headers
  2: key "k2", value null, no headers
(values are repetitive so that kafka-python keeps the compressed form)
"""
import os
from kafka.record.default_records import DefaultRecordBatchBuilder

here = os.path.dirname(os.path.abspath(__file__))
for name, codec in [("none", 0), ("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)]:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=0,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    b.append(0, 1700000000000, b"k0", b"value-0-" * 40, [("h0", b"v0"), ("h1", None)])
    b.append(1, 1700000000001, None, b"value-1-" * 40, [])
    b.append(2, 1700000000002, b"k2", None, [])
    with open(os.path.join(here, "kafka_python_%s.bin" % name), "wb") as f:
        f.write(bytes(b.build()))
