"""minikora as a CI fixture (issue 14): advertised addresses behind port mapping, the wildcard
and IPv6 hosts, --control-stdin without a pipe, the ready file on abnormal exits, the ready line,
`minikora apis`, admin answers that must be errors, a crash reported as a crash, and /metrics
passing `promtool check metrics` as a whole.

Port mapping is simulated without Docker: `Forwarder` listens on kernel-chosen ports of
127.0.0.1 (as Docker publishes a container's ports on random host ports) and forwards each to
one broker's real port.  minikora is told the forwarded ports (PUT /v1/advertised, or
--advertise-ports at start), and clients that know only the forwarded ports must work.
"""

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import kwire
from cluster import BIN, READY_RE, _all_procs, _die_with_parent
from clients import (KCAT, ck_consume, ck_consumer, ck_produce, kp_consume, kp_produce, make_records,
                     wait_topic_ready)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def admin(mk, method, path, body=None, auth=True, timeout=20):
    """-> (status, parsed JSON or text) from the admin API of Cluster mk."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    req = urllib.request.Request(mk.admin_url + path, data=data, method=method)
    if auth:
        for k, v in mk.admin_headers().items():
            req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            st, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        st, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "")
    return st, (json.loads(text) if ctype.startswith("application/json") and text else text)


def ok(mk, method, path, body=None, status=200):
    st, j = admin(mk, method, path, body)
    assert st == status, "%s %s -> %d %r" % (method, path, st, j)
    return j


def create_topic(mk, name, partitions, rf):
    ok(mk, "POST", "/v1/topics", {"name": name, "partitions": partitions, "replication_factor": rf}, 201)


def wait_for(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)  # bounded by timeout
    raise AssertionError("%s: not within %.0f s (last: %r)" % (what, timeout, last))


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Forwarder:
    """n TCP forwarders, each listening on a free port of 127.0.0.1 and forwarding every
    connection to its target (set with set_targets, possibly after the listeners exist, as a
    container's port mapping exists before the process inside knows it).  Counts connections
    and bytes per forwarder, so that a test can prove the traffic went through it."""

    def __init__(self, n):
        self.listeners, self.targets = [], [None] * n
        self.conns, self.bytes = [0] * n, [0] * n
        self.lock = threading.Lock()
        self.stopping = False
        self.socks = []
        for i in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.settimeout(0.2)
            self.listeners.append(s)
            threading.Thread(target=self._accept, args=(i,), daemon=True).start()
        self.ports = [s.getsockname()[1] for s in self.listeners]

    def set_targets(self, addrs):
        self.targets = list(addrs)

    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % p for p in self.ports)

    def _accept(self, i):
        ls = self.listeners[i]
        while not self.stopping:
            try:
                c, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = self.targets[i]
            try:
                u = socket.create_connection(t, timeout=10) if t else None
            except OSError:
                u = None
            if u is None:
                c.close()
                continue
            u.settimeout(None)
            c.settimeout(None)
            with self.lock:
                self.conns[i] += 1
                self.socks += [c, u]
            threading.Thread(target=self._pump, args=(i, c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(i, u, c), daemon=True).start()

    def _pump(self, i, src, dst):
        try:
            while True:
                b = src.recv(65536)
                if not b:
                    break
                dst.sendall(b)
                with self.lock:
                    self.bytes[i] += len(b)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        for s in self.listeners + self.socks:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def forwarder():
    made = []

    def make(n):
        f = Forwarder(n)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def metadata_addrs(mk, broker=1):
    """{node_id: (host, port)} as Metadata tells a client connected to broker `broker`."""
    with mk.wire(broker) as c:
        md = c.metadata([])
    return {b["node_id"]: (b["host"], b["port"]) for b in md["brokers"]}


class FromReadyFile:
    """What admin() needs of a cluster, from its --ready-file."""

    def __init__(self, path):
        r = json.loads(Path(path).read_text())
        self.admin_url, self.token = r["admin"], r["admin_token"]

    def admin_headers(self):
        return {"Authorization": "Bearer " + self.token}


def _no_core_and_die_with_parent():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the abnormal-exit test must not leave a core
    _die_with_parent()


class Proc:
    """A `minikora serve` started here with its own stdin (Cluster always gives a pipe or
    /dev/null): the ready line is waited for on stdout, bounded."""

    def __init__(self, *args, stdin=subprocess.DEVNULL, tmp=None):
        self.errf = open(Path(tmp) / "stderr.txt", "wb") if tmp else subprocess.DEVNULL
        self.p = subprocess.Popen([str(BIN), "serve", "--port", "0", "--host", "127.0.0.1"] + list(args),
                                  stdin=stdin, stdout=subprocess.PIPE, stderr=self.errf,
                                  preexec_fn=_no_core_and_die_with_parent)
        _all_procs.append(self.p)
        self.lines = queue.Queue()
        self.out = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "stdout closed before the ready line (rc=%s): %r" % (
                self.p.poll(), self.out)
            m = READY_RE.search(line)
            if m and "ready" in line:
                return m.group(1)

    def line(self, prefix, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "stdout closed waiting for %r: %r" % (prefix, self.out)
            if line.startswith(prefix):
                return line

    def stop(self, timeout=20):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()


# ---------------------------------------------------------------------------------------------
# A cluster left idle from the first test of the module to the last one, whose latency cells
# must then show no percentiles (the window is the last minute).  Started by the first test so
# that the rest of the module's tests pass the time.
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def idle_cluster(request):
    from cluster import Cluster
    with Cluster("--brokers", "1", "--azs", "1", name="idle") as mk:
        mk.t0 = time.monotonic()
        yield mk


# ---------------------------------------------------------------------------------------------
# Admin answers that must be errors; the ready line
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_admin_errors_and_singular_ready_line(idle_cluster):
    mk = idle_cluster
    with mk.wire(1) as c:  # a request to broker 1: its latency cells now exist
        c.metadata([])
    assert "(1 broker in 1 cell over 1 AZ;" in mk.ready_line, mk.ready_line
    st, j = admin(mk, "GET", "/v1/latency?broker=99")
    assert st == 404 and j["error"] == "unknown_broker", j
    st, j = admin(mk, "GET", "/v1/latency?broker=x")
    assert st == 400, j
    lat = ok(mk, "GET", "/v1/latency?broker=1")
    assert [b["broker"] for b in lat["brokers"]] == [1]
    for a in lat["brokers"][0]["apis"]:
        assert a["count"] >= 1 and a["p50_ms"] is not None and a["p50_ms"] >= 0, a
    st, j = admin(mk, "GET", "/v1/events?type=bogus")
    assert st == 400 and j["error"] == "bad_request" and "bogus" in j["message"], j
    st, j = admin(mk, "GET", "/v1/events?type=" + "x" * 200)
    assert st == 400, j
    for t in ("broker_crashed", "broker_stopped", "topic_created", "started"):
        assert isinstance(ok(mk, "GET", "/v1/events?type=" + t)["events"], list)
    assert [e["type"] for e in ok(mk, "GET", "/v1/events?type=started")["events"]] == ["started"]


@pytest.mark.timeout(60)
def test_ready_line_plurals(cluster):
    assert re.search(r"\(6 brokers in 2 cells over 3 AZs; data ", cluster.ready_line), cluster.ready_line


@pytest.mark.timeout(30)
def test_apis_command():
    table = subprocess.run([str(BIN), "apis"], capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, COLUMNS="100"))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert re.match(r"^API\s+KEY\s+VERSIONS\s+SPEC\s+NOTES$", lines[0]), lines[0]
    assert re.search(r"^Produce\s+0\s+3-\d+\s+0-\d+\s+acks", table.stdout, re.M), table.stdout[:500]
    assert "|" not in table.stdout and all(len(l) <= 100 for l in lines), table.stdout
    md = subprocess.run([str(BIN), "apis", "--markdown"], capture_output=True, text=True, timeout=10)
    assert md.returncode == 0 and md.stdout.startswith("# Kafka API compatibility")
    assert re.search(r"^\| Produce \| 0 \| 3-\d+ \|", md.stdout, re.M)
    assert md.stdout == (Path(__file__).resolve().parent.parent / "docs" / "COMPATIBILITY.md").read_text()
    bad = subprocess.run([str(BIN), "apis", "--bogus"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "--bogus" in bad.stderr and not bad.stdout, bad


# ---------------------------------------------------------------------------------------------
# Ports that survive port mapping
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(150)
def test_advertised_addresses_set_at_runtime_behind_a_forwarder(minikora, forwarder, topic_name):
    mk = minikora("--brokers", "3", "--azs", "3")
    fwd = forwarder(3)
    fwd.set_targets(mk.brokers)
    listen = {i + 1: p for i, (_, p) in enumerate(mk.brokers)}
    assert {n: p for n, (h, p) in metadata_addrs(mk).items()} == listen  # before: the bound ports

    # The acting route needs the token; bad bodies change nothing.
    mapping = {str(i + 1): "127.0.0.1:%d" % p for i, p in enumerate(fwd.ports)}
    st, _ = admin(mk, "PUT", "/v1/advertised", mapping, auth=False)
    assert st == 401
    for body, status in [({"9": "h:1"}, 404), ({"1": "nohost"}, 400), ({"1": "h:0"}, 400),
                         ({"1": "::1:5"}, 400), ({"1": 70000}, 400), ({"1": [1]}, 400),
                         (b"[1, 2]", 400), (b"{not json", 400),
                         ({"1": "127.0.0.1:5", "2": "bad"}, 400)]:
        st, j = admin(mk, "PUT", "/v1/advertised", body)
        assert st == status, (body, st, j)
    assert {n: p for n, (h, p) in metadata_addrs(mk).items()} == listen

    j = ok(mk, "PUT", "/v1/advertised", mapping)
    assert j["bootstrap"] == fwd.bootstrap()
    assert [(b["id"], b["port"], b["listen_port"], b["mapped"]) for b in j["brokers"]] == \
        [(i + 1, fwd.ports[i], listen[i + 1], True) for i in range(3)]
    assert ok(mk, "GET", "/v1/advertised") == j
    assert [b["advertised"] for b in ok(mk, "GET", "/v1/brokers")["brokers"]] == \
        ["127.0.0.1:%d" % p for p in fwd.ports]

    # Every answer that names a broker's address now names the forwarded port.
    want = {i + 1: ("127.0.0.1", fwd.ports[i]) for i in range(3)}
    for b in (1, 2, 3):
        assert metadata_addrs(mk, b) == want
    with mk.wire(2) as c:
        dc = c.describe_cluster()
        assert {b["node_id"]: (b["host"], b["port"]) for b in dc["brokers"]} == want
        err, node, host, port = c.find_coordinator("fwd-group")
        assert err == 0 and (host, port) == want[node], (err, node, host, port)

    # Clients that know only the forwarded ports: confluent-kafka and kafka-python round trips.
    name = topic_name()
    create_topic(mk, name, 3, 3)
    boot = fwd.bootstrap()
    wait_topic_ready(boot, name, 3)
    recs = make_records("fwd", 60, 3)
    ck_produce(boot, name, recs)
    got = ck_consume(boot, name, {0: 20, 1: 20, 2: 20})
    assert {p: len(v) for p, v in got.items()} == {0: 20, 1: 20, 2: 20}
    kp_recs = [(p, k + b"-kp", v, h) for p, k, v, h in make_records("kp", 30, 3)]
    kp_produce(boot, name, kp_recs)
    got = kp_consume(boot, name, {0: 30, 1: 30, 2: 30})
    assert {p: len(v) for p, v in got.items()} == {0: 30, 1: 30, 2: 30}
    assert [r[1] for r in got[0][20:]] == [k for p, k, v, h in kp_recs if p == 0]
    # Each broker leads one partition: each forwarder carried produce and fetch traffic.
    assert all(n > 0 for n in fwd.conns) and all(b > 10000 for b in fwd.bytes), (fwd.conns, fwd.bytes)

    # A port alone keeps the advertise host; null clears a mapping.
    j = ok(mk, "PUT", "/v1/advertised", {"2": 31002, "3": None})
    assert [(b["advertised"], b["mapped"]) for b in j["brokers"]] == [
        ("127.0.0.1:%d" % fwd.ports[0], True), ("127.0.0.1:31002", True),
        ("127.0.0.1:%d" % listen[3], False)]
    assert metadata_addrs(mk, 3)[3] == ("127.0.0.1", listen[3])


@pytest.mark.timeout(120)
def test_advertise_ports_flag(minikora, forwarder, tmp_path, topic_name):
    # A list: the forwarded ports exist before minikora starts, as a container's mapping does.
    fwd = forwarder(2)
    ready = tmp_path / "ready.json"
    mk = minikora("--brokers", "2", "--azs", "2", "--ready-file", ready,
                  "--advertise-ports", ",".join(str(p) for p in fwd.ports))
    fwd.set_targets(mk.brokers)
    r = json.loads(ready.read_text())
    assert r["advertised_bootstrap"] == fwd.bootstrap() and r["bootstrap"] == mk.bootstrap
    assert [b["advertised"] for b in r["brokers"]] == ["127.0.0.1:%d" % p for p in fwd.ports]
    assert metadata_addrs(mk) == {1: ("127.0.0.1", fwd.ports[0]), 2: ("127.0.0.1", fwd.ports[1])}
    name = topic_name()
    create_topic(mk, name, 2, 2)
    wait_topic_ready(fwd.bootstrap(), name, 2)
    ck_produce(fwd.bootstrap(), name, make_records("flag", 20, 2))
    got = ck_consume(fwd.bootstrap(), name, {0: 10, 1: 10})
    assert {p: len(v) for p, v in got.items()} == {0: 10, 1: 10}
    assert all(fwd.conns), fwd.conns

    # A first port: consecutive ports from it.
    mk2 = minikora("--brokers", "3", "--azs", "3", "--advertise-ports", "40100", "--advertise-host", "localhost")
    assert [b["advertised"] for b in ok(mk2, "GET", "/v1/advertised")["brokers"]] == \
        ["localhost:40100", "localhost:40101", "localhost:40102"]
    # Bad values are usage errors (exit 2) with the reason on stderr.
    for bad in (["--brokers", "3", "--advertise-ports", "1,2"], ["--advertise-ports", "abc"],
                ["--brokers", "2", "--advertise-ports", "65535"], ["--advertise-ports", "0"],
                ["--advertise-ports", "5,,6"], ["--advertise-ports"]):
        p = subprocess.run([str(BIN), "serve", "--ephemeral", "--port", "0"] + bad, capture_output=True,
                           text=True, timeout=20, stdin=subprocess.DEVNULL)
        assert p.returncode == 2 and "advertise-ports" in p.stderr, (bad, p.returncode, p.stderr)


@pytest.mark.timeout(120)
def test_advertised_ssl_listeners_behind_a_forwarder(minikora, forwarder, tmp_path, topic_name):
    """The SSL listeners have a mapping of their own: PUT /v1/advertised {"1": {"ssl": ...}}
    (and --advertise-tls-ports); the PLAINTEXT form and mapping are unchanged by it."""
    import confluent_kafka as ck
    from confluent_kafka.admin import AdminClient
    from test_tls import ssl_conf, tls_of, wait_topic_ready_with

    ready = tmp_path / "ready.json"
    mk = minikora("--brokers", "2", "--azs", "2", "--ready-file", ready)
    tls_boot, ca = tls_of(mk)
    tls = kwire.parse_bootstrap(tls_boot)
    fwd = forwarder(2)
    fwd.set_targets(tls)  # TLS passes through a TCP forwarder untouched
    j = ok(mk, "GET", "/v1/advertised")
    assert [b["ssl"]["advertised"] for b in j["brokers"]] == ["127.0.0.1:%d" % p for _, p in tls]
    assert j["ssl_bootstrap"] == tls_boot and not any(b["ssl"]["mapped"] for b in j["brokers"])

    # Bad entries change nothing; an object takes only plaintext and ssl.
    for body in ({"1": {"tls": "h:1"}}, {"1": {"ssl": "nohost"}}, {"1": {"ssl": 0}}, {"1": {"ssl": [1]}},
                 {"1": {"ssl": "127.0.0.1:5"}, "2": {"plaintext": "bad"}}):
        st, r = admin(mk, "PUT", "/v1/advertised", body)
        assert st == 400, (body, st, r)
    assert ok(mk, "GET", "/v1/advertised") == j

    plain = {b["id"]: b["advertised"] for b in j["brokers"]}
    mapping = {str(i + 1): {"ssl": "127.0.0.1:%d" % p} for i, p in enumerate(fwd.ports)}
    j = ok(mk, "PUT", "/v1/advertised", mapping)
    assert [(b["ssl"]["port"], b["ssl"]["listen_port"], b["ssl"]["mapped"]) for b in j["brokers"]] == \
        [(fwd.ports[i], tls[i][1], True) for i in range(2)]
    assert j["ssl_bootstrap"] == fwd.bootstrap()
    assert {b["id"]: b["advertised"] for b in j["brokers"]} == plain and not any(b["mapped"] for b in j["brokers"])
    # PLAINTEXT connections are still told the PLAINTEXT addresses.
    assert metadata_addrs(mk) == {i + 1: ("127.0.0.1", p) for i, (_, p) in enumerate(mk.brokers)}

    # A client that knows only the forwarded SSL ports: Metadata over SSL names them, and a
    # produce/consume round trip goes through the forwarders.
    conf = dict(ssl_conf(ca), **{"bootstrap.servers": fwd.bootstrap()})
    adm = AdminClient(conf)
    md = adm.list_topics(timeout=20)
    assert {b.id: (b.host, b.port) for b in md.brokers.values()} == \
        {i + 1: ("127.0.0.1", p) for i, p in enumerate(fwd.ports)}
    name = topic_name()
    create_topic(mk, name, 2, 2)
    wait_topic_ready_with(adm, name, 2)
    ck_produce(fwd.bootstrap(), name, make_records("ssl", 20, 2), **ssl_conf(ca))
    got = ck_consume(fwd.bootstrap(), name, {0: 10, 1: 10}, **ssl_conf(ca))
    assert {p: len(v) for p, v in got.items()} == {0: 10, 1: 10}
    assert all(fwd.conns) and all(b > 1000 for b in fwd.bytes), (fwd.conns, fwd.bytes)

    # Both at once, the old form still works, and null clears the SSL mapping only.
    j = ok(mk, "PUT", "/v1/advertised", {"1": {"plaintext": "127.0.0.1:31001", "ssl": 31101}, "2": 31002})
    assert [(b["advertised"], b["ssl"]["advertised"]) for b in j["brokers"]] == [
        ("127.0.0.1:31001", "127.0.0.1:31101"), ("127.0.0.1:31002", "127.0.0.1:%d" % fwd.ports[1])]
    j = ok(mk, "PUT", "/v1/advertised", {"1": {"ssl": None}})
    assert [(b["advertised"], b["ssl"]["mapped"]) for b in j["brokers"]] == [
        ("127.0.0.1:31001", False), ("127.0.0.1:31002", True)]

    # At start: --advertise-tls-ports, in the ready file too; with TLS off, an SSL mapping is refused.
    ready2 = tmp_path / "ready2.json"
    mk2 = minikora("--brokers", "2", "--azs", "2", "--advertise-tls-ports", "41200", "--ready-file", ready2)
    assert [b["ssl"]["advertised"] for b in ok(mk2, "GET", "/v1/advertised")["brokers"]] == \
        ["127.0.0.1:41200", "127.0.0.1:41201"]
    assert [b["tls_advertised"] for b in json.loads(ready2.read_text())["brokers"]] == \
        ["127.0.0.1:41200", "127.0.0.1:41201"]
    mk3 = minikora("--brokers", "1", "--azs", "1", "--tls-port", "-1")
    assert ok(mk3, "GET", "/v1/advertised")["brokers"][0]["ssl"] is None
    st, r = admin(mk3, "PUT", "/v1/advertised", {"1": {"ssl": 31000}})
    assert st == 400 and "no SSL listener" in r["message"], r
    p = subprocess.run([str(BIN), "serve", "--ephemeral", "--port", "0", "--brokers", "2",
                        "--advertise-tls-ports", "1,2,3"], capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "advertise-tls-ports" in p.stderr, p.stderr


@pytest.mark.timeout(90)
def test_wildcard_host_is_not_advertised(minikora, topic_name):
    mk = minikora("--host", "0.0.0.0", "--brokers", "1", "--azs", "1")
    assert "0.0.0.0" not in mk.ready_line, mk.ready_line
    host = mk.brokers[0][0]
    # The host name when it resolves to an address of this machine, else loopback.
    name = socket.gethostname()
    try:
        local = False
        for *_, sa in socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM):
            with socket.socket() as s:
                try:
                    s.bind((sa[0], 0))
                    local = True
                except OSError:
                    pass
    except OSError:
        local = False
    assert host == (name if local else "127.0.0.1"), (host, name, local)
    log = mk.stderr_text()
    assert re.search(r"--host 0\.0\.0\.0 without --advertise-host: advertising %s \(" % re.escape(host), log), log
    assert mk.admin_url.startswith("http://%s:" % host), mk.admin_url
    assert metadata_addrs(mk)[1][0] == host
    t = topic_name()
    ck_produce(mk.bootstrap, t, make_records("w", 5, 1))
    assert len(ck_consume(mk.bootstrap, t, {0: 5})[0]) == 5


@pytest.mark.timeout(90)
def test_ipv6_loopback_bootstrap_is_bracketed(minikora, topic_name):
    if not ipv6_loopback():
        pytest.skip("this machine cannot bind the IPv6 loopback ::1")
    if not shutil.which(KCAT):
        pytest.skip("kcat is not installed")
    mk = minikora("--host", "::1", "--brokers", "2", "--azs", "2")
    assert re.fullmatch(r"\[::1\]:\d+,\[::1\]:\d+", mk.bootstrap), mk.ready_line
    assert re.search(r" tls \[::1\]:\d+,\[::1\]:\d+ ca ", mk.ready_line), mk.ready_line
    assert mk.admin_url.startswith("http://[::1]:"), mk.admin_url
    p = subprocess.run([KCAT, "-b", mk.bootstrap, "-L", "-m", "10"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and " 2 brokers:" in p.stdout, p.stdout + p.stderr
    t = topic_name()
    p = subprocess.run([KCAT, "-b", mk.bootstrap, "-P", "-t", t, "-m", "10"], input="v6 hello\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([KCAT, "-b", mk.bootstrap, "-C", "-t", t, "-o", "beginning", "-c", "1", "-e", "-q", "-m", "10"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == "v6 hello", p.stdout + p.stderr
    # --host [::1] is the same address
    mk2 = minikora("--host", "[::1]", "--brokers", "1", "--azs", "1")
    assert re.fullmatch(r"\[::1\]:\d+", mk2.bootstrap), mk2.ready_line


# ---------------------------------------------------------------------------------------------
# --control-stdin without a pipe; the ready file on every exit
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_control_stdin_devnull_and_file(tmp_path):
    ready = tmp_path / "ready.json"
    # /dev/null: what a CI job started in the background gets.  End of input, no abort.
    p = Proc("--ephemeral", "--brokers", "3", "--azs", "3", "--control-stdin", "--ready-file", str(ready),
             stdin=subprocess.DEVNULL, tmp=tmp_path)
    try:
        boot = p.ready()
        r = json.loads(ready.read_text())
        h, port = kwire.parse_bootstrap(boot)[0]
        with kwire.Conn(h, port, timeout=10) as c:
            assert len(c.metadata([])["brokers"]) == 3
        assert p.p.poll() is None, "minikora exited (rc=%s) with stdin /dev/null" % p.p.poll()
        assert ready.exists() and Path(r["data_dir"]).is_dir()
    finally:
        rc = p.stop()
    assert rc == 0, (rc, (tmp_path / "stderr.txt").read_text()[-2000:])
    assert not ready.exists() and not Path(r["data_dir"]).exists()

    # A file: its commands run once, after the ready line (the last one has no newline).
    cmds = tmp_path / "cmds.txt"
    cmds.write_text("crash 2\nbogus 1\nstats\nstart 2")
    with open(cmds, "rb") as f:
        p = Proc("--ephemeral", "--brokers", "3", "--azs", "3", "--control-stdin", "--ready-file", str(ready),
                 stdin=f, tmp=tmp_path)
    try:
        p.ready()
        assert p.line("control:") == "control: ok crash 2"
        assert p.line("control:").startswith("control: error bogus 1")
        assert p.line("control:").startswith("control: stats {")
        assert p.line("control:") == "control: ok start 2"
        brokers = ok(FromReadyFile(ready), "GET", "/v1/brokers")["brokers"]
        assert [b["running"] for b in brokers] == [True, True, True]
        assert p.p.poll() is None
    finally:
        rc = p.stop()
    assert rc == 0 and not ready.exists()
    log = (tmp_path / "stderr.txt").read_text()
    assert "stdin is a file; 3 command line(s) read" in log, log[-2000:]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGABRT, signal.SIGSEGV, signal.SIGHUP])
def test_abnormal_exit_removes_ready_file_and_data(tmp_path, sig):
    if sig == signal.SIGSEGV and os.environ.get("MINIKORA_BIN", "").find("asan") >= 0:
        pytest.skip("under ASan a SIGSEGV is ASan's to report")
    ready = tmp_path / "ready.json"
    p = Proc("--ephemeral", "--brokers", "1", "--azs", "1", "--ready-file", str(ready), tmp=tmp_path)
    try:
        p.ready()
        data = Path(json.loads(ready.read_text())["data_dir"])
        assert data.is_dir()
        p.p.send_signal(sig)
        rc = p.p.wait(timeout=20)
    finally:
        p.stop()
    assert rc == -sig, rc  # died of the signal itself, as without the handler
    assert not ready.exists(), "stale ready file after %s" % sig.name
    wait_for(lambda: not data.exists(), 20, "ephemeral data dir removed after %s" % sig.name)


# ---------------------------------------------------------------------------------------------
# A crash is reported as a crash
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_crash_is_reported_as_crashed(minikora):
    mk = minikora("--brokers", "3", "--azs", "3", control=True)
    ok(mk, "POST", "/v1/brokers/1/crash")
    b = ok(mk, "GET", "/v1/brokers/1")["broker"]
    assert (b["running"], b["state"]) == (False, "crashed"), b
    ev = ok(mk, "GET", "/v1/events?type=broker_crashed")["events"]
    assert [e["broker"] for e in ev] == [1] and "crashed" in ev[0]["message"], ev
    assert not ok(mk, "GET", "/v1/events?type=broker_stopped")["events"]
    st, j = admin(mk, "POST", "/v1/brokers/1/crash")
    assert st == 409 and "already crashed" in j["message"], j

    ok(mk, "POST", "/v1/brokers/2/stop")  # a controlled shutdown stays "stopped"
    assert ok(mk, "GET", "/v1/brokers/2")["broker"]["state"] == "stopped"
    ok(mk, "POST", "/v1/brokers/1/start")
    assert ok(mk, "GET", "/v1/brokers/1")["broker"]["state"] == "running"

    mk.crash(3)  # --control-stdin's crash, seen by the sampling
    wait_for(lambda: [e for e in ok(mk, "GET", "/v1/events?type=broker_crashed")["events"] if e["broker"] == 3],
             10, "broker_crashed event for broker 3")
    assert ok(mk, "GET", "/v1/brokers/3")["broker"]["state"] == "crashed"
    ok(mk, "POST", "/v1/azs/az-2/up")
    ok(mk, "POST", "/v1/azs/az-1/down")  # an AZ down crashes its brokers
    assert ok(mk, "GET", "/v1/brokers/1")["broker"]["state"] == "crashed"


# ---------------------------------------------------------------------------------------------
# /metrics: promtool, seconds, partitions, group lag
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_metrics_pass_promtool_whole(minikora, topic_name):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    mk = minikora("--brokers", "3", "--azs", "3")
    name = topic_name()
    create_topic(mk, name, 2, 3)
    wait_topic_ready(mk.bootstrap, name, 2)
    ck_produce(mk.bootstrap, name, make_records("prom", 40, 2))
    # A group that commits 5 of partition 0's 20 records and none of partition 1's.
    import confluent_kafka as ck
    c = ck_consumer(mk.bootstrap, **{"group.id": "lag-group"})
    try:
        c.commit(offsets=[ck.TopicPartition(name, 0, 5)], asynchronous=False)
    finally:
        c.close()
    ok(mk, "POST", "/v1/brokers/3/crash")  # some partitions under-replicated

    st, text = admin(mk, "GET", "/metrics")
    assert st == 200
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert p.returncode == 0 and not p.stdout and not p.stderr, (p.stdout + p.stderr).decode()[-3000:]

    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(fam, **labels):
        return [s for s in fams[fam].samples if all(s.labels.get(k) == v for k, v in labels.items())]

    assert "kafka_server_socketservermetrics_connections" in fams
    assert not [n for n in fams if n.endswith("ms") or "_count" in n]
    h = fams["kafka_network_requestmetrics_totaltime_seconds"]
    assert h.type == "histogram"
    les = sorted({float(s.labels["le"]) for s in h.samples if s.name.endswith("_bucket")})
    assert les[0] == 0.0001 and les[-2] == 10 and les[-1] == float("inf"), les
    produce_sum = [s.value for s in h.samples if s.name.endswith("_sum") and s.labels["request"] == "Produce"]
    assert produce_sum and 0 < sum(produce_sum) < 60, produce_sum  # seconds, not ms

    for fam in ("kafka_log_log_size", "kafka_log_log_logendoffset", "minikora_partition_high_watermark",
                "kafka_cluster_partition_underreplicated", "kafka_cluster_partition_insyncreplicascount"):
        assert sorted(s.labels["partition"] for s in samples(fam, topic=name)) == ["0", "1"], fam
    assert [s.value for s in sorted(samples("minikora_partition_high_watermark", topic=name),
                                    key=lambda s: s.labels["partition"])] == [20, 20]
    assert sum(s.value for s in samples("kafka_cluster_partition_underreplicated", topic=name)) == 2
    lag = {s.labels["partition"]: s.value for s in samples("kafka_consumergroup_lag", consumergroup="lag-group")}
    assert lag == {"0": 15}, lag
    cur = {s.labels["partition"]: s.value
           for s in samples("kafka_consumergroup_current_offset", consumergroup="lag-group", topic=name)}
    assert cur == {"0": 5}, cur


# ---------------------------------------------------------------------------------------------
# Last: the idle cluster's latency cells, a minute later
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_latency_without_requests_is_null(idle_cluster):
    mk = idle_cluster
    # The window is the last minute, kept in 10 s slots: at most 70 s after the last request
    # (made by the first test of this module, or just now when run alone) every cell is empty.
    if not any(a for b in ok(mk, "GET", "/v1/latency?broker=1")["brokers"] for a in b["apis"]):
        with mk.wire(1) as c:
            c.metadata([])

    def idle_apis():
        apis = ok(mk, "GET", "/v1/latency?broker=1")["brokers"][0]["apis"]
        return apis if apis and all(a["count"] == 0 for a in apis) else None
    apis = wait_for(idle_apis, 80, "every latency cell of broker 1 empty", interval=1.0)
    for a in apis:
        assert a["total_count"] >= 1, a
        assert (a["p50_ms"], a["p95_ms"], a["p99_ms"], a["max_ms"]) == (None, None, None, None), a


# ---------------------------------------------------------------------------------------------
# The Docker image's entry point and health check, run without Docker
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
@pytest.mark.parametrize("own_ready_file", [False, True])
def test_docker_healthcheck_follows_admin_port(tmp_path, own_ready_file):
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    repo = Path(__file__).resolve().parent.parent
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "minikora").symlink_to(BIN)
    ready = tmp_path / "ready.json"
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), MINIKORA_READY_FILE=str(ready),
               MINIKORA_HOST="127.0.0.1", MINIKORA_ADVERTISE_HOST="127.0.0.1", MINIKORA_BROKERS="1")
    health = [str(repo / "docker" / "healthcheck.sh")]
    hc = lambda: subprocess.run(health, env=env, capture_output=True, timeout=20).returncode  # noqa: E731
    assert hc() == 1  # nothing started: unhealthy
    extra = ["--ready-file", str(tmp_path / "mine.json")] if own_ready_file else []
    # --admin-port 0 after `serve` overrides the image's 8080: the check must follow it.
    p = subprocess.Popen(["sh", str(repo / "docker" / "entrypoint.sh"), "serve", "--ephemeral", "--port", "0",
                          "--admin-port", "0", "--azs", "1"] + extra,
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         preexec_fn=_no_core_and_die_with_parent)
    _all_procs.append(p)
    try:
        line = p.stdout.readline().decode()
        assert "(1 broker in 1 cell over 1 AZ;" in line, line
        assert ready.exists() and (ready.is_symlink() == own_ready_file)
        r = json.loads(ready.read_text())
        assert not r["admin"].endswith(":8080") and len(r["brokers"]) == 1, r
        assert hc() == 0
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
    assert rc == 0
    assert hc() == 1  # the ready file went with the process
