#!/usr/bin/env python3
"""clients_bench -- many producer connections at a modest rate (issue 16, "Many clients").

Spawns `minikora serve --ephemeral --port 0 --ready-file F`, creates a topic (6 partitions,
RF 3) through the admin API, then opens BENCH_CLIENTS (500) connections with asyncio, each to
the leader of partition i % 6, and has each send BENCH_CLIENTS_RATE (4) Produce requests per
second (Produce v7, acks=all, one 1000-byte record in one batch, encoded once: the same bytes
every time), one at a time per connection, start times spread over the first second.

Measured over BENCH_CLIENTS_SECS (10) seconds after 2 s of warm-up: the request latency (send
to response, p50/p99/p99.9), the requests answered, errors, and the event loop's busy fraction
from /metrics (1 - d(minikora_loop_idle_seconds_total) / d(minikora_loop_wall_seconds_total)
over the measured stretch), and the RSS with every connection open.

The client is one Python process on the same cores: at 2000 requests/s its own scheduling
shows in the latency (compare runs of the same tool, not with mkbench's figures).
Prints `RESULT key value` lines; run.sh puts them into its table.  Stdlib only (+ tests/kwire).
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kwire  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "500"))
RATE = float(os.environ.get("BENCH_CLIENTS_RATE", "4"))
SECS = float(os.environ.get("BENCH_CLIENTS_SECS", "10"))
WARM = 2.0
MINIKORA = os.environ.get("MINIKORA", "./minikora")
PRODUCE_V = 7
TOPIC = "clients-bench"
PARTS = 6


def result(k, v):
    print("RESULT %s %s" % (k, v), flush=True)


def admin_req(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def loop_times(base, token):
    text = admin_req(base, token, "GET", "/metrics")
    idle = float(re.search(r"^minikora_loop_idle_seconds_total (\S+)", text, re.M).group(1))
    wall = float(re.search(r"^minikora_loop_wall_seconds_total (\S+)", text, re.M).group(1))
    return idle, wall


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


async def client(i, addr, frame_for, stats, t_start, t_measure, t_end):
    reader, writer = await asyncio.open_connection(*addr)
    period = 1.0 / RATE
    nxt = t_start + (i / CLIENTS) * period  # spread the clients over one period
    corr = 0
    try:
        while True:
            now = time.monotonic()
            if nxt > now:
                await asyncio.sleep(nxt - now)
            if time.monotonic() >= t_end:
                break
            corr += 1
            t0 = time.monotonic()
            writer.write(frame_for(corr))
            hdr = await reader.readexactly(4)
            n = int.from_bytes(hdr, "big")
            body = await reader.readexactly(n)
            t1 = time.monotonic()
            err = kwire.parse_produce(PRODUCE_V, body[4:])[0][2]
            if t0 >= t_measure:
                stats["lat"].append(t1 - t0)
                if err:
                    stats["errors"] += 1
            nxt += period
    finally:
        writer.close()


async def run(leaders, pid, base, token):
    batch = kwire.record_batch([(None, b"x" * 1000, ())])
    bodies = [kwire.produce_body(PRODUCE_V, TOPIC, p, batch, acks=-1) for p in range(PARTS)]

    def framer(p):
        return lambda corr: kwire.request(0, PRODUCE_V, corr, bodies[p], client_id="clients-bench")

    stats = {"lat": [], "errors": 0}
    t_start = time.monotonic() + 1.0
    t_measure = t_start + WARM
    t_end = t_measure + SECS
    tasks = [asyncio.ensure_future(client(i, leaders[i % PARTS], framer(i % PARTS), stats, t_start, t_measure,
                                          t_end)) for i in range(CLIENTS)]
    # The loop's idle time over the measured stretch, and RSS with all connections open.
    await asyncio.sleep(max(0.0, t_measure - time.monotonic()))
    idle0, wall0 = await asyncio.get_running_loop().run_in_executor(None, loop_times, base, token)
    rss = rss_kb(pid)
    await asyncio.sleep(max(0.0, t_end - time.monotonic()))
    idle1, wall1 = await asyncio.get_running_loop().run_in_executor(None, loop_times, base, token)
    done = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [d for d in done if isinstance(d, Exception)]
    return stats, (idle0, wall0, idle1, wall1), rss, failed


def main():
    d = tempfile.mkdtemp(prefix="mkclients-")
    ready = os.path.join(d, "ready.json")
    log = open(os.environ.get("BENCH_CLIENTS_LOG", os.devnull), "w")
    proc = subprocess.Popen([MINIKORA, "serve", "--ephemeral", "--port", "0", "--ready-file", ready],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
            if time.monotonic() > deadline or proc.poll() is not None:
                result("clients_failed", "minikora did not get ready")
                return 1
            time.sleep(0.02)
        time.sleep(0.05)
        info = json.load(open(ready))
        base, token = info["admin"], info["admin_token"]
        admin_req(base, token, "POST", "/v1/topics",
                  {"name": TOPIC, "partitions": PARTS, "replication_factor": 3})
        host, port = info["bootstrap"].split(",")[0].rsplit(":", 1)
        leaders = {}
        deadline = time.monotonic() + 30
        while len(leaders) < PARTS and time.monotonic() < deadline:
            with kwire.Conn(host, int(port)) as c:
                c.send(kwire.request(kwire.METADATA, 1, 1,
                                     kwire.metadata_body(1, [TOPIC])))
                md = kwire.parse_metadata(1, c.recv_frame()[4:])
            nodes = {b["node_id"]: (b["host"], b["port"]) for b in md["brokers"]}
            for t in md["topics"]:
                for p in t["partitions"]:
                    if p["error"] == 0 and p["leader"] in nodes:
                        leaders[p["index"]] = nodes[p["leader"]]
            if len(leaders) < PARTS:
                time.sleep(0.1)
        if len(leaders) < PARTS:
            result("clients_failed", "no leaders for %s" % TOPIC)
            return 1
        rss_before = rss_kb(proc.pid)
        stats, (i0, w0, i1, w1), rss, failed = asyncio.run(run(leaders, proc.pid, base, token))
        lat = sorted(stats["lat"])
        n = len(lat)

        def q(x):
            return "%.2f" % (lat[min(n - 1, int(x * n))] * 1000) if n else "n/a"
        result("clients", CLIENTS)
        result("clients_rate_per_conn", RATE)
        result("clients_requests", n)
        result("clients_req_per_s", "%.0f" % (n / SECS))
        result("clients_errors", stats["errors"])
        result("clients_conn_failures", len(failed))
        result("clients_p50_ms", q(0.50))
        result("clients_p99_ms", q(0.99))
        result("clients_p999_ms", q(0.999))
        result("clients_loop_busy", "%.3f" % (1.0 - (i1 - i0) / (w1 - w0)) if w1 > w0 else "n/a")
        result("clients_rss_before_kb", rss_before)
        result("clients_rss_kb", rss)
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        try:
            os.remove(ready)
            os.rmdir(d)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
