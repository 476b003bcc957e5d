#!/usr/bin/env python3
"""conns_bench.py -- `make bench`'s idle connections section (issue 16): what an idle client
connection costs in resident memory, and whether the memory goes back once clients leave.

One fresh `minikora serve --ephemeral --port 0` (six brokers).  RSS (/proc/PID/status VmRSS) is
read idle, after BENCH_CONNS TCP connections spread over the brokers' PLAINTEXT listeners have
each sent one ApiVersions request and read its answer (then stay idle), and again after they all
closed (once the broker's idle sweep, about once a second, has trimmed the heap).  Prints
`RESULT key value` lines for run.sh's table (KiB, and bytes per connection).

Also importable: measure(pid, addrs, n) is what tests/test_scale.py asserts bounds on.

Environment: MINIKORA (./minikora), BENCH_CONNS (5000), BENCH_OUT (build/bench).
"""

import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _api_versions_frame(corr):
    # ApiVersions v0: header v1 (api key, version, correlation id, client id), empty body
    body = struct.pack(">hhih", 18, 0, corr, 5) + b"conns"
    return struct.pack(">i", len(body)) + body


def _read_frame(s):
    hdr = b""
    while len(hdr) < 4:
        chunk = s.recv(4 - len(hdr))
        if not chunk:
            raise ConnectionError("closed before an answer")
        hdr += chunk
    n = struct.unpack(">i", hdr)[0]
    got = 0
    while got < n:
        chunk = s.recv(min(65536, n - got))
        if not chunk:
            raise ConnectionError("closed mid-answer")
        got += len(chunk)


def settle(pid, secs=3.0):
    """RSS once it stops falling (the broker trims its heap from a 1 s sweep)."""
    deadline = time.monotonic() + secs
    last = rss_kib(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss_kib(pid)
        if now >= last:
            return now
        last = now
    return last


def measure(pid, addrs, n):
    """Open n connections round-robin over addrs (host, port), one ApiVersions each, then idle;
    returns dict of idle_kib, conns_kib, closed_kib (RSS) and per_conn_bytes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
    idle = settle(pid, 1.5)
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection(addrs[i % len(addrs)], timeout=10)
            s.sendall(_api_versions_frame(i))
            socks.append(s)
        for s in socks:
            _read_frame(s)
        time.sleep(0.5)
        held = rss_kib(pid)
    finally:
        for s in socks:
            s.close()
    closed = settle(pid, 4.0)
    return {"idle_kib": idle, "conns_kib": held, "closed_kib": closed,
            "per_conn_bytes": (held - idle) * 1024 // max(n, 1)}


def main():
    binary = os.environ.get("MINIKORA", "./minikora")
    n = int(os.environ.get("BENCH_CONNS", "5000"))
    out = os.environ.get("BENCH_OUT", "build/bench")
    os.makedirs(out, exist_ok=True)
    ready = os.path.join(out, "conns.ready.json")
    if os.path.exists(ready):
        os.unlink(ready)
    log = open(os.path.join(out, "conns.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--ephemeral", "--port", "0", "--ready-file", ready],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if time.monotonic() > deadline or proc.poll() is not None:
                print("RESULT conns_failed no_ready_file")
                return 1
            time.sleep(0.05)
        time.sleep(0.2)
        with open(ready) as f:
            info = json.load(f)
        addrs = []
        for hp in info["bootstrap"].split(","):
            host, port = hp.rsplit(":", 1)
            addrs.append((host.strip("[]"), int(port)))
        r = measure(proc.pid, addrs, n)
        print("RESULT conns_n %d" % n)
        for k, v in r.items():
            print("RESULT conns_%s %d" % (k, v))
        return 0
    except Exception as e:  # report, never hang the bench
        print("RESULT conns_failed %s" % str(e).replace(" ", "_"))
        return 1
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
