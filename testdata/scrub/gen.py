#!/usr/bin/python3
"""Regenerate the replica log directories in this directory (src/scrub/scrub_test.c reads them).

Each directory is one replica log as log/ writes it (segments named by their 20-digit base offset;
no index files: the scrubber's cursors read the .log files only).  The batches are the golden
batches of testdata/batches (3 records each) with baseOffset and partitionLeaderEpoch rewritten
(neither is covered by the CRC).  Run: /usr/bin/python3 testdata/scrub/gen.py

  clean/     segment 0: batches at 0, 3, 6 (epochs 0, 0, 1); segment 9: 9, 12 (epochs 1, 2)
  crc/       clean, with one byte of a record value of the batch at 3 flipped (CRC mismatch)
  framing/   clean, with the batchLength of the batch at 3 made huge: offsets 3..8 (the rest of
             segment 0) cannot be framed; segment 9 is still read
  gap/       clean without the batch at 3 (segment 0 holds 0, 6): offsets 3..5 are missing
  epoch/     clean, with the batch at 3 under epoch 5: the batch at 6 (epoch 1) goes back
  diverged/  clean, with the batch at 6 replaced by the gzip golden batch (sound, but other
             bytes: a replica that diverged)
  start/     clean, with log-start-offset 6
"""
import os
import shutil
import struct

here = os.path.dirname(os.path.abspath(__file__))
gold = os.path.join(here, "..", "batches")
NONE = open(os.path.join(gold, "librdkafka_none.bin"), "rb").read()
GZIP = open(os.path.join(gold, "kafka_python_gzip.bin"), "rb").read()


def batch(raw, base, epoch):
    b = bytearray(raw)
    struct.pack_into(">q", b, 0, base)
    struct.pack_into(">i", b, 12, epoch)
    return b


def write(name, segs, start=None):
    d = os.path.join(here, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for base, batches in segs:
        with open(os.path.join(d, "%020d.log" % base), "wb") as f:
            for b in batches:
                f.write(b)
    if start is not None:
        with open(os.path.join(d, "log-start-offset"), "w") as f:
            f.write("%d\n" % start)


def clean():
    return [(0, [batch(NONE, 0, 0), batch(NONE, 3, 0), batch(NONE, 6, 1)]),
            (9, [batch(NONE, 9, 1), batch(NONE, 12, 2)])]


write("clean", clean())
crc = batch(NONE, 3, 0)
crc[200] ^= 0x01
write("crc", [(0, [batch(NONE, 0, 0), crc, batch(NONE, 6, 1)]), (9, [batch(NONE, 9, 1), batch(NONE, 12, 2)])])
framing = batch(NONE, 3, 0)
struct.pack_into(">i", framing, 8, 0x7fff0000)
write("framing", [(0, [batch(NONE, 0, 0), framing, batch(NONE, 6, 1)]),
                  (9, [batch(NONE, 9, 1), batch(NONE, 12, 2)])])
write("gap", [(0, [batch(NONE, 0, 0), batch(NONE, 6, 1)]), (9, [batch(NONE, 9, 1), batch(NONE, 12, 2)])])
write("epoch", [(0, [batch(NONE, 0, 0), batch(NONE, 3, 5), batch(NONE, 6, 1)]),
                (9, [batch(NONE, 9, 1), batch(NONE, 12, 2)])])
write("diverged", [(0, [batch(NONE, 0, 0), batch(NONE, 3, 0), batch(GZIP, 6, 1)]),
                   (9, [batch(NONE, 9, 1), batch(NONE, 12, 2)])])
write("start", clean(), start=6)
