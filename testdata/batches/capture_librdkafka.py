#!/usr/bin/python3
"""Capture record batches exactly as librdkafka (via confluent-kafka) writes them.

Runs a throwaway fake broker (just enough ApiVersions v0, Metadata v1 and
Produce v3-v7 to accept one produce request), points a real librdkafka
producer at it once per codec, and saves the records blob of the produce
request as librdkafka_<codec>.bin.  Run from anywhere:
    /usr/bin/python3 testdata/batches/capture_librdkafka.py
librdkafka 2.0.2 writes snappy as one raw block (no Xerial framing), unlike
kafka-python and the Java client; both variants are therefore covered.
Content (batch_test.c knows it): timestamps 1700000000000+i,
  0: key "k0", value "value-0-" x 40, headers [("h0", "v0"), ("h1", null)]
  1: key null, value "value-1-" x 40, no headers
  2: key "k2", value null, no headers
"""
import os
import socket
import socketserver
import struct
import threading

from confluent_kafka import Producer

HERE = os.path.dirname(os.path.abspath(__file__))
captured = []


def s16(v): return struct.pack(">h", v)
def s32(v): return struct.pack(">i", v)
def s64(v): return struct.pack(">q", v)
def kstr(s): b = s.encode(); return s16(len(b)) + b


class Reader:
    def __init__(self, b): self.b, self.p = b, 0
    def take(self, n): v = self.b[self.p:self.p + n]; self.p += n; return v
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def nstr(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        port = self.server.server_address[1]
        while True:
            hdr = self.request.recv(4, socket.MSG_WAITALL)
            if len(hdr) < 4:
                return
            body = self.request.recv(struct.unpack(">i", hdr)[0], socket.MSG_WAITALL)
            r = Reader(body)
            key, ver, corr = r.i16(), r.i16(), r.i32()
            if key == 18:  # ApiVersions: always answer in v0 form
                # librdkafka derives features (compression!) from this
                # list, so advertise a 2.x-era broker; only Produce and
                # Metadata are ever answered
                apis = [(0, 0, 7), (1, 0, 10), (2, 0, 5), (3, 0, 1), (8, 0, 7), (9, 0, 5), (10, 0, 2),
                        (11, 0, 5), (12, 0, 3), (13, 0, 2), (14, 0, 3), (17, 0, 1), (18, 0, 0), (22, 0, 1)]
                err = 0 if ver == 0 else 35
                out = s16(err) + s32(len(apis)) + b"".join(s16(a) + s16(lo) + s16(hi) for a, lo, hi in apis)
            elif key == 3:  # Metadata v1
                r.nstr()
                n = r.i32()
                topics = [r.nstr() for _ in range(max(n, 0))]
                out = s32(1) + s32(0) + kstr("127.0.0.1") + s32(port) + s16(-1) + s32(0)
                out += s32(len(topics))
                for t in topics:
                    out += s16(0) + kstr(t) + b"\0" + s32(1) + s16(0) + s32(0) + s32(0) + s32(1) + s32(0) + s32(1) + s32(0)
            elif key == 0:  # Produce v3..v7
                r.nstr()
                r.nstr()
                acks, _timeout = r.i16(), r.i32()
                out = b""
                tcount = r.i32()
                out += s32(tcount)
                for _ in range(tcount):
                    t = r.nstr()
                    pcount = r.i32()
                    out += kstr(t) + s32(pcount)
                    for _ in range(pcount):
                        part = r.i32()
                        records = r.take(r.i32())
                        captured.append(bytes(records))
                        out += s32(part) + s16(0) + s64(0) + s64(-1)
                        if ver >= 5:
                            out += s64(0)
                out += s32(0)
                if acks == 0:
                    continue
            else:
                return
            resp = s32(corr) + out
            self.request.sendall(s32(len(resp)) + resp)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        del captured[:]
        p = Producer({"bootstrap.servers": "127.0.0.1:%d" % port, "compression.type": codec,
                      "linger.ms": 500, "enable.idempotence": False, "acks": 1})
        p.list_topics("t", timeout=10)  # metadata first, so all three records share a batch
        p.produce("t", key=b"k0", value=b"value-0-" * 40, partition=0, timestamp=1700000000000,
                  headers=[("h0", b"v0"), ("h1", None)])
        p.produce("t", key=None, value=b"value-1-" * 40, partition=0, timestamp=1700000000001)
        p.produce("t", key=b"k2", value=None, partition=0, timestamp=1700000000002)
        left = p.flush(10)
        assert left == 0 and len(captured) == 1, (codec, left, [len(c) for c in captured])
        del p
        with open(os.path.join(HERE, "librdkafka_%s.bin" % codec), "wb") as f:
            f.write(captured[0])
        print(codec, len(captured[0]), "bytes")
    srv.shutdown()


if __name__ == "__main__":
    main()
