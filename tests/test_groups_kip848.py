"""KIP-848 consumer groups at the wire level: ConsumerGroupHeartbeat (v0, v1 with
SubscribedTopicRegex) and ConsumerGroupDescribe, driven by hand-built requests (kwire.py).

No installable client speaks group.protocol=consumer here, so the members are simulated:
Debian's librdkafka is 2.0.2 (KIP-848 needs librdkafka 2.4+, GA in 2.10) and its Python
binding (confluent-kafka 1.7.0) refuses the "group.protocol" property; kafkajs 2.2.4 knows API
keys up to 46 only; kafka-python 2.0.2 has none either.  A simulated member does what a real
one does: it heartbeats with its member epoch and reports the partitions it still owns
(TopicPartitions); it drops a revoked partition at once, or after a few heartbeats for a
"slow revoker", which is how the no-double-ownership rule is exercised.

Covered: two and three members converge with no partition owned by two members at once; a
member that leaves hands its partitions over; the session timeout expires a silent member;
range vs uniform shapes; regex subscriptions; static membership (UNRELEASED_INSTANCE_ID, epoch
-2 and the takeover); bad input answered with Kafka's errors while the process lives on;
ConsumerGroupDescribe; OffsetCommit v9 with the member epoch; ListGroups v5 and DescribeGroups
show consumer groups; conversions between classic and consumer groups (empty groups, a classic
member in a consumer group, online upgrade and downgrade); and a classic confluent-kafka
consumer of the same topic in another group still works.

Expected answers are Apache Kafka 4.0's (GroupMetadataManager, KIP-848).
"""

import time
import uuid

import pytest

import clients
import groups_util as gu
import kwire
from cluster import Cluster

SESSION_MS = 2000
CONFIG = ["--set", "group.consumer.session.timeout.ms=%d" % SESSION_MS,
          "--set", "group.consumer.min.session.timeout.ms=1000",
          "--set", "group.consumer.heartbeat.interval.ms=200",
          "--set", "group.consumer.min.heartbeat.interval.ms=100",
          "--set", "group.consumer.max.size=5"]


@pytest.fixture(scope="module")
def mk(request):
    with Cluster(*CONFIG, name=request.module.__name__) as c:
        yield c


@pytest.fixture
def cluster(mk, request):
    from conftest import shared_cluster
    yield from shared_cluster(mk, request)


def new_topic(cluster, partitions, prefix="kip848"):
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
    clients.create_topic_ok(cluster.bootstrap, name, partitions)
    return name


def topic_ids(cluster, names):
    """{name: topic id bytes} through DescribeTopicPartitions."""
    with gu.wire(cluster.bootstrap) as c:
        body = kwire.describe_topic_partitions_body(list(names))
        topics, _ = kwire.parse_describe_topic_partitions(
            c.call(kwire.DESCRIBE_TOPIC_PARTITIONS, 0, body, flexible_req=True))
    return {t["name"]: t["id"] for t in topics}


def gid():
    return "kip848-%s" % uuid.uuid4().hex[:10]


class Member:
    """A simulated KIP-848 consumer: it owns what it was last assigned, minus nothing; a slow
    revoker keeps reporting a revoked partition for `revoke_delay` more heartbeats."""

    def __init__(self, conn, group, topics=None, regex=None, assignor=None, instance_id=None,
                 version=0, member_id="", revoke_delay=0, rebalance_ms=10000):
        self.c, self.group, self.topics, self.regex = conn, group, topics, regex
        self.assignor, self.instance_id, self.version = assignor, instance_id, version
        self.member_id = member_id or ("" if version == 0 else uuid.uuid4().hex)
        self.epoch, self.assigned, self.owned = 0, {}, {}
        self.revoke_delay, self.pending_revoke, self.rebalance_ms = revoke_delay, 0, rebalance_ms
        self.last = None

    def _owned_wire(self):
        return {t: sorted(ps) for t, ps in self.owned.items() if ps}

    def join(self):
        r = self.c.cg_heartbeat(self.group, self.member_id, 0, instance_id=self.instance_id,
                                rebalance_ms=self.rebalance_ms, topics=self.topics,
                                regex=self.regex, assignor=self.assignor, owned={},
                                version=self.version)
        return self._handle(r)

    def beat(self):
        r = self.c.cg_heartbeat(self.group, self.member_id, self.epoch,
                                owned=self._owned_wire(), version=self.version)
        return self._handle(r)

    def leave(self, static=False):
        return self.c.cg_heartbeat(self.group, self.member_id, -2 if static else -1,
                                   instance_id=self.instance_id, version=self.version)

    def _handle(self, r):
        self.last = r
        assert r["error"] == kwire.NONE, "%s: %s %s" % (self.member_id, kwire.ename(r["error"]),
                                                       r["message"])
        self.member_id, self.epoch = r["member_id"], r["epoch"]
        if r["assignment"] is not None:
            new = {t: set(ps) for t, ps in r["assignment"].items()}
            revoked = {(t, p) for t, ps in self.assigned.items() for p in ps
                       if p not in new.get(t, set())}
            self.assigned = new
            if revoked and self.revoke_delay:
                self.pending_revoke = self.revoke_delay  # keep owning them a while
            else:
                self.owned = {t: set(ps) for t, ps in new.items()}
        if self.pending_revoke:
            self.pending_revoke -= 1
            if self.pending_revoke == 0:
                self.owned = {t: set(ps) for t, ps in self.assigned.items()}
        else:
            self.owned = {t: set(ps) for t, ps in self.assigned.items()}
        return r

    def parts(self):
        return {(t, p) for t, ps in self.assigned.items() for p in ps}

    def owned_parts(self):
        return {(t, p) for t, ps in self.owned.items() for p in ps}


def check_no_double_ownership(members):
    seen = {}
    for m in members:
        for tp in m.owned_parts() | m.parts():
            assert tp not in seen, "partition %r held by %s and %s" % (tp, seen[tp], m.member_id)
            seen[tp] = m.member_id


def converge(members, total, timeout=20.0, check=True):
    """Heartbeat every member round-robin until all partitions are assigned, each once, and
    every member is at the group's epoch with nothing pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in members:
            m.beat()
            if check:
                check_no_double_ownership(members)
        parts = [tp for m in members for tp in m.parts()]
        epochs = {m.epoch for m in members}
        if len(parts) == total and len(set(parts)) == total and len(epochs) == 1 and \
                all(m.owned_parts() == m.parts() for m in members):
            # one more round: nothing changes any more
            before = [m.parts() for m in members]
            for m in members:
                m.beat()
            if [m.parts() for m in members] == before:
                return
        time.sleep(0.02)
    raise AssertionError("no convergence: %r" % [(m.member_id, m.epoch, sorted(m.parts()))
                                                  for m in members])


# ------------------------------------------------------------------------------------ basics
@pytest.mark.timeout(30)
def test_api_versions_advertise_kip848(cluster):
    with gu.wire(cluster.bootstrap) as c:
        err, apis = c.api_versions(0)
    assert err == 0
    assert apis[kwire.CONSUMER_GROUP_HEARTBEAT] == (0, 1)
    assert apis[kwire.CONSUMER_GROUP_DESCRIBE] == (0, 0)


@pytest.mark.timeout(60)
def test_two_then_three_members_converge_without_double_ownership(cluster):
    t = new_topic(cluster, 6)
    tid = topic_ids(cluster, [t])[t]
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        m1 = Member(c, g, [t], revoke_delay=3)
        r = m1.join()
        assert r["epoch"] >= 1 and r["member_id"] and r["interval"] == 200
        converge([m1], 6)
        assert m1.parts() == {(tid, p) for p in range(6)}
        m2 = Member(c, g, [t])
        m2.join()
        # m1 is a slow revoker: m2 must not get what m1 still owns
        converge([m1, m2], 6)
        assert len(m1.parts()) == 3 and len(m2.parts()) == 3
        m3 = Member(c, g, [t], revoke_delay=2)
        m3.join()
        converge([m1, m2, m3], 6)
        assert sorted(len(m.parts()) for m in (m1, m2, m3)) == [2, 2, 2]
        d = c.cg_describe([g])[g]
        assert d["error"] == 0 and d["state"] == "Stable", d
        assert d["assignor"] == "uniform"
        assert d["epoch"] == d["assignment_epoch"] == m1.epoch
        assert {m["member_id"] for m in d["members"]} == {m1.member_id, m2.member_id, m3.member_id}
        for dm in d["members"]:
            assert dm["epoch"] == d["epoch"]
            assert dm["topics"] == [t]
            assert dm["assignment"] == dm["target"] and len(dm["assignment"][t]) == 2


@pytest.mark.timeout(60)
def test_member_leaves_and_the_others_take_its_partitions(cluster):
    t = new_topic(cluster, 6)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        ms = [Member(c, g, [t]) for _ in range(3)]
        for m in ms:
            m.join()
        converge(ms, 6)
        gone = ms[1]
        r = gone.leave()
        assert r["error"] == 0 and r["epoch"] == -1 and r["member_id"] == gone.member_id
        rest = [ms[0], ms[2]]
        converge(rest, 6)
        assert sorted(len(m.parts()) for m in rest) == [3, 3]
        assert gone.parts() <= rest[0].parts() | rest[1].parts()
        # the departed member is unknown now
        r = c.cg_heartbeat(g, gone.member_id, gone.epoch, owned={})
        assert r["error"] == kwire.UNKNOWN_MEMBER_ID, kwire.ename(r["error"])


@pytest.mark.timeout(60)
def test_session_timeout_expires_a_silent_member(cluster):
    t = new_topic(cluster, 4)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        live, silent = Member(c, g, [t]), Member(c, g, [t])
        live.join()
        silent.join()
        converge([live, silent], 4)
        t0 = time.monotonic()
        # only `live` heartbeats now; within the session timeout (+ the 100 ms tick) the
        # silent member is removed and `live` gets everything
        deadline = t0 + SESSION_MS / 1000.0 + 8
        while len(live.parts()) < 4 and time.monotonic() < deadline:
            live.beat()
            time.sleep(0.1)
        assert len(live.parts()) == 4, live.parts()
        assert time.monotonic() - t0 >= SESSION_MS / 1000.0 * 0.9
        r = c.cg_heartbeat(g, silent.member_id, silent.epoch, owned={})
        assert r["error"] == kwire.UNKNOWN_MEMBER_ID, kwire.ename(r["error"])
        d = c.cg_describe([g])[g]
        assert [m["member_id"] for m in d["members"]] == [live.member_id]
    assert "expired (session timeout %d ms)" % SESSION_MS in cluster.stderr_text()


@pytest.mark.timeout(60)
def test_range_and_uniform_shapes(cluster):
    a, b = new_topic(cluster, 3), new_topic(cluster, 3)
    ids = topic_ids(cluster, [a, b])
    for assignor in ("range", "uniform"):
        g = gid()
        with gu.coordinator(cluster.bootstrap, g) as c:
            # v1: the members choose their ids, so range's member id order is known
            m1 = Member(c, g, [a, b], assignor=assignor, version=1, member_id="aaaa-" + g)
            m2 = Member(c, g, [a, b], assignor=assignor, version=1, member_id="bbbb-" + g)
            m1.join()
            m2.join()
            converge([m1, m2], 6)
            d = c.cg_describe([g])[g]
            assert d["assignor"] == assignor
            if assignor == "range":
                # per topic, contiguous ranges in member id order: 2 + 2 and 1 + 1
                assert m1.parts() == {(ids[a], 0), (ids[a], 1), (ids[b], 0), (ids[b], 1)}
                assert m2.parts() == {(ids[a], 2), (ids[b], 2)}
            else:
                assert len(m1.parts()) == len(m2.parts()) == 3


@pytest.mark.timeout(60)
def test_regex_subscription(cluster):
    tag = uuid.uuid4().hex[:6]
    t1 = new_topic(cluster, 2, prefix="rx%s-a" % tag)
    t2 = new_topic(cluster, 1, prefix="rx%s-b" % tag)
    other = new_topic(cluster, 1, prefix="norx%s" % tag)
    ids = topic_ids(cluster, [t1, t2, other])
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        m = Member(c, g, regex="rx%s-.*" % tag, version=1)
        m.join()
        converge([m], 3)
        assert m.parts() == {(ids[t1], 0), (ids[t1], 1), (ids[t2], 0)}
        d = c.cg_describe([g])[g]
        assert d["members"][0]["regex"] == "rx%s-.*" % tag
        # a topic created later that matches joins the subscription (a new group epoch)
        t3 = new_topic(cluster, 2, prefix="rx%s-c" % tag)
        converge([m], 5)
        assert (topic_ids(cluster, [t3])[t3], 1) in m.parts()
        # an invalid regex
        for bad in ("(", "", "(a)\\1", "x" * 5000):
            r = c.cg_heartbeat(g, uuid.uuid4().hex, 0, rebalance_ms=5000, regex=bad, owned={},
                               version=1)
            assert r["error"] == kwire.INVALID_REGULAR_EXPRESSION, kwire.ename(r["error"])


@pytest.mark.timeout(60)
def test_static_membership(cluster):
    t = new_topic(cluster, 4)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        s = Member(c, g, [t], instance_id="inst-1")
        other = Member(c, g, [t])
        s.join()
        other.join()
        converge([s, other], 4)
        mine = s.parts()
        # the instance id is taken while its member is active
        r = c.cg_heartbeat(g, "", 0, instance_id="inst-1", rebalance_ms=5000, topics=[t], owned={})
        assert r["error"] == kwire.UNRELEASED_INSTANCE_ID, kwire.ename(r["error"])
        epoch_before = c.cg_describe([g])[g]["epoch"]
        r = s.leave(static=True)
        assert r["error"] == 0 and r["epoch"] == -2, r
        # a new member with the same instance id takes over: same partitions, no new epoch
        s2 = Member(c, g, [t], instance_id="inst-1")
        s2.join()
        assert s2.member_id != s.member_id
        converge([s2, other], 4)
        assert s2.parts() == mine
        d = c.cg_describe([g])[g]
        assert d["epoch"] == epoch_before
        assert {m["instance_id"] for m in d["members"]} == {"inst-1", None}
        # a static member that left for now may also come back with its own member id
        assert s2.leave(static=True)["epoch"] == -2
        s2.join()
        assert s2.epoch == d["epoch"] and s2.parts() == mine
        # epoch -2 needs an instance id
        r = c.cg_heartbeat(g, other.member_id, -2)
        assert r["error"] == kwire.INVALID_REQUEST, kwire.ename(r["error"])


# -------------------------------------------------------------------------------- bad input
@pytest.mark.timeout(60)
def test_bad_input_gets_kafka_errors(cluster):
    t = new_topic(cluster, 2)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        def hb(**kw):
            kw.setdefault("owned", {})
            return c.cg_heartbeat(g, **kw)

        cases = [
            (dict(member_id="", epoch=0, rebalance_ms=5000, topics=[t], assignor="sticky"),
             kwire.UNSUPPORTED_ASSIGNOR),
            (dict(member_id="", epoch=0, topics=[t]), kwire.INVALID_REQUEST),  # no rebalance timeout
            (dict(member_id="", epoch=0, rebalance_ms=5000), kwire.INVALID_REQUEST),  # no subscription
            (dict(member_id="", epoch=0, rebalance_ms=5000, topics=[t], owned=None),
             kwire.INVALID_REQUEST),  # TopicPartitions must be sent (empty) when joining
            (dict(member_id="", epoch=-3), kwire.INVALID_REQUEST),
            (dict(member_id="", epoch=-(2 ** 31)), kwire.INVALID_REQUEST),
            (dict(member_id="", epoch=5), kwire.INVALID_REQUEST),  # MemberId can't be empty
            (dict(member_id="nobody", epoch=5), kwire.GROUP_ID_NOT_FOUND),  # no such group yet
            (dict(member_id="", epoch=0, rebalance_ms=-7, topics=[t]), kwire.INVALID_REQUEST),
            (dict(member_id="", epoch=0, rebalance_ms=5000, topics=[t], instance_id=""),
             kwire.INVALID_REQUEST),
            (dict(member_id="", epoch=0, rebalance_ms=5000, topics=[t], rack_id=""),
             kwire.INVALID_REQUEST),
            (dict(member_id="", epoch=0, rebalance_ms=5000, topics=[t], version=1),
             kwire.INVALID_REQUEST),  # v1: the client makes its member id
        ]
        for kw, want in cases:
            r = hb(**kw)
            assert r["error"] == want, "%r: %s %s" % (kw, kwire.ename(r["error"]), r["message"])
            assert r["assignment"] is None
        m = Member(c, g, [t], rebalance_ms=2 ** 31 - 1)
        m.join()
        converge([m], 2)
        for bad in (m.epoch + 1, 2 ** 31 - 1):
            r = hb(member_id=m.member_id, epoch=bad)
            assert r["error"] == kwire.FENCED_MEMBER_EPOCH, kwire.ename(r["error"])
        r = hb(member_id="someone-else", epoch=m.epoch)
        assert r["error"] == kwire.UNKNOWN_MEMBER_ID, kwire.ename(r["error"])
        # owned partitions that do not exist (negative, huge, unknown topic) change nothing
        r = c.cg_heartbeat(g, m.member_id, m.epoch,
                           owned={b"\xff" * 16: [0], topic_ids(cluster, [t])[t]: [-1, 2 ** 31 - 1]})
        assert r["error"] == 0 and r["epoch"] == m.epoch
        # group.consumer.max.size=5
        more = [Member(c, g, [t]) for _ in range(4)]
        for x in more:
            x.join()
        r = hb(member_id="", epoch=0, rebalance_ms=5000, topics=[t])
        assert r["error"] == kwire.GROUP_MAX_SIZE_REACHED, kwire.ename(r["error"])
        for x in more:
            assert x.leave()["error"] == 0
        # ConsumerGroupDescribe of an unknown group that this same broker coordinates (another
        # broker answers NOT_COORDINATOR, as Kafka does)
        home = gu.coordinator_of(cluster.bootstrap, g)[0]
        # (the counter last: in front, it moves the Java hash in strides that can miss a broker)
        unknown = next(u for u in ("%s-no-such-%d" % (g, i) for i in range(200))
                       if gu.coordinator_of(cluster.bootstrap, u)[0] == home)
        d = c.cg_describe([unknown])[unknown]
        assert d["error"] == kwire.GROUP_ID_NOT_FOUND, kwire.ename(d["error"])
        elsewhere = next(u for u in ("elsewhere-%d-%s" % (i, g) for i in range(200))
                         if gu.coordinator_of(cluster.bootstrap, u)[0] != home)
        d = c.cg_describe([elsewhere])[elsewhere]
        assert d["error"] == kwire.NOT_COORDINATOR, kwire.ename(d["error"])
    # a request to the wrong broker; an empty group id
    with gu.non_coordinator(cluster.bootstrap, g) as c:
        r = c.cg_heartbeat(g, m.member_id, m.epoch, owned={})
        assert r["error"] == kwire.NOT_COORDINATOR, kwire.ename(r["error"])
        r = c.cg_heartbeat("", "", 0, rebalance_ms=5000, topics=[t], owned={})
        assert r["error"] == kwire.INVALID_GROUP_ID, kwire.ename(r["error"])
    # a truncated body closes the connection (as for any undecodable request); the broker lives
    with gu.coordinator(cluster.bootstrap, g) as c:
        body = kwire.consumer_group_heartbeat_body(g, "", 0, None, None, 5000, [t], None, None, {})
        c.send(kwire.request(kwire.CONSUMER_GROUP_HEARTBEAT, 0, c.next_corr(), body[:7],
                             flexible=True))
        closed, _ = c.wait_closed(5)
        assert closed
        # an array count far beyond the frame
        evil = kwire.compact_string(g) + kwire.compact_string("") + kwire.i32(0) + b"\x00\x00" \
            + kwire.i32(5000) + kwire.uvarint(2 ** 31) + b"\x00" * 8
        with gu.coordinator(cluster.bootstrap, g) as c2:
            c2.send(kwire.request(kwire.CONSUMER_GROUP_HEARTBEAT, 0, c2.next_corr(), evil,
                                  flexible=True))
            closed, _ = c2.wait_closed(5)
            assert closed
    cluster.assert_alive("after bad ConsumerGroupHeartbeat input")
    with gu.coordinator(cluster.bootstrap, g) as c:
        m.c = c
        m.beat()  # the group is still served


# --------------------------------------------------------------------------------- offsets
@pytest.mark.timeout(60)
def test_offsets_with_member_epoch_and_group_listings(cluster):
    t = new_topic(cluster, 2)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        m = Member(c, g, [t])
        m.join()
        converge([m], 2)
        errs = c.commit_v9(g, {(t, 0): 42, (t, 1): 7}, member_epoch=m.epoch, member_id=m.member_id)
        assert set(errs.values()) == {0}, errs
        errs = c.commit_v9(g, {(t, 0): 43}, member_epoch=m.epoch + 1, member_id=m.member_id)
        assert errs[(t, 0)] == kwire.STALE_MEMBER_EPOCH, kwire.ename(errs[(t, 0)])
        errs = c.commit(g, {(t, 0): 43}, generation=m.epoch, member_id=m.member_id)  # v7
        assert errs[(t, 0)] == kwire.UNSUPPORTED_VERSION, kwire.ename(errs[(t, 0)])
        errs = c.commit_v9(g, {(t, 0): 43}, member_epoch=m.epoch, member_id="stranger")
        assert errs[(t, 0)] == kwire.UNKNOWN_MEMBER_ID
        errs = c.commit_v9(g, {(t, 0): 43})  # no member id, epoch -1: only for an empty group
        assert errs[(t, 0)] == kwire.UNKNOWN_MEMBER_ID
        err, offs = c.fetch_offsets(g, {t: [0, 1]})
        assert err == 0 and offs[(t, 0)][0] == 42 and offs[(t, 1)][0] == 7
        # ListGroups v5 with the types filter, DescribeGroups
        err, groups = c.list_groups_v5(types=["consumer"])
        assert err == 0 and groups[g] == ("consumer", "Stable", "consumer"), groups.get(g)
        err, groups = c.list_groups_v5(types=["classic"])
        assert g not in groups
        err, groups = c.list_groups_v5(states=["stable"], types=["Consumer"])
        assert g in groups
        d = c.describe([g])[g]
        assert d["error"] == 0 and d["protocol_type"] == "consumer" and d["state"] == "Stable"
        assert [x["member_id"] for x in d["members"]] == [m.member_id]
        assert kwire.parse_assignment(d["members"][0]["assignment"]) == {t: [0, 1]}
        # OffsetDelete refuses a topic the group subscribes to; DeleteGroups a non-empty group
        err, perr = c.offset_delete(g, {t: [0]})
        assert err == 0 and perr[(t, 0)] == kwire.GROUP_SUBSCRIBED_TO_TOPIC, perr
        assert c.delete_groups([g]) == {g: kwire.NON_EMPTY_GROUP}
        # the admin API shows the type
        from test_tenants import http
        st, body = http(cluster, "GET", "/v1/groups/" + g)
        assert st == 200 and body["group"]["type"] == "consumer", body
        assert body["group"]["protocol"] == "uniform" and len(body["group"]["members"]) == 1
        # once empty, a plain commit works again and the group can be deleted
        assert m.leave()["error"] == 0
        errs = c.commit_v9(g, {(t, 0): 50})
        assert errs[(t, 0)] == 0
        assert c.delete_groups([g]) == {g: 0}


# ----------------------------------------------------------------------- classic interplay
@pytest.mark.timeout(90)
def test_classic_member_in_a_consumer_group_and_empty_conversions(cluster):
    t = new_topic(cluster, 4)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        # an empty classic group becomes a consumer group
        j = c.join(g, topics=[t], version=3)
        assert j["error"] == 0, kwire.ename(j["error"])
        err, _ = c.sync(g, j["generation"], j["member_id"],
                        assignments={j["member_id"]: kwire.assignment({t: [0, 1, 2, 3]})})
        assert err == 0, kwire.ename(err)
        err, res = c.leave(g, [(j["member_id"], None)])
        assert err == 0 and res[0][2] == 0
        m = Member(c, g, [t])
        m.join()
        converge([m], 4)
        # JoinGroup v4+: MEMBER_ID_REQUIRED first, as for a classic group
        j5 = c.join(g, topics=[t], version=5)
        assert j5["error"] == kwire.MEMBER_ID_REQUIRED and j5["member_id"], j5
        j5 = c.join(g, member_id=j5["member_id"], topics=[t], version=5)
        assert j5["error"] == 0, kwire.ename(j5["error"])
        err, res = c.leave(g, [(j5["member_id"], None)])
        assert err == 0 and res[0][2] == 0, res
        # a classic member joins the non-empty consumer group (Kafka 4.0)
        j = c.join(g, topics=[t], version=3)
        assert j["error"] == 0, kwire.ename(j["error"])
        assert j["leader"] == "" and j["generation"] >= 1
        cm = j["member_id"]
        deadline = time.monotonic() + 20
        classic_parts = set()
        while time.monotonic() < deadline:
            m.beat()
            hb = c.heartbeat(g, j["generation"], cm)
            if hb == kwire.REBALANCE_IN_PROGRESS:
                j = c.join(g, member_id=cm, topics=[t], version=3)
                assert j["error"] == 0, kwire.ename(j["error"])
                continue
            assert hb == 0, kwire.ename(hb)
            err, asg = c.sync(g, j["generation"], cm)
            assert err == 0, kwire.ename(err)
            classic_parts = set(kwire.parse_assignment(asg).get(t, []))
            mine = {p for _, p in m.parts()}
            assert not (classic_parts & mine), (classic_parts, mine)
            if len(classic_parts) == 2 and len(mine) == 2:
                break
            time.sleep(0.05)
        assert len(classic_parts) == 2, classic_parts
        d = c.cg_describe([g])[g]
        assert len(d["members"]) == 2
        # the consumer member leaves: only a classic member is left, the group is classic again
        assert m.leave()["error"] == 0
        d = c.describe([g])[g]
        assert d["protocol_type"] == "consumer"
        assert d["state"] in ("PreparingRebalance", "CompletingRebalance", "Stable"), d["state"]
        assert c.cg_describe([g])[g]["error"] == kwire.GROUP_ID_NOT_FOUND
        j = c.join(g, member_id=cm, topics=[t], version=3)
        assert j["error"] == 0 and j["leader"] == cm, j
    assert "downgraded to a classic group" in cluster.stderr_text()


@pytest.mark.timeout(90)
def test_online_upgrade_of_a_classic_group(cluster):
    t = new_topic(cluster, 4)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        j = c.join(g, topics=[t], version=3)
        assert j["error"] == 0
        cm = j["member_id"]
        err, _ = c.sync(g, j["generation"], cm, assignments={cm: kwire.assignment({t: [0, 1, 2, 3]})})
        assert err == 0, kwire.ename(err)
        # a consumer-protocol member joins the non-empty classic group: it is upgraded
        m = Member(c, g, [t])
        m.join()
        d = c.cg_describe([g])[g]
        assert d["error"] == 0 and len(d["members"]) == 2, d
        # the classic member keeps its partitions until it rejoins; m gets nothing it holds
        assert not m.parts()
        hb = c.heartbeat(g, j["generation"], cm)
        assert hb == kwire.REBALANCE_IN_PROGRESS, kwire.ename(hb)
        # an eager classic client revokes everything and rejoins
        j = c.join(g, member_id=cm, topics=[t], version=3)
        assert j["error"] == 0
        converge([m], 2, check=False)
        err, asg = c.sync(g, j["generation"], cm)
        assert err in (0, kwire.REBALANCE_IN_PROGRESS), kwire.ename(err)
        assert len(m.parts()) == 2


@pytest.mark.timeout(90)
def test_classic_consumer_of_the_same_topic_in_another_group(cluster):
    import confluent_kafka as ck
    t = new_topic(cluster, 3)
    recs = clients.make_records("kip848", 30, 3)
    clients.ck_produce(cluster.bootstrap, t, recs)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        ms = [Member(c, g, [t]) for _ in range(2)]
        for m in ms:
            m.join()
        converge(ms, 3)
        classic_group = "classic-" + g
        consumer = ck.Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": classic_group,
                                "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                "session.timeout.ms": 6000, "logger": clients.RDK_LOG})
        try:
            consumer.subscribe([t])
            got = []
            deadline = time.monotonic() + 40
            while len(got) < 30 and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=100, timeout=0.5):
                    if not msg.error():
                        got.append(msg)
                for m in ms:  # keep the consumer group alive meanwhile
                    m.beat()
            assert len(got) == 30
            consumer.commit(asynchronous=False)
        finally:
            clients.ck_close_bounded(consumer)
        d = c.cg_describe([g])[g]
        assert d["state"] == "Stable" and len(d["members"]) == 2
    offs = gu.committed(cluster.bootstrap, classic_group, t, 3)
    assert offs == {0: 10, 1: 10, 2: 10}, offs


# ------------------------------------------------------------------------ tenants and ACLs
@pytest.mark.timeout(120)
def test_tenant_names_and_acls(cluster):
    from kafka.admin import ACLOperation, ACLResourcePatternType, ResourceType
    from test_acls import acl, coordinator, kp_admin, wire_as
    from test_tenants import ck_create, http, new_tenant, sasl
    mk = cluster
    tid = "kip%s" % uuid.uuid4().hex[:6]
    _, admin_key, admin_secret = new_tenant(mk, tid)
    st, k = http(mk, "POST", "/v1/tenants/%s/keys" % tid)
    assert st == 201, k
    admin, app = sasl(admin_key, admin_secret), sasl(k["key"], k["secret"])
    for t in ("events", "secret"):
        ck_create(mk, t, admin, partitions=2)
    a = kp_admin(mk, admin_key, admin_secret)
    try:
        ADMIN, APP = "User:" + admin_key, "User:" + k["key"]
        res = a.create_acls([
            acl(ADMIN, ACLOperation.ALL, ResourceType.CLUSTER, "kafka-cluster"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.TOPIC, "*"),
            acl(ADMIN, ACLOperation.ALL, ResourceType.GROUP, "*"),
            acl(APP, ACLOperation.READ, ResourceType.TOPIC, "events"),
            acl(APP, ACLOperation.READ, ResourceType.GROUP, "app-",
                pattern=ACLResourcePatternType.PREFIXED),
        ])
        assert not res["failed"], res
    finally:
        a.close()
    # a second tenant with a topic of the same name: regexes see only their tenant's topics
    tid2 = tid + "b"
    _, k2, s2 = new_tenant(mk, tid2)
    other = sasl(k2, s2)
    ck_create(mk, "events", other, partitions=3)

    g = "app-" + uuid.uuid4().hex[:6]
    with wire_as(mk, app, coordinator(mk, app, g)) as c:
        m = Member(c, g, ["events"])
        m.join()
        converge([m], 2)
        d = c.cg_describe([g])[g]
        assert d["error"] == 0, d
        assert d["members"][0]["topics"] == ["events"]
        assert d["members"][0]["assignment"] == {"events": [0, 1]}
        # TOPIC DESCRIBE on every subscribed name
        r = c.cg_heartbeat(g + "x", "", 0, rebalance_ms=5000, topics=["secret"], owned={})
        assert r["error"] == kwire.TOPIC_AUTHORIZATION_FAILED, kwire.ename(r["error"])
        # GROUP READ
        r = c.cg_heartbeat("other-" + g, "", 0, rebalance_ms=5000, topics=["events"], owned={})
        assert r["error"] == kwire.GROUP_AUTHORIZATION_FAILED, kwire.ename(r["error"])
        d = c.cg_describe(["other-" + g])["other-" + g]
        assert d["error"] == kwire.GROUP_AUTHORIZATION_FAILED
        err, groups = c.list_groups_v5(types=["consumer"])
        assert err == 0 and g in groups
    with wire_as(mk, other, coordinator(mk, other, g)) as c:
        # the same group name in the other tenant is another group
        assert c.cg_describe([g])[g]["error"] == kwire.GROUP_ID_NOT_FOUND
        m2 = Member(c, g, regex="ev.*", version=1)
        m2.join()
        converge([m2], 3)
        d = c.cg_describe([g])[g]
        assert d["members"][0]["assignment"] == {"events": [0, 1, 2]}
        err, groups = c.list_groups_v5()
        assert list(groups) == [g]


# ---------------------------------------------------------------------- rebalance timeout
@pytest.mark.timeout(60)
def test_member_that_never_revokes_is_fenced_after_its_rebalance_timeout(cluster):
    t = new_topic(cluster, 4)
    g = gid()
    with gu.coordinator(cluster.bootstrap, g) as c:
        stuck = Member(c, g, [t], revoke_delay=10 ** 6, rebalance_ms=1000)
        stuck.join()
        converge([stuck], 4)
        other = Member(c, g, [t])
        other.join()
        stuck.beat()  # told to give up half; it never does
        assert len(stuck.owned_parts()) == 4 and len(stuck.parts()) == 2
        d = c.cg_describe([g])[g]
        assert d["state"] == "Reconciling", d["state"]
        t0 = time.monotonic()
        deadline = t0 + 10
        while len(other.parts()) < 4 and time.monotonic() < deadline:
            assert not (other.parts() & stuck.owned_parts()) or \
                time.monotonic() - t0 >= 0.9, "given away before the owner was fenced"
            other.beat()
            if time.monotonic() - t0 < 0.8:
                stuck.beat()  # heartbeats do not stop the rebalance timeout
            time.sleep(0.05)
        assert len(other.parts()) == 4
        assert time.monotonic() - t0 >= 0.9
        r = c.cg_heartbeat(g, stuck.member_id, stuck.epoch, owned={})
        assert r["error"] == kwire.UNKNOWN_MEMBER_ID, kwire.ename(r["error"])
    assert "did not revoke within its rebalance timeout (1000 ms)" in cluster.stderr_text()


@pytest.mark.timeout(60)
def test_migration_policy_disabled(minikora):
    mk = minikora("--set", "group.consumer.migration.policy=disabled")
    t = "mig-%s" % uuid.uuid4().hex[:6]
    clients.create_topic_ok(mk.bootstrap, t, 2)
    g = gid()
    with gu.coordinator(mk.bootstrap, g) as c:
        j = c.join(g, topics=[t], version=3)
        assert j["error"] == 0
        # no online upgrade: a consumer member cannot join the non-empty classic group
        r = c.cg_heartbeat(g, "", 0, rebalance_ms=5000, topics=[t], owned={})
        assert r["error"] == kwire.GROUP_ID_NOT_FOUND, kwire.ename(r["error"])
        assert "not a consumer group" in r["message"]
        err, res = c.leave(g, [(j["member_id"], None)])
        assert err == 0
        # empty groups still change type
        m = Member(c, g, [t])
        m.join()
        converge([m], 2)
        # a classic member still joins a non-empty consumer group (not a conversion)
        j = c.join(g, topics=[t], version=3)
        assert j["error"] == 0, kwire.ename(j["error"])
        # no downgrade when the consumer member leaves: the group stays a consumer group
        assert m.leave()["error"] == 0
        d = c.cg_describe([g])[g]
        assert d["error"] == 0 and [x["member_id"] for x in d["members"]] == [j["member_id"]]
