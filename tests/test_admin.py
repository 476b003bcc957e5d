"""The admin HTTP API (docs/ADMIN-API.md): every route, its JSON errors, reset between tests,
broker and AZ lifecycle seen both in the API and in Kafka Metadata, /metrics as Prometheus text,
and bad HTTP input that must never take the process down.

The admin URL comes from the ready line ("... admin http://H:P"); with --port 0 (as the fixture
starts it) the admin port is a free one too.  Tests that stop brokers use their own process.
"""

import http.client
import json
import re
import socket
import subprocess
import time
import uuid
from urllib.parse import urlsplit

import confluent_kafka as ck
import pytest

import kwire
from clients import ck_admin, ck_close_bounded, ck_consume, ck_produce, make_records, wait_topic_gone, wait_topic_ready


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def admin_url(mk):
    """The admin URL of the last start's ready line (asserted to be there)."""
    assert mk.ready_line, "no ready line: %r" % mk.stdout_lines[-5:]
    assert mk.admin_url, "no admin URL in the ready line: %r" % mk.ready_line
    return mk.admin_url


def call(mk, method, path, body=None, raw=None, headers=None, timeout=20, auth=True):
    """-> (status, parsed JSON or text, headers).  body is JSON-encoded; raw is sent as is.
    auth: send the cluster's admin token (every acting route needs it)."""
    u = urlsplit(admin_url(mk))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        if auth:
            h.update(mk.admin_headers())
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode()
        ctype = r.getheader("Content-Type", "")
        parsed = json.loads(text) if ctype.startswith("application/json") and text else text
        return r.status, parsed, dict(r.getheaders())
    finally:
        conn.close()


def ok(mk, method, path, body=None, status=200):
    st, j, _ = call(mk, method, path, body)
    assert st == status, "%s %s -> %d %r (expected %d)" % (method, path, st, j, status)
    return j


def err(mk, method, path, status, code=None, body=None, raw=None):
    st, j, h = call(mk, method, path, body=body, raw=raw)
    assert st == status, "%s %s -> %d %r (expected %d)" % (method, path, st, j, status)
    assert isinstance(j, dict) and set(j) == {"error", "message"}, j
    assert j["message"], j
    if code:
        assert j["error"] == code, j
    return j, h


def raw_http(mk, data, timeout=10):
    """Send raw bytes, read until the server closes (or timeout); returns bytes."""
    u = urlsplit(admin_url(mk))
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)  # bounded by `timeout`
    raise AssertionError("%s: not within %.0f s (last: %r)" % (what, timeout, last))


def create(mk, name, partitions=3, rf=3, configs=None):
    body = {"name": name, "partitions": partitions, "replication_factor": rf}
    if configs is not None:
        body["configs"] = configs
    return ok(mk, "POST", "/v1/topics", body, status=201)["topic"]


def metadata_brokers(mk):
    """Broker ids in Kafka Metadata, asked of any running broker."""
    for h, p in mk.brokers:
        try:
            with kwire.Conn(h, p, timeout=5) as c:
                md = c.metadata([])
            return sorted(b["node_id"] for b in md["brokers"])
        except (OSError, kwire.Closed):
            continue
    raise AssertionError("no broker answers Metadata")


def metadata_topic(mk, topic):
    for h, p in mk.brokers:
        try:
            with kwire.Conn(h, p, timeout=5) as c:
                md = c.metadata([topic])
            t = [x for x in md["topics"] if x["name"] == topic]
            return t[0] if t else None
        except (OSError, kwire.Closed):
            continue
    raise AssertionError("no broker answers Metadata")


def events(mk, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    return ok(mk, "GET", "/v1/events" + ("?" + qs if qs else ""))["events"]


# ---------------------------------------------------------------------------------------------
# Ready line, flags, health
# ---------------------------------------------------------------------------------------------
def test_ready_line_keeps_bootstrap_and_adds_admin(cluster):
    line = [l for l in cluster.stdout_lines if "ready" in l][0]
    assert re.search(r"bootstrap servers (\S+)", line).group(1) == cluster.bootstrap
    assert line.index("bootstrap servers") < line.index(" admin http://"), line
    u = urlsplit(admin_url(cluster))
    assert u.hostname == "127.0.0.1" and u.port and u.port != 8080, line


def test_healthz_and_readyz(cluster):
    j = ok(cluster, "GET", "/healthz")
    assert j["status"] == "ok" and j["uptime_ms"] >= 0
    j = ok(cluster, "GET", "/readyz")
    assert j == {"status": "ready", "brokers_running": 6, "brokers": 6}


def test_index_lists_every_route(cluster):
    j = ok(cluster, "GET", "/v1")
    routes = {(r["method"], r["path"]) for r in j["routes"]}
    for want in [("GET", "/v1/cluster"), ("GET", "/v1/topics"), ("POST", "/v1/topics"),
                 ("GET", "/v1/topics/{}"), ("DELETE", "/v1/topics/{}"), ("GET", "/v1/groups"),
                 ("POST", "/v1/brokers/{}/stop"), ("POST", "/v1/brokers/{}/crash"),
                 ("POST", "/v1/brokers/{}/start"), ("POST", "/v1/brokers/{}/restart"),
                 ("POST", "/v1/azs/{}/down"), ("POST", "/v1/azs/{}/up"), ("POST", "/v1/reset"),
                 ("GET", "/v1/events"), ("GET", "/metrics"), ("GET", "/healthz"),
                 ("GET", "/readyz")]:
        assert want in routes, want
    assert ok(cluster, "GET", "/") == j


@pytest.mark.timeout(60)
def test_admin_port_disabled_and_ready_file(minikora, tmp_path):
    mk = minikora("--admin-port", "-1")
    line = [l for l in mk.stdout_lines if "ready" in l][0]
    assert "admin" not in line.split(")")[-1], line
    mk.stop()

    rf = tmp_path / "ready.json"
    mk = minikora("--ready-file", str(rf), "--brokers", "3")
    j = json.loads(rf.read_text())
    assert j["bootstrap"] == mk.bootstrap
    assert j["admin"] == admin_url(mk)
    assert [(b["id"], b["port"], b["az"]) for b in j["brokers"]] == [
        (i + 1, p, "az-%d" % (i + 1)) for i, (_, p) in enumerate(mk.brokers)]
    assert ok(mk, "GET", "/healthz")["status"] == "ok"
    mk.stop()
    assert not rf.exists(), "the ready file outlived the process"


# ---------------------------------------------------------------------------------------------
# The admin token
# ---------------------------------------------------------------------------------------------
ACTING = [("POST", "/v1/reset"), ("POST", "/v1/brokers/1/stop"), ("POST", "/v1/brokers/1/crash"),
          ("POST", "/v1/brokers/1/start"), ("POST", "/v1/brokers/1/restart"),
          ("POST", "/v1/azs/az-1/down"), ("POST", "/v1/azs/az-1/up"), ("POST", "/v1/topics"),
          ("DELETE", "/v1/topics/some-topic"),
          # the rule is by method, so routes that do not exist (yet) are covered too
          ("POST", "/v1/tenants"), ("DELETE", "/v1/tenants/acme/keys/k1"), ("PUT", "/v1/cluster"),
          ("PATCH", "/v1/topics")]


def unauthorized(mk, method, path, headers=None):
    """Call without the right token and check the 401: JSON error shape, WWW-Authenticate."""
    st, j, h = call(mk, method, path, body={"name": "t"} if method == "POST" else None,
                    headers=headers, auth=False)
    assert st == 401, "%s %s -> %d %r (expected 401)" % (method, path, st, j)
    assert isinstance(j, dict) and set(j) == {"error", "message"} and j["error"] == "unauthorized", j
    assert h.get("WWW-Authenticate", "").startswith("Bearer"), h
    return j


def test_acting_routes_need_the_token(cluster, topic_name):
    for method, path in ACTING:
        j = unauthorized(cluster, method, path)
        assert "needs the admin token" in j["message"], j
        j = unauthorized(cluster, method, path, {"Authorization": "Bearer not-the-token"})
        assert "wrong admin token" in j["message"], j
    tok = cluster.admin_token
    for bad in ["Bearer " + tok[:-1], "Bearer " + tok + "x", "Basic " + tok, tok, "Bearer",
                "Bearer " + tok.upper() if tok != tok.upper() else "Bearer x" + tok,
                "Bearer " + "a" * 5000]:
        unauthorized(cluster, "POST", "/v1/reset", {"Authorization": bad})
    # Nothing happened: every broker still runs, every AZ is up.
    assert ok(cluster, "GET", "/readyz")["brokers_running"] == 6
    # The right token works, whatever the case of "Bearer".
    name = topic_name()
    t = ok(cluster, "POST", "/v1/topics", {"name": name, "partitions": 1}, status=201)["topic"]
    assert t["name"] == name
    st, j, _ = call(cluster, "DELETE", "/v1/topics/" + name, auth=False,
                    headers={"Authorization": "bearer  %s " % tok})
    assert st == 200 and j["deleted"] == name, (st, j)
    # A refusal is logged.
    assert "refused: no admin token" in cluster.stderr_text()


def test_reads_stay_open_by_default(cluster):
    for path in ["/", "/v1", "/v1/cluster", "/v1/brokers", "/v1/topics", "/v1/groups", "/v1/events",
                 "/v1/latency", "/v1/rates", "/metrics", "/healthz", "/readyz"]:
        st, j, _ = call(cluster, "GET", path, auth=False)
        assert st == 200, (path, st, j)
    st, _, _ = call(cluster, "HEAD", "/v1/cluster", auth=False)
    assert st == 200


def test_token_in_ready_file_and_data_dir(minikora, tmp_path):
    rf = tmp_path / "ready.json"
    mk = minikora("--ready-file", str(rf), "--brokers", "3", data_dir=tmp_path / "data")
    j = json.loads(rf.read_text())
    tok = j["admin_token"]
    assert re.fullmatch(r"[0-9a-f]{64}", tok), j
    f = tmp_path / "data" / "admin-token"
    assert f.read_text() == tok + "\n"
    assert (f.stat().st_mode & 0o777) == 0o600, oct(f.stat().st_mode)
    assert mk.admin_token == tok
    assert ok(mk, "POST", "/v1/reset")["topics_deleted"] == 0
    mk.stop()
    # A new start generates a new token (and rewrites the file, still 0600).
    mk = minikora("--ready-file", str(rf), "--brokers", "3", data_dir=tmp_path / "data")
    tok2 = json.loads(rf.read_text())["admin_token"]
    assert tok2 != tok and f.read_text() == tok2 + "\n" and (f.stat().st_mode & 0o777) == 0o600
    unauthorized(mk, "POST", "/v1/reset", {"Authorization": "Bearer " + tok})
    mk.stop()


def test_given_token_and_auth_for_reads(minikora, tmp_path):
    rf = tmp_path / "ready.json"
    token = "s3cret-Token_" + uuid.uuid4().hex
    mk = minikora("--admin-token", token, "--set", "minikora.admin.auth.reads=true", "--brokers", "3",
                  "--ready-file", str(rf))
    assert json.loads(rf.read_text())["admin_token"] == token
    for path in ["/v1", "/v1/cluster", "/v1/topics", "/metrics", "/v1/events"]:
        unauthorized(mk, "GET", path)
        assert ok(mk, "GET", path) is not None
    for path in ["/healthz", "/readyz"]:  # probes carry no credentials
        st, _, _ = call(mk, "GET", path, auth=False)
        assert st == 200, path
    unauthorized(mk, "POST", "/v1/reset")
    assert ok(mk, "POST", "/v1/reset")["topics_deleted"] == 0
    mk.stop()


@pytest.mark.parametrize("bad", ["", "has space", "x" * 257, "caf\u00e9"])
def test_bad_admin_token_is_a_usage_error(bad):
    from cluster import BIN
    r = subprocess.run([str(BIN), "serve", "--ephemeral", "--port", "0", "--admin-token", bad],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "--admin-token" in r.stderr, r


# ---------------------------------------------------------------------------------------------
# Cluster and brokers
# ---------------------------------------------------------------------------------------------
def test_cluster_topology(cluster):
    j = ok(cluster, "GET", "/v1/cluster")
    assert j["cluster_id"] and j["bootstrap"] == cluster.bootstrap
    ids = [b["id"] for b in j["brokers"]]
    assert ids == [1, 2, 3, 4, 5, 6]
    assert j["controller"] in ids
    assert [b["port"] for b in j["brokers"]] == [p for _, p in cluster.brokers]
    for b in j["brokers"]:
        assert b["az"] == "az-%d" % (1 + (b["id"] - 1) % 3), b
        assert b["cell"] == (b["id"] - 1) // 3, b
        assert b["running"] is True and b["state"] == "running"
        for k in ("leaders", "replicas", "under_replicated", "connections"):
            assert isinstance(b[k], int) and b[k] >= 0, (k, b)
    assert [(a["name"], a["brokers"], a["state"]) for a in j["azs"]] == [
        ("az-1", [1, 4], "up"), ("az-2", [2, 5], "up"), ("az-3", [3, 6], "up")]
    assert [(c["id"], c["brokers"]) for c in j["cells"]] == [(0, [1, 2, 3]), (1, [4, 5, 6])]
    assert j["brokers_running"] == 6 and j["cell_size"] == 3
    assert [b["id"] for b in ok(cluster, "GET", "/v1/brokers")["brokers"]] == ids
    b3 = ok(cluster, "GET", "/v1/brokers/3")["broker"]
    assert b3["id"] == 3 and b3["az"] == "az-3"


def test_leader_and_replica_counts_follow_topics(cluster, topic_name):
    before = {b["id"]: b for b in ok(cluster, "GET", "/v1/cluster")["brokers"]}
    t = create(cluster, topic_name(), partitions=6, rf=3)
    after = {b["id"]: b for b in ok(cluster, "GET", "/v1/cluster")["brokers"]}
    cell = [b for b in after if (b - 1) // 3 == t["cell"]]
    assert sum(after[b]["leaders"] - before[b]["leaders"] for b in after) == 6
    assert sum(after[b]["replicas"] - before[b]["replicas"] for b in after) == 18
    for b in cell:
        assert after[b]["replicas"] - before[b]["replicas"] == 6, (b, after[b], before[b])


# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_topic_create_describe_produce_delete(cluster, topic_name):
    name = topic_name()
    t = create(cluster, name, partitions=3, rf=3, configs={"retention.ms": 3600000,
                                                           "cleanup.policy": "delete"})
    assert t["name"] == name and t["partitions"] == 3 and t["replication_factor"] == 3
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", t["id"]), t["id"]
    assert t["configs"] == {"retention.ms": "3600000", "cleanup.policy": "delete"}
    assert len(t["partition_details"]) == 3
    for i, p in enumerate(t["partition_details"]):
        assert p["partition"] == i
        assert p["leader"] in p["replicas"] and len(p["replicas"]) == 3
        assert sorted(p["isr"]) == sorted(p["replicas"]) and p["offline_replicas"] == []
        assert p["log_start_offset"] == 0 and p["log_end_offset"] == 0 and p["high_watermark"] == 0
        assert len({(r - 1) % 3 for r in p["replicas"]}) == 3, "replicas in distinct AZs"

    # Kafka sees the same topic, leaders and replicas.
    md = wait_topic_ready(cluster.bootstrap, name, 3)
    for p in t["partition_details"]:
        kp = md.topics[name].partitions[p["partition"]]
        assert kp.leader == p["leader"] and list(kp.replicas) == p["replicas"]

    ck_produce(cluster.bootstrap, name, make_records("adm", 300, 3))
    j = wait_for(lambda: (lambda d: d if sum(p["high_watermark"] for p in d["partition_details"]) == 300
                          else None)(ok(cluster, "GET", "/v1/topics/" + name)["topic"]),
                 20, "high watermarks reach 300")
    for p in j["partition_details"]:
        assert p["log_end_offset"] == p["high_watermark"] == 100, p
        assert p["size_bytes"] > 0 and p["segments"] >= 1
        assert all(r["in_sync"] and r["online"] and r["log_end_offset"] == 100
                   for r in p["replica_states"]), p
    assert j["messages"] == 300 and j["size_bytes"] == sum(p["size_bytes"] for p in j["partition_details"])

    listed = {x["name"]: x for x in ok(cluster, "GET", "/v1/topics")["topics"]}
    assert listed[name]["partitions"] == 3 and listed[name]["id"] == t["id"]
    assert "partition_details" not in listed[name]

    d = ok(cluster, "DELETE", "/v1/topics/" + name)
    assert d == {"deleted": name, "id": t["id"]}
    err(cluster, "GET", "/v1/topics/" + name, 404, "unknown_topic")
    err(cluster, "DELETE", "/v1/topics/" + name, 404, "unknown_topic")
    assert name not in {x["name"] for x in ok(cluster, "GET", "/v1/topics")["topics"]}
    wait_topic_gone(cluster.bootstrap, name)


def test_topic_create_defaults_and_errors(cluster, topic_name):
    name = topic_name()
    t = ok(cluster, "POST", "/v1/topics", {"name": name}, status=201)["topic"]
    assert t["partitions"] >= 1 and t["replication_factor"] >= 1  # num.partitions, default RF

    err(cluster, "POST", "/v1/topics", 409, "topic_exists", body={"name": name})
    err(cluster, "POST", "/v1/topics", 400, "bad_json", raw=b'{"name": ')
    err(cluster, "POST", "/v1/topics", 400, "bad_json", raw=b"")
    err(cluster, "POST", "/v1/topics", 400, "bad_json", raw=b'{"name": "a", "name": "b"}')
    err(cluster, "POST", "/v1/topics", 400, "bad_request", body=["not", "an", "object"])
    err(cluster, "POST", "/v1/topics", 400, "bad_request", body={"partitions": 1})
    err(cluster, "POST", "/v1/topics", 400, "bad_request", body={"name": topic_name(), "partitons": 1})
    err(cluster, "POST", "/v1/topics", 400, "bad_request", body={"name": topic_name(), "partitions": "3"})
    err(cluster, "POST", "/v1/topics", 400, "invalid_topic", body={"name": "bad/name"})
    err(cluster, "POST", "/v1/topics", 400, "invalid_topic", body={"name": "x" * 250})
    err(cluster, "POST", "/v1/topics", 400, "invalid_partitions", body={"name": topic_name(), "partitions": 0})
    err(cluster, "POST", "/v1/topics", 400, "invalid_replication_factor",
        body={"name": topic_name(), "replication_factor": 4})
    err(cluster, "POST", "/v1/topics", 400, "invalid_config",
        body={"name": topic_name(), "configs": {"no.such.config": "1"}})
    err(cluster, "POST", "/v1/topics", 400, "invalid_config",
        body={"name": topic_name(), "configs": {"retention.ms": "soon"}})
    err(cluster, "POST", "/v1/topics", 400, "invalid_config",
        body={"name": topic_name(), "configs": {"retention.ms": [1]}})
    # None of the refused ones exists.
    names = {x["name"] for x in ok(cluster, "GET", "/v1/topics")["topics"]}
    assert not [n for n in names if "partitons" in n]


# ---------------------------------------------------------------------------------------------
# Routing errors and bad HTTP
# ---------------------------------------------------------------------------------------------
def test_route_errors(cluster):
    err(cluster, "GET", "/v1/nope", 404, "not_found")
    err(cluster, "GET", "/v2/cluster", 404, "not_found")
    _, h = err(cluster, "PUT", "/v1/topics", 405, "method_not_allowed")
    assert set(h["Allow"].split(", ")) == {"GET", "HEAD", "POST"}
    _, h = err(cluster, "GET", "/v1/brokers/1/stop", 405, "method_not_allowed")
    assert h["Allow"] == "POST"
    err(cluster, "POST", "/v1/brokers/99/stop", 404, "unknown_broker")
    err(cluster, "POST", "/v1/brokers/0/start", 404, "unknown_broker")
    err(cluster, "POST", "/v1/brokers/abc/crash", 404, "unknown_broker")
    err(cluster, "GET", "/v1/brokers/-1", 404, "unknown_broker")
    err(cluster, "POST", "/v1/brokers/1/explode", 404, "not_found")
    err(cluster, "POST", "/v1/azs/az-9/down", 404, "unknown_az")
    err(cluster, "GET", "/v1/topics/no-such-topic", 404, "unknown_topic")
    err(cluster, "GET", "/v1/groups/no-such-group", 404, "unknown_group")
    err(cluster, "GET", "/v1/topics/a%2Fb", 404, "not_found")
    err(cluster, "GET", "/v1/events?since=-1", 400, "bad_request")
    err(cluster, "GET", "/v1/events?limit=x", 400, "bad_request")
    err(cluster, "GET", "/v1/latency?broker=x", 400, "bad_request")
    # Trailing slash and query strings are fine.
    assert ok(cluster, "GET", "/v1/cluster/?x=1")["brokers"]


def test_bad_http_never_crashes(cluster):
    out = raw_http(cluster, b"\x00\x01\x02 garbage\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 ") and b'"error":"bad_request"' in out, out[:200]
    out = raw_http(cluster, b"POST /v1/topics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 "), out[:200]
    out = raw_http(cluster, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 414 "), out[:200]
    out = raw_http(cluster, b"GET / HTTP/1.1\r\nX: " + b"y" * 70000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 "), out[:200]
    big = json.dumps({"name": "x", "configs": {"k%d" % i: "v" * 100 for i in range(12000)}}).encode()
    st, j, _ = call(cluster, "POST", "/v1/topics", raw=big)
    assert st == 413 and j["error"] == "payload_too_large", (st, j)
    # Pipelined requests are answered in order on one connection.
    out = raw_http(cluster, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    statuses = re.findall(rb"HTTP/1.1 (\d+)", out)
    assert statuses == [b"200", b"404", b"200"], out[:500]
    # HEAD has the headers, no body.
    out = raw_http(cluster, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"", out[:300]
    # Too many connections: the extra ones get 503, the server stays up and recovers.
    u = urlsplit(admin_url(cluster))
    socks = []
    try:
        for _ in range(70):
            socks.append(socket.create_connection((u.hostname, u.port), timeout=5))
        s = socks[-1]
        s.settimeout(5)
        data = s.recv(4096)
        assert data.startswith(b"HTTP/1.1 503 "), data[:200]
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: call(cluster, "GET", "/healthz")[0] == 200, 10, "healthz after 503s")
    cluster.assert_alive("bad HTTP input")


def test_refused_kafka_requests_become_an_event(cluster):
    seq0 = ok(cluster, "GET", "/v1/events")["last_seq"]
    h, p = cluster.brokers[0]
    for _ in range(3):
        with socket.create_connection((h, p), timeout=5) as s:
            s.sendall(kwire.frame(b"\x7f\x7f\x00\x00\x00\x00\x00\x01\xff\xff"))  # API key 32639
            try:
                s.recv(100)
            except OSError:
                pass
    ev = wait_for(lambda: events(cluster, since=seq0, type="requests_rejected"), 5, "requests_rejected event")
    assert re.match(r"\d+ Kafka requests refused", ev[-1]["message"]), ev


# ---------------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_groups_state_members_offsets(cluster, topic_name):
    name = topic_name()
    create(cluster, name, partitions=2, rf=3)
    wait_topic_ready(cluster.bootstrap, name, 2)
    ck_produce(cluster.bootstrap, name, make_records("g", 20, 2))
    group = "adm-g-" + uuid.uuid4().hex[:8]
    c = ck.Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                     "client.id": "admin-test-consumer", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 300})
    try:
        c.subscribe([name])
        got = 0
        deadline = time.monotonic() + 40
        while got < 20 and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.5):
                if not m.error():
                    got += 1
        assert got == 20
        c.commit(asynchronous=False)

        def stable():
            gs = {g["group_id"]: g for g in ok(cluster, "GET", "/v1/groups")["groups"]}
            g = gs.get(group)
            return g if g and g["state"] == "Stable" and len(g["members"]) == 1 else None
        g = wait_for(stable, 20, "group Stable with one member")
        assert g["protocol_type"] == "consumer" and g["members"][0]["client_id"] == "admin-test-consumer"
        assert g["coordinator"] in range(1, 7)
        d = ok(cluster, "GET", "/v1/groups/" + group)["group"]
        offs = sorted((o["topic"], o["partition"], o["offset"], o["lag"]) for o in d["offsets"])
        assert offs == [(name, 0, 10, 0), (name, 1, 10, 0)], d
    finally:
        c.close()
    g = wait_for(lambda: [g for g in ok(cluster, "GET", "/v1/groups")["groups"]
                          if g["group_id"] == group and g["state"] == "Empty"], 20, "group Empty")[0]
    assert g["members"] == [] and g["committed_offsets"] == 2


# ---------------------------------------------------------------------------------------------
# Reset
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_reset_empties_topics_groups_and_offsets_fast(minikora, tmp_path):
    mk = minikora(data_dir=tmp_path / "data")
    names = ["reset-%d" % i for i in range(20)]
    for n in names:
        create(mk, n, partitions=3, rf=3)
    wait_topic_ready(mk.bootstrap, names[-1], 3)
    ck_produce(mk.bootstrap, names[0], make_records("r", 60, 3))
    # A group with committed offsets, and one with a live member.
    c = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": "reset-g1",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([ck.TopicPartition(names[0], p, 0) for p in range(3)])
    wait_for(lambda: len(c.consume(num_messages=60, timeout=0.5)) > 0, 20, "records to consume")
    c.commit(offsets=[ck.TopicPartition(names[0], p, 5) for p in range(3)], asynchronous=False)
    c.close()
    live = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": "reset-g2",
                        "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    live.subscribe([names[1]])
    try:
        wait_for(lambda: (live.poll(0.2), [g for g in ok(mk, "GET", "/v1/groups")["groups"]
                                           if g["group_id"] == "reset-g2" and g["members"]])[1],
                 30, "live member joined")
        assert {g["group_id"] for g in ok(mk, "GET", "/v1/groups")["groups"]} >= {"reset-g1", "reset-g2"}

        t0 = time.monotonic()
        j = ok(mk, "POST", "/v1/reset")
        rtt_ms = (time.monotonic() - t0) * 1000
        assert j["topics_deleted"] == 20 and j["groups_deleted"] == 2, j
        # 60 partitions x 3 replicas: the reset itself should take milliseconds.
        print("reset of 20 topics (180 replica logs) and 2 groups: %.1f ms in the server, %.1f ms "
              "round trip" % (j["elapsed_ms"], rtt_ms))
        assert j["elapsed_ms"] < 500 and rtt_ms < 2000, (j, rtt_ms)

        assert ok(mk, "GET", "/v1/topics")["topics"] == []
        groups = ok(mk, "GET", "/v1/groups")["groups"]
        assert all(g["group_id"] != "reset-g1" for g in groups), groups
        assert ok(mk, "GET", "/v1/cluster")["partitions"] == 0
        wait_topic_gone(mk.bootstrap, names[0])
        assert [e for e in events(mk, type="reset")], "no reset event"
    finally:
        # Its group was deleted under it: librdkafka's close may never return.
        ck_close_bounded(live)

    # Offsets are gone: the same group and topic name start from nothing.
    create(mk, names[0], partitions=3, rf=3)
    wait_topic_ready(mk.bootstrap, names[0], 3)
    c = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": "reset-g1"})
    try:
        committed = c.committed([ck.TopicPartition(names[0], p) for p in range(3)], timeout=10)
        assert all(tp.offset < 0 for tp in committed), committed
    finally:
        c.close()
    t = ok(mk, "GET", "/v1/topics/" + names[0])["topic"]
    assert all(p["high_watermark"] == 0 for p in t["partition_details"])
    # And survives a restart empty (the deletes were persisted).
    mk.restart()
    assert [x["name"] for x in ok(mk, "GET", "/v1/topics")["topics"]] == [names[0]]
    assert not [g for g in ok(mk, "GET", "/v1/groups")["groups"] if g["group_id"] == "reset-g1"]


# ---------------------------------------------------------------------------------------------
# Broker and AZ lifecycle
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_broker_stop_start_seen_in_cluster_and_metadata(minikora):
    mk = minikora()
    t = create(mk, "life", partitions=6, rf=3)
    wait_topic_ready(mk.bootstrap, "life", 6)
    assert metadata_brokers(mk) == [1, 2, 3, 4, 5, 6]

    victim = t["partition_details"][0]["leader"]
    j = ok(mk, "POST", "/v1/brokers/%d/stop" % victim)
    assert j["action"] == "stop" and j["broker"]["running"] is False and j["broker"]["leaders"] == 0
    b = ok(mk, "GET", "/v1/cluster")["brokers"][victim - 1]
    assert b["running"] is False and b["state"] == "stopped" and b["connections"] == 0
    assert ok(mk, "GET", "/v1/cluster")["brokers_running"] == 5
    assert victim not in metadata_brokers(mk)
    tm = metadata_topic(mk, "life")
    assert all(p["leader"] != victim and p["leader"] >= 0 for p in tm["partitions"]), tm
    d = ok(mk, "GET", "/v1/topics/life")["topic"]
    assert all(p["leader"] != victim for p in d["partition_details"])
    assert all(victim in p["offline_replicas"] for p in d["partition_details"] if victim in p["replicas"])
    err(mk, "POST", "/v1/brokers/%d/stop" % victim, 409, "broker_state")
    err(mk, "POST", "/v1/brokers/%d/crash" % victim, 409, "broker_state")
    ev = [e for e in events(mk, type="broker_stopped") if e["broker"] == victim]
    assert ev and "admin API: stop" in ev[-1]["message"], ev
    assert not [e for e in events(mk, type="broker_crashed") if e["broker"] == victim]
    assert [e for e in events(mk, type="leader_changed")], "no leader_changed events"

    j = ok(mk, "POST", "/v1/brokers/%d/start" % victim)
    assert j["broker"]["running"] is True
    err(mk, "POST", "/v1/brokers/%d/start" % victim, 409, "broker_state")
    wait_for(lambda: metadata_brokers(mk) == [1, 2, 3, 4, 5, 6], 20, "broker back in Metadata")
    assert [e for e in events(mk, type="broker_started") if e["broker"] == victim]

    # crash and restart
    j = ok(mk, "POST", "/v1/brokers/1/crash")
    assert j["broker"]["running"] is False and 1 not in metadata_brokers(mk)
    assert j["broker"]["state"] == "crashed"
    assert [e for e in events(mk, type="broker_crashed") if e["broker"] == 1]
    assert ok(mk, "POST", "/v1/brokers/1/restart")["broker"]["running"] is True  # start when stopped
    j = ok(mk, "POST", "/v1/brokers/2/restart")
    assert j["broker"]["running"] is True
    assert [e for e in events(mk, type="broker_restarted") if e["broker"] == 2]
    wait_for(lambda: metadata_brokers(mk) == [1, 2, 3, 4, 5, 6], 20, "all brokers back")

    # AZ down and up
    j = ok(mk, "POST", "/v1/azs/az-3/down")
    assert j["brokers"] == [3, 6] and j["brokers_changed"] == 2
    c = ok(mk, "GET", "/v1/cluster")
    assert [a["state"] for a in c["azs"]] == ["up", "up", "down"]
    assert [b["id"] for b in c["brokers"] if not b["running"]] == [3, 6]
    assert metadata_brokers(mk) == [1, 2, 4, 5]
    assert ok(mk, "POST", "/v1/azs/az-3/down")["brokers_changed"] == 0
    assert ok(mk, "POST", "/v1/azs/az-3/up")["brokers_changed"] == 2
    wait_for(lambda: metadata_brokers(mk) == [1, 2, 3, 4, 5, 6], 20, "AZ back")
    wait_for(lambda: all(sorted(p["isr"]) == sorted(p["replicas"]) for p in
                         ok(mk, "GET", "/v1/topics/life")["topic"]["partition_details"]),
             30, "ISR full again")
    assert ok(mk, "GET", "/readyz")["brokers_running"] == 6


# ---------------------------------------------------------------------------------------------
# Metrics, latency, rates, events
# ---------------------------------------------------------------------------------------------
def parse_prometheus(text):
    from prometheus_client.parser import text_string_to_metric_families
    return {f.name: f for f in text_string_to_metric_families(text)}


@pytest.mark.timeout(90)
def test_metrics_prometheus_text(cluster, topic_name):
    name = topic_name()
    create(cluster, name, partitions=2, rf=3)
    wait_topic_ready(cluster.bootstrap, name, 2)
    recs = make_records("m", 200, 2)
    ck_produce(cluster.bootstrap, name, recs)
    got = ck_consume(cluster.bootstrap, name, {0: 100, 1: 100})
    assert sum(len(v) for v in got.values()) == 200

    st, text, h = call(cluster, "GET", "/metrics")
    assert st == 200 and h["Content-Type"].startswith("text/plain; version=0.0.4"), h
    # Every line is a comment or `name{labels} value`.
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                        r'(-?[0-9.e+]+|\+Inf|-Inf|NaN)$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    fams = parse_prometheus(text)

    def value(fam, **labels):
        """The sample of family fam (counters without _total) with these labels."""
        for s in fams[fam].samples:
            if s.name in (fam, fam + "_total") and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError("no sample %s %r" % (fam, labels))

    assert value("minikora_brokers_up") == 6
    assert value("minikora_broker_up", broker="2") == 1
    assert value("kafka_server_brokertopicmetrics_messagesin", topic=name) == 200
    assert value("kafka_server_brokertopicmetrics_bytesin", topic=name) > 200 * 10
    assert value("minikora_topic_messages_out", topic=name) >= 200
    assert value("kafka_server_brokertopicmetrics_bytesout", topic=name) > 0
    assert value("minikora_topic_partitions", topic=name) == 2
    assert value("minikora_topic_size_bytes", topic=name) > 0
    assert sum(s.value for s in fams["kafka_log_log_size"].samples if s.labels["topic"] == name) > 0
    assert sorted(s.labels["partition"] for s in fams["kafka_log_log_size"].samples
                  if s.labels["topic"] == name) == ["0", "1"]
    assert "minikora_under_replicated_partitions" in fams
    assert "kafka_server_replicamanager_underreplicatedpartitions" in fams
    assert sum(s.value for s in fams["kafka_server_replicamanager_leadercount"].samples) >= 2
    assert "kafka_server_socketservermetrics_connections" in fams
    produce = [s for s in fams["kafka_network_requestmetrics_requests"].samples
               if s.labels["request"] == "Produce"]
    assert produce and sum(s.value for s in produce) >= 1
    h = fams["kafka_network_requestmetrics_totaltime_seconds"]
    assert h.type == "histogram"
    by_series = {}
    for s in h.samples:
        key = (s.labels["broker"], s.labels["request"])
        by_series.setdefault(key, {})[(s.name, s.labels.get("le"))] = s.value
    for key, ss in by_series.items():
        buckets = sorted(((float(le), v) for (n, le), v in ss.items() if n.endswith("_bucket")))
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), (key, buckets)
        assert buckets[-1][0] == float("inf") and buckets[-1][1] == ss[(h.name + "_count", None)]
    assert value("minikora_admin_http_responses", code="2xx") >= 1


@pytest.mark.timeout(90)
def test_latency_rates_and_events(cluster, topic_name):
    name = topic_name()
    seq0 = ok(cluster, "GET", "/v1/events")["last_seq"]
    create(cluster, name, partitions=1, rf=3)
    wait_topic_ready(cluster.bootstrap, name, 1)
    ck_produce(cluster.bootstrap, name, make_records("l", 50, 1), **{"client.id": "lat-client"})

    lat = ok(cluster, "GET", "/v1/latency")
    assert lat["window_sec"] == 60 and [b["broker"] for b in lat["brokers"]] == [1, 2, 3, 4, 5, 6]
    apis = [a for b in lat["brokers"] for a in b["apis"] if a["api"] == "Produce"]
    assert apis and sum(a["count"] for a in apis) >= 1, lat
    for a in apis:
        if a["count"] == 0:  # used before, but not in the last minute: no percentiles
            assert a["p50_ms"] is None and a["max_ms"] is None, a
            continue
        assert 0 <= a["p50_ms"] <= a["p95_ms"] <= a["p99_ms"] <= a["max_ms"] + 1e-9, a
    one = ok(cluster, "GET", "/v1/latency?broker=2")
    assert [b["broker"] for b in one["brokers"]] == [2]

    rates = ok(cluster, "GET", "/v1/rates")
    assert rates["cluster"]["records_in_total"] >= 50 and rates["window_sec"] > 0
    topics = {t["topic"]: t for t in rates["topics"]}
    assert topics[name]["records_in_total"] == 50 and topics[name]["bytes_in_total"] > 0
    clients = {c["client_id"]: c for c in rates["clients"]}
    assert clients["lat-client"]["records_in_total"] == 50
    assert len(rates["brokers"]) == 6

    ev = events(cluster, since=seq0)
    assert ev and all(e["seq"] > seq0 for e in ev)
    assert [e["seq"] for e in ev] == sorted(e["seq"] for e in ev)
    created = [e for e in ev if e["type"] == "topic_created" and name in e["message"]]
    assert created and "admin API" in created[0]["message"]
    newest = events(cluster, limit=1)
    assert len(newest) == 1 and newest[0]["seq"] == ok(cluster, "GET", "/v1/events")["last_seq"]
    last_created = events(cluster, type="topic_created", limit=1)
    assert len(last_created) == 1 and name in last_created[0]["message"], last_created
    assert events(cluster, since=10 ** 9) == []
