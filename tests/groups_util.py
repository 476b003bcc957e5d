"""Helpers for the consumer-group tests (tests/test_groups*.py).

* Connections for the raw group protocol (kwire.Conn has FindCoordinator, JoinGroup, SyncGroup,
  Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups,
  OffsetDelete and the consumer protocol's subscription/assignment encoders):
  `coordinator(bootstrap, group)` opens one to the group's coordinator; RawGroup drives n raw
  members through join/sync/heartbeat.
* `Hub` + `CkMember` / `KpMember` / `JsMember`: one consumer-group member per object for
  confluent-kafka, kafka-python and kafkajs (tests/js/group_consumer.js) with one interface:
  start(), stop() (commit + leave), crash() (go away without LeaveGroup), .assignment,
  .records, .assign_events.  Every state change notifies the hub's condition, and tests wait on
  it with a deadline (Hub.wait), never with a bare sleep.

Client settings are chosen for fast rebalances: session timeout 6000 ms (the broker's minimum),
heartbeats every 300 ms, rebalance timeout 10 s.
"""

import json
import os
import subprocess
import threading
import time
import uuid

import kwire
from kwire import ILLEGAL_GENERATION, MEMBER_ID_REQUIRED, NONE, REBALANCE_IN_PROGRESS, ename

SESSION_MS = kwire.GROUP_SESSION_MS
HEARTBEAT_MS = 300
REBALANCE_MS = kwire.GROUP_REBALANCE_MS


# ---------------------------------------------------------------------------------------------
# Connections (kwire.Conn has the group APIs)
# ---------------------------------------------------------------------------------------------
def wire(bootstrap, index=0, timeout=15.0):
    host, port = kwire.parse_bootstrap(bootstrap)[index]
    return kwire.Conn(host, port, timeout=timeout)


def coordinator_of(bootstrap, group):
    """-> (node_id, host, port) of the group's coordinator (FindCoordinator v2 via broker 0)."""
    with wire(bootstrap) as c:
        err, node, host, port = c.find_coordinator(group)
    assert err == NONE, "FindCoordinator(%s): %s" % (group, ename(err))
    return node, host, port


def coordinator(bootstrap, group, timeout=15.0):
    _, host, port = coordinator_of(bootstrap, group)
    return kwire.Conn(host, port, timeout=timeout)


def non_coordinator(bootstrap, group, timeout=15.0):
    """A connection to a broker that is NOT the group's coordinator."""
    _, host, port = coordinator_of(bootstrap, group)
    for h, p in kwire.parse_bootstrap(bootstrap):
        if p != port:
            return kwire.Conn(h, p, timeout=timeout)
    raise AssertionError("only one broker")


def describe(bootstrap, group):
    with coordinator(bootstrap, group) as c:
        return c.describe([group])[group]


def committed(bootstrap, group, topic, partitions):
    """{p: committed offset (-1 if none)} via raw OffsetFetch at the coordinator."""
    with coordinator(bootstrap, group) as c:
        err, offs = c.fetch_offsets(group, {topic: list(range(partitions))})
    assert err == NONE, ename(err)
    return {p: offs[(topic, p)][0] for p in range(partitions)}


def probe_generation(bootstrap, group, member_id, instance_id=None, upto=300):
    """The group's current generation, found by Heartbeat (v3) as `member_id` with generations
    0..upto: the one not answered ILLEGAL_GENERATION.  Returns (generation, error)."""
    with coordinator(bootstrap, group) as c:
        for g in range(upto):
            err = c.heartbeat(group, g, member_id, instance_id)
            if err != ILLEGAL_GENERATION:
                return g, err
    raise AssertionError("no generation in 0..%d accepted for %s" % (upto, member_id))


def wait_until(pred, timeout, what, interval=0.05):
    """Bounded poll for conditions that have no event to wait on (broker-side state)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)  # bounded by timeout


# ---------------------------------------------------------------------------------------------
# Members driven by real clients
# ---------------------------------------------------------------------------------------------
class Hub:
    """Shared condition for every member of a test; tests wait on it with deadlines."""

    def __init__(self):
        self.cv = threading.Condition()
        self.errors = []

    def notify(self):
        with self.cv:
            self.cv.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
                self.cv.wait(min(left, 0.5))


class Member:
    kind = "?"

    def __init__(self, hub, bootstrap, topic, group, name, instance_id=None):
        self.hub, self.bootstrap, self.topic, self.group = hub, bootstrap, topic, group
        self.name = name
        self.instance_id = instance_id
        self.lock = threading.Lock()
        self.records = []          # (partition, offset, key)
        self.assignment = None     # frozenset of partitions, None while (re)joining
        self.assign_events = 0
        self.revoke_events = 0
        self.history = []          # ("assign", frozenset) / ("revoke", ...)
        self.errors = []
        self.running = False
        self.done = False

    # notifications from the client thread / reader
    def _assigned(self, parts):
        with self.lock:
            self.assignment = frozenset(parts)
            self.assign_events += 1
            self.history.append(("assign", self.assignment))
        self.hub.notify()

    def _revoked(self):
        with self.lock:
            self.assignment = None
            self.revoke_events += 1
            self.history.append(("revoke", None))
        self.hub.notify()

    def _records(self, recs):
        with self.lock:
            self.records.extend(recs)
        self.hub.notify()

    def _error(self, e):
        with self.lock:
            self.errors.append(e)
        self.hub.notify()

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def __repr__(self):
        return "<%s %s assignment=%s records=%d events=+%d/-%d errors=%s>" % (
            self.kind, self.name, sorted(self.assignment) if self.assignment is not None else None,
            len(self.records), self.assign_events, self.revoke_events, self.errors[:3])


class CkMember(Member):
    """confluent-kafka consumer in a thread: subscribe, consume, commit synchronously after
    every non-empty batch."""
    kind = "confluent"

    def start(self):
        import confluent_kafka as ck
        import clients
        conf = clients.rdk_conf(self.bootstrap, **{
            "group.id": self.group, "client.id": self.name,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": HEARTBEAT_MS,
            "max.poll.interval.ms": REBALANCE_MS, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "fetch.wait.max.ms": 100,
            "enable.partition.eof": False, "topic.metadata.refresh.interval.ms": 5000,
            "reconnect.backoff.max.ms": 500})
        if self.instance_id:
            conf["group.instance.id"] = self.instance_id
        self._stop = threading.Event()
        self._mode = "stop"
        self._ck = ck
        self.c = ck.Consumer(conf)

        def on_assign(c, parts):
            self._assigned([tp.partition for tp in parts])

        def on_revoke(c, parts):
            self._revoked()

        self.c.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke)
        self.running = True
        self.t = threading.Thread(target=self._run, name="ck-" + self.name, daemon=True)
        self.t.start()
        return self

    def _commit(self):
        try:
            self.c.commit(asynchronous=False)
        except self._ck.KafkaException as e:
            err = e.args[0]
            if err.code() not in (self._ck.KafkaError._NO_OFFSET,):
                self._error(("commit", err.name()))

    def _run(self):
        ck = self._ck
        try:
            while not self._stop.is_set():
                msgs = self.c.consume(num_messages=1000, timeout=0.1)
                recs = []
                for m in msgs:
                    if m.error():
                        if m.error().code() != ck.KafkaError._PARTITION_EOF:
                            self._error(("consume", m.error().name()))
                        continue
                    recs.append((m.partition(), m.offset(), m.key()))
                if recs:
                    self._records(recs)
                    self._commit()
        except Exception as e:  # noqa: BLE001 - reported through errors
            self._error(("thread", repr(e)))
        finally:
            try:
                self.c.close()  # commits nothing (auto commit off); static members do not leave
            except Exception as e:  # noqa: BLE001
                self._error(("close", repr(e)))
            self.running = False
            self.done = True
            self.hub.notify()

    def stop(self, timeout=20):
        self._stop.set()
        self.t.join(timeout)
        assert not self.t.is_alive(), "%s did not stop within %ds" % (self, timeout)

    def crash(self, timeout=20):
        """Static members: librdkafka's close() sends no LeaveGroup when group.instance.id is
        set, which is what a process restart looks like to the coordinator."""
        assert self.instance_id, "crash() is for static members"
        self.stop(timeout)


class KpMember(Member):
    """kafka-python consumer in a thread; commit() after every non-empty poll."""
    kind = "kafka-python"

    def start(self):
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener
        assert self.instance_id is None, "kafka-python 2.0.2 has no group_instance_id"
        member = self

        class L(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                member._revoked()

            def on_partitions_assigned(self, assigned):
                member._assigned([tp.partition for tp in assigned])

        self.c = KafkaConsumer(
            bootstrap_servers=self.bootstrap.split(","), group_id=self.group,
            client_id=self.name, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=SESSION_MS, heartbeat_interval_ms=HEARTBEAT_MS,
            max_poll_interval_ms=REBALANCE_MS, fetch_max_wait_ms=100,
            request_timeout_ms=30000, metadata_max_age_ms=5000, retry_backoff_ms=50,
            reconnect_backoff_max_ms=500)
        self.c.subscribe([self.topic], listener=L())
        self._stop = threading.Event()
        self.running = True
        self.t = threading.Thread(target=self._run, name="kp-" + self.name, daemon=True)
        self.t.start()
        return self

    def _run(self):
        from kafka.errors import CommitFailedError, KafkaError
        try:
            while not self._stop.is_set():
                got = self.c.poll(timeout_ms=100, max_records=1000)
                recs = [(tp.partition, m.offset, m.key) for tp, ms in got.items() for m in ms]
                if recs:
                    self._records(recs)
                    try:
                        self.c.commit()
                    except (CommitFailedError, KafkaError) as e:
                        self._error(("commit", type(e).__name__))
        except Exception as e:  # noqa: BLE001
            self._error(("thread", repr(e)))
        finally:
            try:
                self.c.close(autocommit=False)  # sends LeaveGroup
            except Exception as e:  # noqa: BLE001
                self._error(("close", repr(e)))
            self.running = False
            self.done = True
            self.hub.notify()

    def stop(self, timeout=20):
        self._stop.set()
        self.t.join(timeout)
        assert not self.t.is_alive(), "%s did not stop within %ds" % (self, timeout)


class JsMember(Member):
    """One kafkajs consumer in its own node process (tests/js/group_consumer.js), driven over
    stdin ("stop" / "crash") and reporting JSON lines on stdout."""
    kind = "kafkajs"

    def start(self):
        import clients
        args = [clients.NODE, str(clients.JS_DIR / "group_consumer.js"),
                "--bootstrap", self.bootstrap, "--topic", self.topic, "--group", self.group,
                "--name", self.name, "--session", str(SESSION_MS),
                "--heartbeat", str(HEARTBEAT_MS), "--rebalance", str(REBALANCE_MS)]
        if self.instance_id:
            args += ["--instance", self.instance_id]
        env = dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1")
        self.stderr_lines = []
        self.p = subprocess.Popen(args, cwd=str(clients.JS_DIR), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.running = True
        self.t = threading.Thread(target=self._read, name="js-" + self.name, daemon=True)
        self.t.start()
        self.te = threading.Thread(target=self._read_err, daemon=True)
        self.te.start()
        return self

    def _read_err(self):
        for raw in self.p.stderr:
            if len(self.stderr_lines) < 200:
                self.stderr_lines.append(raw.decode("utf-8", "replace").rstrip())

    def _read(self):
        try:
            for raw in self.p.stdout:
                try:
                    ev = json.loads(raw)
                except ValueError:
                    continue
                kind = ev.get("ev")
                if kind == "assign":
                    self.member_id = ev.get("memberId")
                    self._assigned(ev.get("partitions", []))
                elif kind == "rebalancing":
                    self._revoked()
                elif kind == "recs":
                    p = ev["p"]
                    self._records([(p, o, k.encode() if k is not None else None)
                                   for o, k in ev["recs"]])
                elif kind in ("crash", "error"):
                    self._error((kind, ev.get("error")))
        finally:
            self.p.wait()
            self.running = False
            self.done = True
            self.hub.notify()

    def _cmd(self, cmd, timeout):
        try:
            self.p.stdin.write((cmd + "\n").encode())
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("%s did not %s within %ds\nstderr: %s"
                                 % (self, cmd, timeout, "\n".join(self.stderr_lines[-20:])))
        self.t.join(5)

    def stop(self, timeout=20):
        self._cmd("stop", timeout)

    def crash(self, timeout=20):
        """Exit without LeaveGroup (as a killed process would)."""
        self._cmd("crash", timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


MEMBER_CLASSES = {"confluent": CkMember, "kafka-python": KpMember, "kafkajs": JsMember}


class Group:
    """A test's members of one group on one topic, with the checks the tests share."""

    def __init__(self, kind, bootstrap, topic, partitions, group=None):
        self.kind, self.bootstrap, self.topic, self.partitions = kind, bootstrap, topic, partitions
        self.group = group or "g-%s-%s" % (kind, uuid.uuid4().hex[:10])
        self.hub = Hub()
        self.members = []
        self.seq = 0

    def add(self, instance_id=None, name=None):
        self.seq += 1
        cls = MEMBER_CLASSES[self.kind]
        m = cls(self.hub, self.bootstrap, self.topic, self.group,
                name or "%s-m%d" % (self.kind, self.seq), instance_id=instance_id)
        self.members.append(m)
        return m.start()

    def live(self):
        return [m for m in self.members if m.running and not getattr(m, "_stopping", False)]

    def stop(self, m, crash=False):
        m._stopping = True
        (m.crash if crash else m.stop)()

    def close_all(self):
        errs = []
        for m in self.members:
            if m.running:
                m._stopping = True
                try:
                    m.stop(timeout=15)
                except BaseException as e:  # noqa: BLE001
                    errs.append(str(e))
                    if isinstance(m, JsMember):
                        m.kill()
        return errs

    FATAL = ("crash", "error", "thread", "consume")

    def fatal(self):
        """Errors after which a member will not recover (kafkajs crash, thread death...)."""
        return [(m.name, e) for m in self.members for e in m.errors if e[0] in self.FATAL]

    def _wait(self, pred, timeout, what):
        """hub.wait that gives up at once when a member reports a fatal error."""
        def p():
            return pred() or bool(self.fatal())
        self.hub.wait(p, timeout, what)
        if not pred():
            raise AssertionError("while waiting for %s, a member failed: %r" % (what, self.fatal()))

    def balanced(self, members=None):
        """True when the given (default: live) members hold disjoint assignments that cover
        every partition, each of size floor or ceil of partitions/len(members)."""
        ms = members if members is not None else self.live()
        if not ms:
            return False
        asg = [m.assignment for m in ms]
        if any(a is None for a in asg):
            return False
        allp = [p for a in asg for p in a]
        if sorted(allp) != list(range(self.partitions)):
            return False
        lo = self.partitions // len(ms)
        return all(lo <= len(a) <= lo + (1 if self.partitions % len(ms) else 0) for a in asg)

    def wait_balanced(self, timeout=30, what=""):
        try:
            self._wait(lambda: self.balanced(), timeout,
                          "%s: balanced assignment over %d live members %s"
                          % (what, len(self.live()), self.live()))
        except AssertionError as e:
            raise AssertionError("%s\ngroup: %r" % (e, describe_safe(self.bootstrap, self.group)))
        # the broker agrees: Stable, the same members
        d = wait_until(lambda: (lambda d: d if d["state"] == "Stable" else None)(
            describe(self.bootstrap, self.group)), 15, "group %s Stable" % self.group)
        assert len(d["members"]) == len(self.live()), (d, self.live())
        return d

    def consumed(self):
        out = []
        for m in self.members:
            out.extend(m.snapshot())
        return out

    def wait_consumed(self, expected, timeout=30, what="", members=None):
        """Wait until every (partition, offset) in `expected` has been consumed by someone
        (of `members`, default every member this test started)."""
        expected = set(expected)

        def consumed():
            if members is None:
                return self.consumed()
            return [r for m in members for r in m.snapshot()]

        def done():
            got = {(p, o) for p, o, _ in consumed()}
            return expected <= got
        try:
            self._wait(done, timeout, "%s: %d records consumed" % (what, len(expected)))
        except AssertionError as e:
            got = {(p, o) for p, o, _ in consumed()}
            missing = sorted(expected - got)
            raise AssertionError("%s; %d missing, first %r; members %r" % (
                e, len(missing), missing[:10], self.members))

    def member_errors(self, ignore=("commit",)):
        return [(m.name, e) for m in self.members for e in m.errors if e[0] not in ignore]


def describe_safe(bootstrap, group):
    try:
        return describe(bootstrap, group)
    except Exception as e:  # noqa: BLE001
        return repr(e)


def produce(bootstrap, topic, partitions, per_partition, tag):
    """Produce per_partition records to each partition with confluent-kafka; returns the set of
    (partition, offset) and {(partition, offset): key}."""
    import clients
    recs = []
    for i in range(per_partition * partitions):
        p = i % partitions
        recs.append((p, ("%s-%d" % (tag, i)).encode(), b"v-" + str(i).encode(), []))
    offs = clients.ck_produce(bootstrap, topic, recs)
    keys = {}
    i_by_p = {}
    for p, k, v, h in recs:
        idx = i_by_p.get(p, 0)
        i_by_p[p] = idx + 1
        keys[(p, offs[p][idx])] = k
    return set(keys), keys


# ---------------------------------------------------------------------------------------------
# Raw members
# ---------------------------------------------------------------------------------------------
class RawGroup:
    """n raw members of one group, formed one by one (each join makes the others rejoin), all
    synced: .conns[i], .ids[i], .gen, .leader, .assignments[i] ({topic: [p]})."""

    def __init__(self, bootstrap, group, n, topic, partitions, rebalance_ms=REBALANCE_MS,
                 session_ms=SESSION_MS, instance_ids=None, version=5):
        self.bootstrap, self.group, self.topic, self.partitions = bootstrap, group, topic, partitions
        self.rebalance_ms, self.session_ms, self.version = rebalance_ms, session_ms, version
        self.instance_ids = instance_ids or [None] * n
        self.conns, self.ids = [], []
        self.gen, self.leader, self.assignments = None, None, []
        for i in range(n):
            self.add(self.instance_ids[i])

    def _kw(self, i):
        return dict(topics=[self.topic], session_ms=self.session_ms,
                    rebalance_ms=self.rebalance_ms, instance_id=self.instance_ids[i],
                    version=self.version)

    def new_member_id(self, conn, instance_id):
        if self.version >= 4 and instance_id is None:
            r = conn.join(self.group, "", **dict(self._kw(0), instance_id=None))
            assert r["error"] == MEMBER_ID_REQUIRED and r["member_id"], r
            return r["member_id"]
        return ""

    def add(self, instance_id=None):
        i = len(self.conns)
        if i >= len(self.instance_ids):
            self.instance_ids.append(instance_id)
        c = coordinator(self.bootstrap, self.group)
        self.conns.append(c)
        self.ids.append(self.new_member_id(c, self.instance_ids[i]))
        c.join_send(self.group, self.ids[i], **self._kw(i))
        if i:
            # as clients do: the others learn about the rebalance from a heartbeat, then
            # rejoin (rejoining earlier could overtake the new member's JoinGroup)
            wait_until(lambda: self.heartbeat(0) == REBALANCE_IN_PROGRESS, 10,
                       "member 0 told to rejoin after member %d joined" % i)
        for j in range(i):
            self.conns[j].join_send(self.group, self.ids[j], **self._kw(j))
        res = [self.conns[j].join_recv() for j in range(i + 1)]
        for r in res:
            assert r["error"] == NONE, (ename(r["error"]), r)
        self.ids = [r["member_id"] for r in res]
        self.gen = res[0]["generation"]
        assert all(r["generation"] == self.gen for r in res), res
        self.leader = res[0]["leader"]
        leader_res = [r for r in res if r["member_id"] == self.leader]
        assert len(leader_res) == 1 and len(leader_res[0]["members"]) == i + 1, res
        self.sync_all()
        return i

    def plan(self):
        """Round-robin assignment over the members: {member_id: {topic: [p]}}."""
        out = {m: {self.topic: []} for m in self.ids}
        for p in range(self.partitions):
            out[self.ids[p % len(self.ids)]][self.topic].append(p)
        return out

    def sync_all(self):
        plan = self.plan()
        li = self.ids.index(self.leader)
        for j, c in enumerate(self.conns):
            if j != li:
                c.sync_send(self.group, self.gen, self.ids[j], instance_id=self.instance_ids[j])
        self.conns[li].sync_send(self.group, self.gen, self.leader,
                                 {m: kwire.assignment(a) for m, a in plan.items()},
                                 instance_id=self.instance_ids[li])
        self.assignments = []
        for j, c in enumerate(self.conns):
            err, a = c.sync_recv()
            assert err == NONE, (j, ename(err))
            self.assignments.append(kwire.parse_assignment(a))
        assert self.assignments == [plan[m] for m in self.ids], (self.assignments, plan)

    def heartbeat(self, i, generation=None):
        return self.conns[i].heartbeat(self.group, self.gen if generation is None else generation,
                                       self.ids[i], self.instance_ids[i])

    def close(self):
        for c in self.conns:
            c.close()
