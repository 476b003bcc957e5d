"""`minikora tui` driven in tmux (send-keys, capture-pane) against a real cluster under load.

The cluster is started with --port 0 and a producer keeps records flowing; the TUI attaches to the admin URL from the ready line
("... admin http://H:P") over HTTP only.  Each check polls capture-pane until the screen shows
what it must or a deadline passes (then the last screen is in the failure message): no sleeps
as synchronisation.  The pane is 80x24, the size the TUI is designed for.

Covered: each view shows the right brokers, AZs, cells and topics; a topic and a broker drill
into their partitions; latency, tenant and event views show the load; / filters; ? helps; s/y
stops a broker (shown as stopped, and the API agrees), S/y starts it, n cancels, a/A take an AZ
down and up; a resize redraws; q quits with exit code 0.  With two tenants, the Tenants view lists
each in its cell, Enter opens one tenant's topics, group and client (not the other's), and the
Placement view names each tenant under its cell.  A tenant with quotas that was throttled has
a quota row (throttle time of the last minute, each limit with its use) and its pane lists every
limit with its percentage and each broker's share.  Against a stand-in admin API (a few canned
JSON answers), the TUI shows a cell's load and the tenants' cross-AZ columns only once the API
gives them, and builds its tenant rows from /v1/rates when /v1/tenants is missing.  Another test
runs without colours (TERM=vt100, NO_COLOR) against an address where nothing listens; one checks
the usage errors.

Needs tmux (ci/install.sh test installs it).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import confluent_kafka as ck
from confluent_kafka.admin import NewTopic

from clients import RDK_LOG, ck_produce, ck_result, make_records
from cluster import BIN, LOG_DIR

COLS, ROWS = 80, 24

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (ci/install.sh test installs it)")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def admin_url_or_skip(mk):
    if not mk.ready_line:
        pytest.fail("no ready line: %r" % mk.stdout_lines[-5:])
    if not mk.admin_url:
        pytest.skip("the ready line has no admin URL (admin API not built in): %r" % mk.ready_line)
    return mk.admin_url


def http(url, method="GET", body=None, timeout=10, mk=None):
    """One admin API call; mk (a Cluster) adds its admin token."""
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    headers = {"Content-Type": "application/json"}
    headers.update(mk.admin_headers() if mk else {})
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


class Tui:
    """One `minikora tui` in a detached tmux session on a private tmux server."""

    def __init__(self, name, args, env=None, cols=COLS, rows=ROWS, command="tui"):
        self.sock = "mk-tui-%d-%s" % (os.getpid(), name)
        self.rc_path = LOG_DIR / ("tui-%s-%d.rc" % (name, os.getpid()))
        self.rc_path.unlink(missing_ok=True)
        envs = " ".join("%s=%s" % kv for kv in (env or {}).items())
        cmd = "env %s %s %s %s; echo $? > %s" % (envs, BIN, command, " ".join(args), self.rc_path)
        self.tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", "tui",
                  "sh -c '%s'" % cmd)
        self.last = ""
        self.gone = ""

    def tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=10, check=check)

    def keys(self, *keys):
        for k in keys:
            # -l sends text literally; key names (Enter, Escape, Tab) go without it
            literal = len(k) == 1 or not k[0].isupper()
            self.tmux("send-keys", "-t", "tui", *(["-l", k] if literal else [k]))

    def screen(self):
        r = self.tmux("capture-pane", "-p", "-t", "tui", check=False)
        if r.returncode == 0:
            self.last = r.stdout
        else:
            self.gone = "pane gone (%s); exit code file: %r" % (
                r.stderr.strip(), self.rc_path.read_text() if self.rc_path.exists() else None)
        return self.last

    def wait(self, what, pred, timeout=15):
        """Poll the screen until pred(screen) is true; fail with the last screen otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if pred(s):
                return s
            if time.monotonic() > deadline:
                pytest.fail("TUI: %s not seen within %.0f s; %slast screen:\n%s"
                            % (what, timeout, self.gone + "; " if self.gone else "", s))
            time.sleep(0.05)  # poll interval, not synchronisation

    def wait_text(self, *texts, timeout=15):
        return self.wait(" and ".join(repr(t) for t in texts),
                         lambda s: all(t in s for t in texts), timeout)

    def wait_re(self, pattern, timeout=15, flags=re.M):
        rx = re.compile(pattern, flags)
        return self.wait("/%s/" % pattern, lambda s: rx.search(s) is not None, timeout)

    def exit_code(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                text = self.rc_path.read_text().strip()
                if text:
                    return int(text)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        pytest.fail("TUI did not exit within %.0f s; last screen:\n%s" % (timeout, self.screen()))

    def close(self):
        self.tmux("kill-server", check=False)
        self.rc_path.unlink(missing_ok=True)


class Load:
    """A producer that keeps records flowing (about 50 a second) until stopped, so the figures
    on screen change.  Delivery errors are expected while brokers are down and are ignored."""

    def __init__(self, bootstrap, topic):
        self.p = ck.Producer({"bootstrap.servers": bootstrap, "logger": RDK_LOG, "acks": 1,
                              "client.id": "tui-load", "linger.ms": 5, "message.timeout.ms": 5000})
        self.topic = topic
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop_ev.wait(0.02):
            try:
                self.p.produce(self.topic, value=b"load-%d" % i)
            except BufferError:
                pass
            self.p.poll(0)
            i += 1

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)
        self.p.flush(5)


def count_value(text):
    """'300' -> 300, '1.25k' -> 1250 (the TUI's count format)."""
    m = re.fullmatch(r"([0-9.]+)([kMGT]?)", text)
    assert m, text
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]


def broker_row(broker, state):
    """An Overview broker row: '>   2  az-2  0 running ...'."""
    return r"^[ >]\s*%d\s+az-\d+\s+\d+\s+%s\b" % (broker, state)


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(150)
def test_tui_views_and_actions(minikora):
    mk = minikora()
    url = admin_url_or_skip(mk)
    topic = "tui-%s" % uuid.uuid4().hex[:6]
    created = http(url + "/v1/topics", "POST", {"name": topic, "partitions": 3, "replication_factor": 3}, mk=mk)
    details = created["topic"]["partition_details"]
    leaders = {p["partition"]: p["leader"] for p in details}
    cell = created["topic"]["cell"]  # brokers 3*cell+1 .. 3*cell+3 hold it
    # Load: records in, so rates, latency and the client table have something to show, and
    # keep coming, so the figures change while the TUI watches.
    ck_produce(mk.bootstrap, topic, make_records("tui", 300, 3), **{"client.id": "tui-load"})
    load = Load(mk.bootstrap, topic)

    assert mk.admin_token
    tui = Tui("views", ["--admin", url], env={"MINIKORA_ADMIN_TOKEN": mk.admin_token})
    try:
        # ---- Overview: every broker running in its AZ, every AZ up, throughput seen
        s = tui.wait_text("1 Overview", "brokers 6/6 up", "az-1 up 2/2", "az-2 up 2/2", "az-3 up 2/2")
        for b in range(1, 7):
            tui.wait_re(r"^[ >]\s*%d\s+az-%d\s+%d\s+running\b" % (b, (b - 1) % 3 + 1, (b - 1) // 3))
        tui.wait_re(r"Throughput in [1-9][0-9.]* [kM]?B/s")
        assert "admin ok" in tui.screen()

        # ---- Placement: the AZ x cell grid and the topic list
        tui.keys("2")
        s = tui.wait_text("cell 0", "cell 1", topic)
        assert re.search(r"AZ\s+az-1 up\s+az-2 up\s+az-3 up", s), s
        for b in range(1, 7):
            assert re.search(r"#%d up L\d+ R\d+" % b, s), "broker %d not in the grid\n%s" % (b, s)
        grid = [l for l in s.splitlines() if l.startswith(" cell ")]
        assert re.findall(r"#(\d)", grid[0]) == ["1", "2", "3"], s
        assert re.findall(r"#(\d)", grid[1]) == ["4", "5", "6"], s
        # Enter on the topic: its partitions with leader, replicas and ISR
        tui.keys("j", "j", "Enter")  # cell 0 -> cell 1 -> first topic
        s = tui.wait_text("Topic %s" % topic, "REPLICAS")
        for p, leader in leaders.items():
            tui.wait_re(r"^ %s\s+%d\s+%d\s+\d+\s+[\d,]+\s+[\d,]+" % (re.escape(topic), p, leader))
        # Back, then Enter on a broker: the partitions it holds, with its role
        tui.keys("Escape", "k")  # back to the grid: cell 1, az-1 (broker 4)
        if cell == 0:
            tui.keys("k")  # up to broker 1
        tui.keys("Enter")
        s = tui.wait_re(r"Broker %d\s+az-1\s+cell %d" % (3 * cell + 1, cell))
        tui.wait_re(r"^ %s\s+\d+\s+\d+.*\b(leader|follower)\b" % re.escape(topic))
        tui.keys("Escape")
        tui.wait_text("cell 0", "TOPIC")

        # ---- Latency: Produce answered by the leaders
        tui.keys("3")
        s = tui.wait_re(r"^\s+\d\s+Produce\s+\d")
        produce_brokers = {int(m) for m in re.findall(r"^\s+(\d)\s+Produce\b", s, re.M)}
        assert produce_brokers <= set(leaders.values()), s

        # ---- Tenants: the totals, the default tenant (our unauthenticated client) and our client
        tui.keys("4")
        tui.wait_text("Cluster", "TENANT", "BUSIEST CLIENTS", "tui-load")
        tui.wait_re(r"^>default\s+(any|\d+)\s")  # the default tenant, selected, first
        total = re.compile(r"^ records\s+\S+/s\s+(\S+)", re.M)
        s = tui.wait("records in >= 300", lambda s: count_value(total.search(s).group(1)) >= 300)
        first = count_value(total.search(s).group(1))
        tui.wait("records in growing past %d" % first,
                 lambda s: count_value(total.search(s).group(1)) > first)

        # ---- Events: the topic we created
        tui.keys("5")
        tui.wait_re(r"topic_created\s+.*%s" % re.escape(topic))

        # ---- Storage: S3's status, the default tenant and our topic in the three tiers
        tui.keys("6")
        tui.wait_text("TENANT / TOPIC", "MEMORY", "LOCAL", "BACKLOG")
        tui.wait_re(r"^ S3 (ok|unknown)\s+http://")  # unknown: no S3 request yet
        tui.wait_re(r"^   %s\s+\S+ \S*B\s+\S+ \S*B" % re.escape(topic))

        # ---- Filter: only az-2's brokers; Escape clears it
        tui.keys("1", "/", "az-2", "Enter")
        tui.wait(
            "only brokers 2 and 5",
            lambda s: re.search(broker_row(2, "running"), s, re.M) and
            re.search(broker_row(5, "running"), s, re.M) and
            not re.search(broker_row(1, "running"), s, re.M))
        tui.keys("Escape")
        tui.wait_re(broker_row(1, "running"))

        # ---- Help
        tui.keys("?")
        tui.wait_text("minikora tui: keys", "Any key closes")
        tui.keys("x")
        tui.wait("help closed", lambda s: "Any key closes" not in s)

        # ---- Stop broker 2 from the TUI: confirm, see it down, the API agrees
        tui.keys("g", "j")  # first broker, then the second
        tui.wait_re(r"^>\s*2\s+az-2")
        tui.keys("s")
        tui.wait_text("Stop (controlled shutdown) broker 2", "[y/n]")
        tui.keys("y")
        tui.wait_re(broker_row(2, "stopped"))
        tui.wait_text("brokers 5/6 up", "az-2 degraded 1/2")
        assert http(url + "/v1/brokers/2")["broker"]["running"] is False
        tui.keys("2")
        tui.wait_text("#2 DOWN")
        tui.keys("5")
        tui.wait_re(r"broker_stopped\s+broker 2 stopped")

        # ---- n cancels; S starts it again
        tui.keys("1", "c")
        tui.wait_text("Crash broker 2")
        tui.keys("n")
        tui.wait_text("cancelled")
        tui.keys("S")
        tui.wait_text("Start broker 2")
        tui.keys("y")
        tui.wait_re(broker_row(2, "running"))
        tui.wait_text("brokers 6/6 up")

        # ---- AZ down and up (the selected broker's AZ: az-2)
        tui.keys("a")
        tui.wait_text("Take down AZ az-2 (2 brokers)?")
        tui.keys("y")
        tui.wait_text("az-2 DOWN 0/2", "brokers 4/6 up")
        tui.wait_re(broker_row(5, "crashed"))  # an AZ down crashes its brokers
        tui.keys("A")
        tui.wait_text("Bring up AZ az-2")
        tui.keys("y")
        tui.wait_text("az-2 up 2/2", "brokers 6/6 up")

        # ---- Resize: redrawn at the new size, then back
        tui.tmux("resize-window", "-t", "tui", "-x", "120", "-y", "30")
        tui.wait("a 120-column frame", lambda s: url in s.splitlines()[0])
        tui.tmux("resize-window", "-t", "tui", "-x", str(COLS), "-y", str(ROWS))
        tui.wait("an 80-column frame", lambda s: url not in s.splitlines()[0] and "6/6 up" in s)

        # ---- D drains the selected broker; X (remove) is refused while it holds replicas or is
        # the last broker of its AZ in its cell, and says why
        tui.keys("D")
        tui.wait_text("Drain broker 2")
        tui.keys("y")
        tui.wait_re(broker_row(2, r"drain\w*"))
        tui.keys("X")
        tui.wait_text("Remove (retire) broker 2")
        tui.keys("y")
        tui.wait_text("remove broker 2 failed")
        assert http(url + "/v1/brokers/2")["broker"]["state"] in ("draining", "drained")

        # ---- q quits with 0
        tui.keys("q")
        assert tui.exit_code() == 0
    finally:
        tui.close()
        load.stop()


@pytest.mark.timeout(90)
def test_tui_health_view(minikora):
    """Key 8: the storage health manager's view: every broker with its state, ladder step, I/O
    and probes, the thresholds above; a disk stall shows the broker climbing the ladder."""
    mk = minikora("--brokers", "3", "--set", "minikora.health.check.interval.ms=200",
                  "--set", "minikora.health.probe.interval.ms=200", "--set", "minikora.health.stall.ms=1000",
                  "--set", "minikora.health.restart.grace.ms=1000", "--set", "minikora.health.replace.after.ms=-1")
    url = admin_url_or_skip(mk)
    tui = Tui("health", ["--admin", url, "--interval", "300"], env={"MINIKORA_ADMIN_TOKEN": mk.admin_token})
    try:
        tui.keys("8")
        tui.wait_text("Health", "ladder on", "BROKER", "STATE", "PROBE")
        for b in (1, 2, 3):
            tui.wait_re(r"^ %d\s+healthy\s+0\s" % b)
        status = None
        try:
            status = http(url + "/v1/faults", "POST", {"type": "disk-stall", "broker": 2}, mk=mk)
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        if status is not None:
            tui.wait_re(r"^ 2\s+(restarted|demoted)\s+[12]\s")
            http(url + "/v1/faults", "DELETE", mk=mk)
            tui.wait_re(r"^ 2\s+healthy\s+0\s", timeout=30)
    finally:
        tui.close()


@pytest.mark.timeout(60)
def test_tui_without_colours_and_without_a_server():
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tui = Tui("nocolour", ["--admin", "127.0.0.1:%d" % port],
              env={"TERM": "vt100", "NO_COLOR": "1", "LC_ALL": "C"})
    try:
        tui.wait_text("cannot reach the admin API at http://127.0.0.1:%d" % port, "UNREACHABLE")
        for v in "2345":  # every view copes with no data
            tui.keys(v)
            tui.wait_text("UNREACHABLE")
        tui.keys("s")
        tui.wait_text("no broker selected")
        tui.keys("q")
        assert tui.exit_code() == 0
    finally:
        tui.close()


def test_tui_usage_errors():
    r = subprocess.run([str(BIN), "tui", "--bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "usage: minikora tui" in r.stderr, r
    r = subprocess.run([str(BIN), "tui", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--admin URL" in r.stdout, r
    r = subprocess.run([str(BIN), "tui"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1 and "needs a terminal" in r.stderr, r


def test_serve_with_tui_in_one_process():
    """`minikora serve --tui`: the cluster and the TUI in one process; the TUI shows the
    six brokers of the cluster it runs beside, acts with the in-process admin token (s/y stops
    broker 1), and q stops both with exit code 0."""
    tui = Tui("serve", ["--ephemeral", "--port", "0", "--tui"], command="serve",
              env={"MINIKORA_ADMIN_TOKEN": ""})  # the token is generated; the TUI gets it in-process
    try:
        s = tui.wait_re(r"brokers 6/6 up")
        assert "az-3" in s
        tui.keys("g")
        tui.wait_re(r"^>\s*1\s+az-1")
        tui.keys("s")
        tui.wait_text("Stop (controlled shutdown) broker 1", "[y/n]")
        tui.keys("y")
        tui.wait_re(broker_row(1, "stopped"))
        tui.keys("q")
        assert tui.exit_code(timeout=15) == 0
    finally:
        tui.close()


def sasl_conf(mk, key, secret, **extra):
    conf = {"bootstrap.servers": mk.bootstrap, "logger": RDK_LOG, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": key, "sasl.password": secret}
    conf.update(extra)
    return conf


@pytest.mark.timeout(120)
def test_tui_tenants_view_and_placement(minikora):
    """Two tenants, each with a topic "orders", a group of its own and a producer of its own: the
    Tenants view lists both with their cells; Enter on one shows its topic, its group and its
    client, and not the other tenant's; Esc goes back; Placement names each tenant under its
    cell."""
    mk = minikora()
    url = admin_url_or_skip(mk)
    cells = {}
    for tid in ("acme", "globex"):
        cells[tid] = http(url + "/v1/tenants", "POST", {"id": tid}, mk=mk)["cell"]
        k = http(url + "/v1/tenants/%s/keys" % tid, "POST", mk=mk)
        admin = ck.admin.AdminClient(sasl_conf(mk, k["key"], k["secret"]))
        assert ck_result(admin.create_topics([NewTopic("orders", 1, 3)])["orders"]) is None
        ck_produce(mk.bootstrap, "orders", make_records(tid, 20, 1),
                   **sasl_conf(mk, k["key"], k["secret"], **{"client.id": "%s-producer" % tid}))
        c = ck.Consumer(sasl_conf(mk, k["key"], k["secret"], **{"group.id": "billing-" + tid,
                                                               "enable.auto.commit": False}))
        c.commit(offsets=[ck.TopicPartition("orders", 0, 5)], asynchronous=False)
        c.close()

    tui = Tui("tenants", ["--admin", url], env={"MINIKORA_ADMIN_TOKEN": mk.admin_token})
    try:
        # ---- one row per tenant: default first, then by id, each with its cell
        tui.keys("4")
        tui.wait_re(r"^>default\s+(any|\d+)\s")
        for tid in ("acme", "globex"):
            # id, cell, in/s, out/s, req/s, connections, partitions (1), storage (> 0 B)[, cross-AZ]
            tui.wait_re(r"^ %s\s+%d\s+[\d.]+ [kM]?B\s+[\d.]+ [kM]?B\s+\S+\s+\d+\s+1\s+[1-9][\d.]* [kM]?B\b"
                        % (tid, cells[tid]))
        # ---- Down selects acme; Enter opens its pane
        tui.keys("j")
        tui.wait_re(r"^>acme\s")
        tui.keys("Enter")
        s = tui.wait_text("Tenant acme", "TOPICS (1)", "GROUPS (1)", "billing-acme", "acme-producer")
        assert re.search(r"^  orders\s+billing-acme$", s, re.M), s
        assert re.search(r"cell %d\s" % cells["acme"], s), s
        assert "globex" not in s, s
        # ---- Esc: back to the list, acme still selected; globex's pane is its own
        tui.keys("Escape")
        tui.wait_re(r"^>acme\s")
        tui.keys("j", "Enter")
        s = tui.wait_text("Tenant globex", "billing-globex", "globex-producer")
        assert "acme" not in s, s
        tui.keys("Escape")
        tui.wait_text("BUSIEST CLIENTS (every tenant)")
        # ---- Placement: under each cell's brokers, its tenants
        tui.keys("2")
        for tid in ("acme", "globex"):
            tui.wait_re(r"^ cell %d .*\n\s+(load [\d.]+%%|\d+ partitions)\s+tenants: .*\b%s\b"
                        % (cells[tid], tid))
        tui.keys("q")
        assert tui.exit_code() == 0
    finally:
        tui.close()


@pytest.mark.timeout(90)
def test_tui_tenant_quota_use_against_limit(minikora):
    """A tenant with quotas (producer_byte_rate 100 kB/s, max_partitions 10) that was throttled:
    its row in the Tenants view has a second row with the throttle time of the last minute and
    each limit with the use against it; Enter shows every limit with its percentage and each
    broker's share."""
    import kwire
    mk = minikora("--set", "quota.window.num=2")
    url = admin_url_or_skip(mk)
    http(url + "/v1/tenants", "POST", {"id": "quo"}, mk=mk)
    k = http(url + "/v1/tenants/quo/keys", "POST", mk=mk)
    http(url + "/v1/tenants/quo/quotas", "PUT", {"producer_byte_rate": 100000, "max_partitions": 10}, mk=mk)
    admin = ck.admin.AdminClient(sasl_conf(mk, k["key"], k["secret"]))
    assert ck_result(admin.create_topics([NewTopic("capped", 1, 3)])["capped"]) is None
    with mk.wire() as c:
        assert c.sasl_plain(k["key"], k["secret"])[0] == 0
        deadline = time.monotonic() + 20
        while True:
            md = c.metadata(["capped"])
            leader = md["topics"][0]["partitions"][0]["leader"] if md["topics"][0]["partitions"] else -1
            if leader > 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    with mk.wire(leader, timeout=15) as c:
        assert c.sasl_plain(k["key"], k["secret"])[0] == 0
        (err, _), throttle = c.produce_throttled("capped", 0, kwire.record_batch([(None, b"q" * 300000, [])]),
                                                 version=8)
        assert err == 0 and throttle > 0, (err, throttle)

    tui = Tui("quotas", ["--admin", url])
    try:
        tui.keys("4")
        # the tenant's row, then its quota row: throttle time (not 0), bytes in against 100k, partitions 1 of 10
        tui.wait_re(r"^ quo\s+\d+\s.*\n  throttle [1-9][\d.]*m?s/min  in [\d.]+[kM]?/100k  parts 1/10$")
        assert not re.search(r"^  throttle", tui.screen().split(" quo ")[0], re.M)  # default: no quotas
        tui.keys("j")
        tui.wait_re(r"^>quo\s")
        tui.keys("Enter")
        s = tui.wait_text("Tenant quo", "QUOTAS", "BROKER")
        assert re.search(r"^ QUOTAS  throttled [1-9][\d.]*m?s in the last minute; ", s, re.M), s
        assert re.search(r"^ producer_byte_rate\s+[\d.]+[kM]?/100k\s+\d+%", s, re.M), s
        assert re.search(r"max_partitions\s+1/10\s+10%", s), s
        # the leader's row: its rate, and its share of the 100k (most of it)
        assert re.search(r"^  %d\s+[\d.]+[kM]?\s+[\d.]+k\s" % leader, s, re.M), s
        tui.keys("q")
        assert tui.exit_code() == 0
    finally:
        tui.close()


class FakeAdmin:
    """A stand-in admin API: canned answers for the GETs the TUI polls.  `xaz` adds the tenants'
    cross-AZ figures and a cell load; /v1/tenants answers 404, as an older server would."""

    def __init__(self):
        self.xaz = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = fake.answer(self.path.split("?")[0])
                data = json.dumps(body if body is not None else {"error": "not_found"}).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path):
        flow = {"bytes_in_per_sec": 2000.0, "bytes_out_per_sec": 0.0, "requests_per_sec": 3.0}
        tenant = dict(flow, tenant="acme")
        cell = {"id": 0, "brokers": [1]}
        if self.xaz:
            tenant.update(cross_az_bytes=123456789, cross_az_cost=0.0049)
            cell.update(load=0.42, tenants=["acme"])
        return {
            "/v1/cluster": {"cluster_id": "fake", "version": "0", "controller": 1, "brokers_running": 1,
                            "azs": [{"name": "az-1", "brokers": [1], "running": 1}], "cells": [cell],
                            "brokers": [{"id": 1, "az": "az-1", "cell": 0, "running": True,
                                         "state": "running"}]},
            "/v1/topics": {"topics": [{"name": "acme~orders", "partitions": 3, "cell": 0}]},
            "/v1/rates": {"window_sec": 10.0, "cluster": flow, "brokers": [], "topics": [],
                          "clients": [], "tenants": [tenant]},
            "/v1/groups": {"groups": []},
            "/v1/events": {"events": [], "last_seq": 0},
        }.get(path)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.timeout(60)
def test_tui_tenants_against_an_older_or_newer_api():
    """Without GET /v1/tenants the rows come from /v1/rates `tenants` (cell unknown: "-");
    the cross-AZ columns and a cell's load appear only once the API gives them."""
    fake = FakeAdmin()
    tui = Tui("fake", ["--admin", fake.url])
    try:
        tui.keys("4")
        s = tui.wait_re(r"^>acme\s+-\s+2\.00 kB\s+0 B\s+3\s+-\s+-\s+-$")
        assert "X-AZ" not in s, s
        tui.keys("2")
        s = tui.wait_re(r"^\s+3 partitions\s+tenants: none$")  # no cells[].tenants, no cell known
        fake.xaz = True
        tui.wait_re(r"^\s+load 42%\s+tenants: acme$")
        tui.keys("4")
        tui.wait_text("X-AZ", "X-AZ $")
        tui.wait_re(r"^>acme\s.*\s123 MB\s+\$0\.0049$")
        tui.keys("q")
        assert tui.exit_code() == 0
    finally:
        tui.close()
        fake.close()
