"""The TUI items of issue 14, driven in tmux as tests/test_tui.py drives the rest (its Tui
helper): the Groups view, column sorting, wide terminals, whole events, and tailing a topic.

Covered: o and O sort the Overview's brokers (the header marks the column); a consumer group
with a live member shows in the Groups view (key 7) with its state,
member count, committed partitions and lag; o sorts by the next column (the header marks it:
^ ascending, v descending) and O reverses; Enter opens the group: its member with its
assignment, each partition with its committed offset and lag.  On a 200-column terminal the
topic list keeps its figures beside the names.  An event whose message is longer than its
column is shown whole, wrapped.  In a topic's drill-down, t tails the partition: key, value,
headers and time of the newest records, and records produced afterwards appear at the bottom;
Left/Right change the partition.  GET /v1/groups gives the total lag and each member's
assignment (decoded from the consumer protocol).
"""

import re
import threading
import time
import uuid

import confluent_kafka as ck
import pytest

from clients import RDK_LOG, ck_produce
from test_tui import Tui, admin_url_or_skip, http

pytestmark = pytest.mark.skipif(__import__("shutil").which("tmux") is None,
                                reason="tmux is not installed (ci/install.sh test installs it)")


class Member:
    """A consumer in a group that reads `want` records, commits them, then stays a member
    (polling) until stopped."""

    def __init__(self, bootstrap, group, topic, want):
        self.c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "logger": RDK_LOG,
                              "client.id": "tui-member", "enable.auto.commit": False,
                              "auto.offset.reset": "earliest", "max.poll.interval.ms": 60000,
                              "session.timeout.ms": 10000})
        self.c.subscribe([topic])
        self.want, self.got = want, 0
        self.committed = threading.Event()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_ev.is_set():
            m = self.c.poll(0.2)
            if m is None or m.error() or self.got >= self.want:
                continue
            self.got += 1
            if self.got == self.want:
                self.c.commit(asynchronous=False)
                self.committed.set()

    def stop(self):
        self.stop_ev.set()
        self.thread.join(15)
        self.c.close()


@pytest.mark.timeout(150)
def test_tui_groups_sorting_and_tail(minikora):
    mk = minikora("--brokers", "3", "--azs", "3")
    url = admin_url_or_skip(mk)
    topic = "tuig-%s" % uuid.uuid4().hex[:6]
    http(url + "/v1/topics", "POST", {"name": topic, "partitions": 2, "replication_factor": 3}, mk=mk)
    recs = [(i % 2, b"key-%d" % i, b"value-%d" % i, [("src", b"tuitest")]) for i in range(40)]
    ck_produce(mk.bootstrap, topic, recs)
    group = "grp-%s" % uuid.uuid4().hex[:6]
    member = Member(mk.bootstrap, group, topic, 30)
    tui = None
    try:
        assert member.committed.wait(60), "the member did not commit"
        # The API: total lag and the member's assignment.
        deadline = time.monotonic() + 30
        while True:
            g = http(url + "/v1/groups/" + group, mk=mk)["group"]
            if g["state"] == "Stable" and g["lag"] == 10 and g["members"]:
                break
            assert time.monotonic() < deadline, g
            time.sleep(0.1)  # poll interval
        a = g["members"][0]["assignment"]
        assert a == [{"topic": topic, "partitions": [0, 1]}], g
        listed = [x for x in http(url + "/v1/groups", mk=mk)["groups"] if x["group_id"] == group]
        assert listed and listed[0]["lag"] == 10, listed

        tui = Tui("groups", ["--admin", url], env={"MINIKORA_ADMIN_TOKEN": mk.admin_token})
        tui.wait_text("1 Overview", "brokers 3/3 up")
        # ---- Sorting a list view: Overview by ID, largest first (v), then reversed (^)
        tui.keys("o")
        s = tui.wait_re(r"^\s+vID\s+AZ")
        tui.wait("brokers 3, 2, 1", lambda s: re.findall(r"^[ >]\s+(\d)\s+az-\d", s, re.M) == ["3", "2", "1"])
        tui.keys("O")
        tui.wait_re(r"^\s+\^ID\s+AZ")
        tui.wait("brokers 1, 2, 3", lambda s: re.findall(r"^[ >]\s+(\d)\s+az-\d", s, re.M) == ["1", "2", "3"])
        # ---- Groups: state, members, committed partitions, lag
        tui.keys("7")
        tui.wait_text("7 Groups", "GROUP", "LAG HISTORY")
        tui.wait_re(r"^>%s\s+Stable\s+1\s+\d\s+2\s+10\b" % group)
        # ---- Sorting: o picks the first column (A to Z: ^), O reverses it (v)
        tui.keys("o")
        tui.wait_re(r"\^GROUP\s+STATE")
        tui.keys("O")
        tui.wait_re(r"vGROUP\s+STATE")
        tui.keys("o", "o", "o", "o", "o")  # GROUP -> STATE -> MEMBERS -> COORD -> PARTS -> LAG
        tui.wait_re(r"[v^]LAG HISTORY|\s[v^]LAG\s")
        # ---- Enter: the member and its assignment, each partition's lag
        tui.keys("Enter")
        tui.wait_text("Group %s" % group, "Stable", "ASSIGNMENT", "tui-member")
        tui.wait_text("%s:0,1" % topic)
        s = tui.wait_re(r"^ %s\s+0\s+\d+\s+\d+\s+tui-member" % re.escape(topic))
        lags = [int(x) for x in re.findall(r"^ %s\s+[01]\s+\d+\s+(\d+)" % re.escape(topic), s, re.M)]
        assert sum(lags) == 10, s
        tui.keys("Escape")
        tui.wait_text("LAG HISTORY")

        # ---- Tail: Placement, the topic's drill-down, t
        tui.keys("2")
        tui.wait_text(topic)
        tui.keys("j", "Enter")  # grid (one cell) -> the topic list's first row -> its partitions
        tui.wait_text("Topic %s" % topic, "t: tail")
        tui.keys("t")
        s = tui.wait_re(r"^\s+19\s+\d\d:\d\d:\d\d\.\d{3}\s+key-38\s+value-38\s+src=tuitest")
        assert "Tail %s  partition 0 of 2" % topic in s, s
        # New records show at the bottom as they come.
        ck_produce(mk.bootstrap, topic, [(0, b"late-key", b"late-value", [("h", b"x")])])
        s = tui.wait_re(r"^\s+20\s+\S+\s+late-key\s+late-value\s+h=x\s*$")
        rows = [l for l in s.splitlines() if re.match(r"^\s+\d+\s+\d\d:\d\d", l)]
        assert "late-key" in rows[-1], s
        # Right: partition 1 (odd keys).
        tui.keys("l")
        tui.wait_re(r"^\s+19\s+\S+\s+key-39\s+value-39")
        tui.keys("t")
        tui.wait_text("REPLICAS")
    finally:
        if tui:
            tui.close()
        member.stop()


@pytest.mark.timeout(90)
def test_tui_wide_terminal_and_whole_events(minikora):
    mk = minikora("--brokers", "1", "--azs", "1")
    url = admin_url_or_skip(mk)
    short = "w%s" % uuid.uuid4().hex[:4]
    http(url + "/v1/topics", "POST", {"name": short, "partitions": 3, "replication_factor": 1}, mk=mk)
    long_name = "events-" + "x" * 60 + "-end%s" % uuid.uuid4().hex[:4]
    http(url + "/v1/topics", "POST", {"name": long_name, "partitions": 1, "replication_factor": 1}, mk=mk)
    # Wide: the figures stay beside the names, not at the far right of 200 columns.
    tui = Tui("wide", ["--admin", url], env={"MINIKORA_ADMIN_TOKEN": mk.admin_token}, cols=200, rows=30)
    try:
        tui.keys("2")
        s = tui.wait_text(short, long_name)
        row = [l for l in s.splitlines() if l.startswith(" %s " % short)][0]
        assert re.match(r"^ %s\s{1,80}3\s+1\s" % short, row), row
        head = [l for l in s.splitlines() if "TOPIC" in l and "PARTS" in l][0]
        assert head.index("PARTS") < 120, head
    finally:
        tui.close()
    # Narrow: an event message longer than its column is wrapped, never cut silently.
    tui = Tui("events", ["--admin", url], env={"MINIKORA_ADMIN_TOKEN": mk.admin_token}, cols=80, rows=24)
    try:
        tui.keys("5")
        s = tui.wait_text("topic_created")
        joined = re.sub(r"\n\s{40}", "", s)  # the continuation lines, under the message column
        assert long_name in joined, s
        assert "replication factor 1, cell 0" in joined.replace("\n", " "), s
    finally:
        tui.close()
