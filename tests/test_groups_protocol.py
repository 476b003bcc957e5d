"""Group coordinator over the raw protocol (kwire.Conn's group APIs): the error paths of
issue 3 (unknown group, wrong generation, oversize metadata, a member that never sends
SyncGroup, a request to the wrong broker, MEMBER_ID_REQUIRED, NON_EMPTY_GROUP) and the state
machine details real clients rely on (static membership, session expiry, protocol selection,
batched LeaveGroup, ListGroups filters, multi-group OffsetFetch, OffsetDelete).

Expected answers are Apache Kafka's (GroupCoordinator.scala, 3.x).
"""

import time
import uuid

import pytest

import clients
import groups_util as gu
import kwire


PARTS = 4


@pytest.fixture(scope="module")
def topic(module_cluster):
    name = "groups-raw-%s" % uuid.uuid4().hex[:8]
    clients.create_topic_ok(module_cluster.bootstrap, name, PARTS)
    return name


@pytest.fixture
def gid(request):
    return "raw-%s-%s" % (request.node.name[:40], uuid.uuid4().hex[:8])


@pytest.fixture
def coord(cluster, gid):
    c = gu.coordinator(cluster.bootstrap, gid)
    yield c
    c.close()


# ------------------------------------------------------------------------------ coordinators
@pytest.mark.timeout(30)
def test_find_coordinator_same_answer_everywhere(cluster):
    groups = ["fc-%d" % i for i in range(40)]
    answers = []
    for idx in range(len(cluster.brokers)):
        with gu.wire(cluster.bootstrap, idx) as c:
            v2 = {}
            for g in groups:
                err, node, host, port = c.find_coordinator(g)
                assert err == kwire.NONE, kwire.ename(err)
                v2[g] = (node, host, port)
            v4 = c.find_coordinators_v4(groups)
            assert {k: (n, h, p) for k, e, n, h, p in v4} == v2 and all(e == 0 for _, e, *_ in v4)
            answers.append(v2)
    assert all(a == answers[0] for a in answers), "brokers disagree on coordinators"
    nodes = {n for n, _, _ in answers[0].values()}
    assert len(nodes) > 1, "40 groups all coordinated by one broker: %r" % nodes
    ports = {p for _, p in cluster.brokers}
    assert all(p in ports for _, _, p in answers[0].values())


@pytest.mark.timeout(30)
def test_requests_to_the_wrong_broker_get_not_coordinator(cluster, topic, gid):
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS)
    try:
        with gu.non_coordinator(cluster.bootstrap, gid) as w:
            r = w.join(gid, "", topics=[topic], version=5)
            assert r["error"] == kwire.NOT_COORDINATOR, kwire.ename(r["error"])
            assert w.sync(gid, g.gen, g.ids[0])[0] == kwire.NOT_COORDINATOR
            assert w.heartbeat(gid, g.gen, g.ids[0]) == kwire.NOT_COORDINATOR
            assert w.leave(gid, [(g.ids[0], None)])[0] == kwire.NOT_COORDINATOR
            assert set(w.commit(gid, {(topic, 0): 1}, g.gen, g.ids[0]).values()) == {
                kwire.NOT_COORDINATOR}
            assert w.fetch_offsets(gid, {topic: [0]})[0] == kwire.NOT_COORDINATOR
            assert w.fetch_offsets_v8({gid: None})[gid][0] == kwire.NOT_COORDINATOR
            assert w.describe([gid])[gid]["error"] == kwire.NOT_COORDINATOR
            assert w.delete_groups([gid])[gid] == kwire.NOT_COORDINATOR
            assert w.offset_delete(gid, {topic: [0]})[0] == kwire.NOT_COORDINATOR
            assert gid not in w.list_groups()[1], "ListGroups lists a group it does not coordinate"
        # nothing happened to the group
        assert g.heartbeat(0) == kwire.NONE
        assert g.conns[0].describe([gid])[gid]["state"] == "Stable"
        assert gid in g.conns[0].list_groups()[1]
    finally:
        g.close()


# ----------------------------------------------------------------------------- unknown group
@pytest.mark.timeout(30)
def test_unknown_group(coord, gid, topic):
    assert coord.heartbeat(gid, 1, "nobody") == kwire.UNKNOWN_MEMBER_ID
    assert coord.heartbeat(gid, 1, "nobody", version=0) == kwire.UNKNOWN_MEMBER_ID
    assert coord.sync(gid, 1, "nobody")[0] == kwire.UNKNOWN_MEMBER_ID
    d = coord.describe([gid])[gid]
    assert (d["error"], d["state"], d["members"]) == (kwire.NONE, "Dead", []), d
    assert coord.delete_groups([gid]) == {gid: kwire.GROUP_ID_NOT_FOUND}
    err, offs = coord.fetch_offsets(gid, {topic: [0, 1]})
    assert err == kwire.NONE and all(o[0] == -1 and o[3] == 0 for o in offs.values()), offs
    assert coord.offset_delete(gid, {topic: [0]})[0] == kwire.GROUP_ID_NOT_FOUND
    err, members = coord.leave(gid, [("nobody", None)])
    assert (err, [e for _, _, e in members]) == (kwire.NONE, [kwire.UNKNOWN_MEMBER_ID]), \
        (err, members)
    # none of that created the group
    assert coord.describe([gid])[gid]["state"] == "Dead"
    assert gid not in coord.list_groups()[1]


@pytest.mark.timeout(30)
def test_join_with_member_id_to_unknown_group_creates_nothing(coord, gid, topic):
    """Kafka: "only try to create the group if the group is UNKNOWN AND the member id is
    UNKNOWN" (GroupCoordinator.handleJoinGroup)."""
    r = coord.join(gid, "nobody-1234", topics=[topic])
    assert r["error"] == kwire.UNKNOWN_MEMBER_ID, kwire.ename(r["error"])
    d = coord.describe([gid])[gid]
    assert d["state"] == "Dead", "JoinGroup(member_id=nobody-1234) left a group behind: %r" % d
    assert gid not in coord.list_groups()[1]
    assert coord.delete_groups([gid]) == {gid: kwire.GROUP_ID_NOT_FOUND}


# ------------------------------------------------------------------------------ join basics
@pytest.mark.timeout(30)
def test_join_v4_without_member_id_gets_member_id_required(coord, gid, topic):
    r = coord.join(gid, "", topics=[topic], version=4)
    assert r["error"] == kwire.MEMBER_ID_REQUIRED and r["member_id"], r
    assigned = r["member_id"]
    assert coord.describe([gid])[gid]["members"] == [], "a pending member is not a member yet"
    r = coord.join(gid, assigned, topics=[topic], version=4)
    assert r["error"] == kwire.NONE, kwire.ename(r["error"])
    assert r["member_id"] == assigned and r["leader"] == assigned and r["generation"] >= 1
    assert [m["member_id"] for m in r["members"]] == [assigned]
    err, a = coord.sync(gid, r["generation"], assigned, {assigned: kwire.assignment({topic: [0]})})
    assert err == kwire.NONE and kwire.parse_assignment(a) == {topic: [0]}
    assert coord.heartbeat(gid, r["generation"], assigned) == kwire.NONE
    # v3 and older have no MEMBER_ID_REQUIRED: a new member is taken at once
    gid3 = gid + "-v3"
    with gu.coordinator(coord_bootstrap(coord), gid3) as c3:
        r3 = c3.join(gid3, "", topics=[topic], version=3)
        assert r3["error"] == kwire.NONE and r3["member_id"], r3


def coord_bootstrap(conn):
    host, port = conn.sock.getpeername()[:2]
    return "%s:%d" % (host, port)


@pytest.mark.timeout(30)
def test_join_bad_session_timeout_and_inconsistent_protocols(coord, gid, topic):
    r = coord.join(gid, "", topics=[topic], session_ms=5999, version=3)
    assert r["error"] == kwire.INVALID_SESSION_TIMEOUT, kwire.ename(r["error"])
    r = coord.join(gid, "", topics=[topic], session_ms=1800001, version=3)
    assert r["error"] == kwire.INVALID_SESSION_TIMEOUT, kwire.ename(r["error"])
    r = coord.join(gid, "", topics=[topic], protocols=[], version=3)
    assert r["error"] == kwire.INCONSISTENT_GROUP_PROTOCOL, kwire.ename(r["error"])
    g = gu.RawGroup(coord_bootstrap(coord), gid, 1, topic, PARTS)
    try:
        with gu.coordinator(coord_bootstrap(coord), gid) as c:
            r = c.join(gid, "", topics=[topic], protocol_type="connect", version=3)
            assert r["error"] == kwire.INCONSISTENT_GROUP_PROTOCOL, kwire.ename(r["error"])
            r = c.join(gid, "", protocols=[("roundrobin", kwire.subscription([topic]))], version=3)
            assert r["error"] == kwire.INCONSISTENT_GROUP_PROTOCOL, kwire.ename(r["error"])
        assert g.heartbeat(0) == kwire.NONE, "rejected joins must not disturb the group"
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_protocol_selection(cluster, gid, topic):
    """The chosen protocol is one every member supports, by the members' preference votes."""
    sub = kwire.subscription([topic])
    with gu.coordinator(cluster.bootstrap, gid) as a, gu.coordinator(cluster.bootstrap, gid) as b:
        ra = a.join(gid, "", protocols=[("range", sub), ("roundrobin", sub)], version=3)
        assert ra["error"] == kwire.NONE and ra["protocol"] == "range", ra
        a.sync(gid, ra["generation"], ra["member_id"], {ra["member_id"]: kwire.assignment({})})
        b.join_send(gid, "", protocols=[("roundrobin", sub), ("sticky", sub)], version=3)
        gu.wait_until(lambda: a.heartbeat(gid, ra["generation"], ra["member_id"])
                      == kwire.REBALANCE_IN_PROGRESS, 10, "a told to rejoin")
        a.join_send(gid, ra["member_id"], protocols=[("range", sub), ("roundrobin", sub)],
                    version=3)
        rb, ra = b.join_recv(), a.join_recv()
        assert rb["error"] == ra["error"] == kwire.NONE, (rb, ra)
        assert rb["protocol"] == ra["protocol"] == "roundrobin", (rb, ra)
        assert rb["generation"] == ra["generation"] == ra["generation"]


# ------------------------------------------------------------------------- generations
@pytest.mark.timeout(30)
def test_wrong_generation(cluster, gid, topic):
    g = gu.RawGroup(cluster.bootstrap, gid, 2, topic, PARTS)
    try:
        gen, mid = g.gen, g.ids[1]
        c = g.conns[1]
        for bad in (gen + 1, gen - 1, -1):
            assert c.heartbeat(gid, bad, mid) == kwire.ILLEGAL_GENERATION, bad
            assert c.sync(gid, bad, mid)[0] == kwire.ILLEGAL_GENERATION, bad
        assert set(c.commit(gid, {(topic, 0): 5, (topic, 1): 6}, gen + 1, mid).values()) == {
            kwire.ILLEGAL_GENERATION}
        assert c.fetch_offsets(gid, {topic: [0, 1]})[1][(topic, 0)][0] == -1, \
            "a rejected commit stored an offset"
        assert set(c.commit(gid, {(topic, 0): 5, (topic, 1): 6}, gen, mid).values()) == {kwire.NONE}
        assert c.fetch_offsets(gid, {topic: [0, 1]})[1][(topic, 1)][0] == 6
        # an unknown member of a live group
        assert c.heartbeat(gid, gen, "ghost") == kwire.UNKNOWN_MEMBER_ID
        assert set(c.commit(gid, {(topic, 0): 7}, gen, "ghost").values()) == \
            {kwire.UNKNOWN_MEMBER_ID}
        assert g.heartbeat(0) == kwire.NONE and g.heartbeat(1) == kwire.NONE
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_simple_commit_to_a_live_group_is_rejected(cluster, gid, topic):
    """generation -1 / member "" (admin or assign()-style commits) only work on an Empty group;
    Kafka answers UNKNOWN_MEMBER_ID when the group has members (validateOffsetCommit)."""
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS)
    try:
        res = g.conns[0].commit(gid, {(topic, 0): 3})
        assert res[(topic, 0)] == kwire.UNKNOWN_MEMBER_ID, kwire.ename(res[(topic, 0)])
    finally:
        g.close()


# ---------------------------------------------------------------------------- metadata size
@pytest.mark.timeout(30)
def test_oversize_offset_metadata(coord, gid, topic):
    ok, big = "m" * 4096, "M" * 4097
    res = coord.commit(gid, {(topic, 0): (10, ok), (topic, 1): (11, big), (topic, 2): (12, None)})
    assert res == {(topic, 0): kwire.NONE, (topic, 1): kwire.OFFSET_METADATA_TOO_LARGE,
                   (topic, 2): kwire.NONE}, {k: kwire.ename(v) for k, v in res.items()}
    err, offs = coord.fetch_offsets(gid, {topic: [0, 1, 2]})
    assert err == kwire.NONE
    assert offs[(topic, 0)][0] == 10 and offs[(topic, 0)][2] == ok
    assert offs[(topic, 1)][0] == -1, "the oversize commit was stored: %r" % (offs[(topic, 1)],)
    assert offs[(topic, 2)][0] == 12 and offs[(topic, 2)][2] in (None, "")
    # a member's commit is checked the same way
    g = gu.RawGroup(coord_bootstrap(coord), gid + "-m", 1, topic, PARTS)
    try:
        res = g.conns[0].commit(g.group, {(topic, 3): (1, big)}, g.gen, g.ids[0])
        assert res == {(topic, 3): kwire.OFFSET_METADATA_TOO_LARGE}, res
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_commit_unknown_topic_or_partition(coord, gid, topic):
    res = coord.commit(gid, {(topic, PARTS): 1, ("no-such-topic-" + gid, 0): 1, (topic, 0): 2})
    assert res == {(topic, PARTS): kwire.UNKNOWN_TOPIC_OR_PARTITION,
                   ("no-such-topic-" + gid, 0): kwire.UNKNOWN_TOPIC_OR_PARTITION,
                   (topic, 0): kwire.NONE}, {k: kwire.ename(v) for k, v in res.items()}


# ------------------------------------------------------------------------------ SyncGroup
@pytest.mark.timeout(30)
def test_leader_never_sends_sync_group(cluster, gid, topic):
    """Both members joined generation N; only the follower syncs.  After the rebalance timeout
    the leader is removed, the follower's pending SyncGroup is answered REBALANCE_IN_PROGRESS,
    and it rejoins alone."""
    rt = 1500
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS, rebalance_ms=rt)
    try:
        b = gu.coordinator(cluster.bootstrap, gid)
        g.conns.append(b)
        bid = g.new_member_id(b, None)
        b.join_send(gid, bid, topics=[topic], rebalance_ms=rt)
        gu.wait_until(lambda: g.heartbeat(0) == kwire.REBALANCE_IN_PROGRESS, 10, "a told to rejoin")
        g.conns[0].join_send(gid, g.ids[0], topics=[topic], rebalance_ms=rt)
        rb, ra = b.join_recv(), g.conns[0].join_recv()
        assert rb["error"] == ra["error"] == kwire.NONE and ra["leader"] == g.ids[0], (ra, rb)
        gen = rb["generation"]
        t0 = time.monotonic()
        b.sync_send(gid, gen, rb["member_id"])
        err, _ = b.sync_recv(timeout=rt / 1000.0 + 5)
        waited = time.monotonic() - t0
        assert err == kwire.REBALANCE_IN_PROGRESS, kwire.ename(err)
        assert rt / 1000.0 - 0.2 <= waited <= rt / 1000.0 + 2.5, waited
        assert g.heartbeat(0, gen) == kwire.UNKNOWN_MEMBER_ID, "the silent leader was not removed"
        r = b.join(gid, rb["member_id"], topics=[topic], rebalance_ms=rt)
        assert r["error"] == kwire.NONE and r["leader"] == rb["member_id"] and r["generation"] > gen
        assert [m["member_id"] for m in r["members"]] == [rb["member_id"]]
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_follower_never_sends_sync_group(cluster, gid, topic):
    """The leader syncs (the group is Stable), the follower heartbeats but never sends
    SyncGroup.  Kafka (pendingSyncMembers, onExpirePendingSync) removes it after the rebalance
    timeout and rebalances the others; heartbeats do not save it."""
    rt = 1500
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS, rebalance_ms=rt)
    try:
        b = gu.coordinator(cluster.bootstrap, gid)
        g.conns.append(b)
        bid = g.new_member_id(b, None)
        b.join_send(gid, bid, topics=[topic], rebalance_ms=rt)
        gu.wait_until(lambda: g.heartbeat(0) == kwire.REBALANCE_IN_PROGRESS, 10, "a told to rejoin")
        g.conns[0].join_send(gid, g.ids[0], topics=[topic], rebalance_ms=rt)
        rb, ra = b.join_recv(), g.conns[0].join_recv()
        gen = ra["generation"]
        err, _ = g.conns[0].sync(gid, gen, g.ids[0], {
            g.ids[0]: kwire.assignment({topic: [0, 1]}), bid: kwire.assignment({topic: [2, 3]})})
        assert err == kwire.NONE
        deadline = time.monotonic() + rt / 1000.0 + 4
        seen = []
        while time.monotonic() < deadline:
            eb = b.heartbeat(gid, gen, bid)
            ea = g.conns[0].heartbeat(gid, gen, g.ids[0])
            seen.append((kwire.ename(ea), kwire.ename(eb)))
            if eb == kwire.UNKNOWN_MEMBER_ID:
                break
            time.sleep(0.3)  # a heartbeat interval; bounded by the deadline
        assert seen[-1][1] == kwire.ename(kwire.UNKNOWN_MEMBER_ID), \
            "member that never synced still in the group %.1f s after its %d ms rebalance " \
            "timeout; heartbeats (leader, follower): %r" % (rt / 1000.0 + 4, rt, seen[-5:])
        assert seen[-1][0] == kwire.ename(kwire.REBALANCE_IN_PROGRESS), seen[-3:]
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_heartbeat_while_completing_rebalance_is_ok(cluster, gid, topic):
    """After its JoinGroup answer and before the leader's SyncGroup, a member may heartbeat;
    Kafka answers NONE in CompletingRebalance (only PreparingRebalance gets
    REBALANCE_IN_PROGRESS)."""
    with gu.coordinator(cluster.bootstrap, gid) as a:
        r = a.join(gid, "", topics=[topic], version=3)
        assert r["error"] == kwire.NONE
        assert gu.describe(cluster.bootstrap, gid)["state"] == "CompletingRebalance"
        err = a.heartbeat(gid, r["generation"], r["member_id"])
        assert err == kwire.NONE, "heartbeat in CompletingRebalance: %s" % kwire.ename(err)


# ---------------------------------------------------------------------------- sessions
@pytest.mark.timeout(40)
def test_silent_member_expires_after_session_timeout(cluster, gid, topic):
    g = gu.RawGroup(cluster.bootstrap, gid, 2, topic, PARTS)
    try:
        t0 = time.monotonic()
        err = gu.wait_until(lambda: (lambda e: e if e != kwire.NONE else None)(g.heartbeat(0)),
                            gu.SESSION_MS / 1000.0 + 3, "the leader told to rebalance",
                            interval=0.3)
        waited = time.monotonic() - t0
        assert err == kwire.REBALANCE_IN_PROGRESS, kwire.ename(err)
        assert gu.SESSION_MS / 1000.0 - 0.5 <= waited, "expired after only %.1f s" % waited
        r = g.conns[0].join(gid, g.ids[0], topics=[topic])
        assert r["error"] == kwire.NONE and r["generation"] == g.gen + 1
        assert [m["member_id"] for m in r["members"]] == [g.ids[0]]
        assert g.conns[1].heartbeat(gid, g.gen, g.ids[1]) == kwire.UNKNOWN_MEMBER_ID
    finally:
        g.close()


# --------------------------------------------------------------------- static membership
@pytest.mark.timeout(30)
def test_static_member_rejoin_keeps_generation(cluster, gid, topic):
    iids = [gid + "-a", gid + "-b", gid + "-c"]
    g = gu.RawGroup(cluster.bootstrap, gid, 3, topic, PARTS, instance_ids=iids)
    try:
        gen, old_b = g.gen, g.ids[1]
        # "b" restarts: a new connection joins with no member id and the same instance id
        with gu.coordinator(cluster.bootstrap, gid) as nb:
            r = nb.join(gid, "", topics=[topic], instance_id=iids[1], timeout=5)
            assert r["error"] == kwire.NONE, kwire.ename(r["error"])
            assert r["generation"] == gen and r["member_id"] != old_b, r
            assert r["members"] == [] and r["leader"] == g.leader, r
            err, a = nb.sync(gid, gen, r["member_id"], instance_id=iids[1])
            assert err == kwire.NONE and kwire.parse_assignment(a) == g.assignments[1]
            # no rebalance for the others
            assert g.heartbeat(0) == kwire.NONE and g.heartbeat(2) == kwire.NONE
            d = nb.describe([gid])[gid]
            assert d["state"] == "Stable" and len(d["members"]) == 3
            # the leader restarts too: still no new generation, assignments kept
            r = g.conns[0].join(gid, "", topics=[topic], instance_id=iids[0], timeout=5)
            assert r["error"] == kwire.NONE and r["generation"] == gen, r
            err, a = g.conns[0].sync(gid, gen, r["member_id"], instance_id=iids[0])
            assert err == kwire.NONE and kwire.parse_assignment(a) == g.assignments[0]
            assert g.heartbeat(2) == kwire.NONE
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_static_member_old_incarnation_is_fenced(cluster, gid, topic):
    """After a static member rejoined under a new member id, requests from the old
    incarnation (old member id + the instance id) get FENCED_INSTANCE_ID (fatal for clients),
    as in Kafka's validateCurrentMember / isStaticMemberFenced.  UNKNOWN_MEMBER_ID instead
    makes the zombie rejoin and fence the new incarnation in turn: two processes with one
    group.instance.id then take the member from each other forever."""
    iid = gid + "-b"
    g = gu.RawGroup(cluster.bootstrap, gid, 2, topic, PARTS, instance_ids=[gid + "-a", iid])
    try:
        gen, old = g.gen, g.ids[1]
        with gu.coordinator(cluster.bootstrap, gid) as nb:
            r = nb.join(gid, "", topics=[topic], instance_id=iid, timeout=5)
            assert r["error"] == kwire.NONE and r["generation"] == gen, r
            c = g.conns[1]
            got = {
                "Heartbeat": c.heartbeat(gid, gen, old, iid),
                "JoinGroup": c.join(gid, old, topics=[topic], instance_id=iid, timeout=5)["error"],
                "SyncGroup": c.sync(gid, gen, old, instance_id=iid)[0],
                "OffsetCommit": c.commit(gid, {(topic, 0): 1}, gen, old, iid)[(topic, 0)],
                "LeaveGroup": c.leave(gid, [(old, iid)])[1][0][2],
            }
            bad = {k: kwire.ename(v) for k, v in got.items() if v != kwire.FENCED_INSTANCE_ID}
            assert not bad, "old incarnation not fenced (expected FENCED_INSTANCE_ID): %r" % bad
            assert nb.heartbeat(gid, gen, r["member_id"], iid) == kwire.NONE
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_static_member_requests_without_instance_id(cluster, gid, topic):
    """Kafka checks the instance id only when a request carries one (validateCurrentMember):
    a static member's Heartbeat v0-v2, SyncGroup v0-v2, OffsetCommit v0-v6 and any request with
    a null instance id are accepted.  kafkajs (OffsetCommit v5) depends on it."""
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS, instance_ids=[gid + "-i"])
    try:
        c, mid, gen = g.conns[0], g.ids[0], g.gen
        res = {
            "Heartbeat v2": c.heartbeat(gid, gen, mid, version=2),
            "Heartbeat v3 null": c.heartbeat(gid, gen, mid, None),
            "OffsetCommit v5": c.commit(gid, {(topic, 0): 1}, gen, mid, version=5)[(topic, 0)],
            "OffsetCommit v7 null": c.commit(gid, {(topic, 0): 2}, gen, mid, None)[(topic, 0)],
            "SyncGroup v2": c.sync(gid, gen, mid, version=2)[0],
        }
        bad = {k: kwire.ename(v) for k, v in res.items() if v != kwire.NONE}
        assert not bad, "static member's requests without an instance id rejected: %r" % bad
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_static_member_wrong_instance_id_is_fenced(cluster, gid, topic):
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS, instance_ids=[gid + "-i"])
    try:
        assert g.conns[0].heartbeat(gid, g.gen, g.ids[0], gid + "-other") == \
            kwire.FENCED_INSTANCE_ID
        r = g.conns[0].join(gid, g.ids[0], topics=[topic], instance_id=gid + "-other")
        assert r["error"] == kwire.FENCED_INSTANCE_ID, kwire.ename(r["error"])
        assert g.heartbeat(0) == kwire.NONE
    finally:
        g.close()


# -------------------------------------------------------------------------- leave / delete
@pytest.mark.timeout(30)
def test_leave_group_batched_and_delete(cluster, gid, topic):
    iids = [None, gid + "-s"]
    g = gu.RawGroup(cluster.bootstrap, gid, 2, topic, PARTS, instance_ids=iids)
    try:
        c = g.conns[0]
        assert set(c.commit(gid, {(topic, 0): 4}, g.gen, g.ids[0]).values()) == {kwire.NONE}
        assert c.delete_groups([gid]) == {gid: kwire.NON_EMPTY_GROUP}
        err, members = c.leave(gid, [(g.ids[0], None), ("", iids[1]), ("ghost", None)])
        assert err == kwire.NONE
        assert [e for _, _, e in members] == [kwire.NONE, kwire.NONE, kwire.UNKNOWN_MEMBER_ID], \
            members
        d = c.describe([gid])[gid]
        assert d["state"] == "Empty" and d["members"] == [], d
        assert c.fetch_offsets(gid, {topic: [0]})[1][(topic, 0)][0] == 4, "offsets kept on leave"
        assert c.delete_groups([gid]) == {gid: kwire.NONE}
        assert c.describe([gid])[gid]["state"] == "Dead"
        assert c.fetch_offsets(gid, {topic: [0]})[1][(topic, 0)][0] == -1
        assert c.delete_groups([gid]) == {gid: kwire.GROUP_ID_NOT_FOUND}
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_leave_v1_single_member_rebalances_the_rest(cluster, gid, topic):
    g = gu.RawGroup(cluster.bootstrap, gid, 2, topic, PARTS, version=3)
    try:
        assert g.conns[1].leave_v1(gid, g.ids[1]) == kwire.NONE
        assert g.heartbeat(0) == kwire.REBALANCE_IN_PROGRESS
        r = g.conns[0].join(gid, g.ids[0], topics=[topic], version=3)
        assert r["error"] == kwire.NONE and r["generation"] == g.gen + 1 and len(r["members"]) == 1
        assert g.conns[1].leave_v1(gid, g.ids[1]) == kwire.UNKNOWN_MEMBER_ID
    finally:
        g.close()


# ------------------------------------------------------------------ list / fetch / delete
@pytest.mark.timeout(30)
def test_list_groups_state_filter_and_multi_group_offset_fetch(cluster, gid, topic):
    stable, empty = gid + "-stable", gid + "-empty"
    g = gu.RawGroup(cluster.bootstrap, stable, 1, topic, PARTS)
    try:
        with gu.coordinator(cluster.bootstrap, empty) as c:
            assert set(c.commit(empty, {(topic, 1): 9}).values()) == {kwire.NONE}
        found = {}
        for idx in range(len(cluster.brokers)):
            with gu.wire(cluster.bootstrap, idx) as w:
                err, all_ = w.list_groups()
                assert err == kwire.NONE
                for name in (stable, empty):
                    if name in all_:
                        assert name not in found, "%s listed by two brokers" % name
                        found[name] = (idx, all_[name][0])
                err, st = w.list_groups(["Stable"])
                assert err == kwire.NONE and empty not in st
                if stable in st:
                    assert st[stable] == ("consumer", "Stable"), st[stable]
                err, em = w.list_groups(["empty"])
                assert err == kwire.NONE and stable not in em
                if empty in em:
                    assert em[empty][1] == "Empty", em[empty]
        assert set(found) == {stable, empty}, found
        assert found[stable][1] == "consumer"
        # OffsetFetch v8: both groups in one request, at a broker that coordinates both or
        # with NOT_COORDINATOR for the other
        same = gu.coordinator_of(cluster.bootstrap, stable) == gu.coordinator_of(
            cluster.bootstrap, empty)
        with gu.coordinator(cluster.bootstrap, empty) as c:
            out = c.fetch_offsets_v8({empty: {topic: [0, 1]}, stable: None})
        assert out[empty][0] == kwire.NONE
        assert out[empty][1][(topic, 1)][0] == 9 and out[empty][1][(topic, 0)][0] == -1
        assert out[stable][0] == (kwire.NONE if same else kwire.NOT_COORDINATOR), out[stable]
    finally:
        g.close()


@pytest.mark.timeout(30)
def test_offset_delete(cluster, gid, topic):
    other = "groups-raw-other-%s" % uuid.uuid4().hex[:8]
    clients.create_topic_ok(cluster.bootstrap, other, 1)
    with gu.coordinator(cluster.bootstrap, gid) as c:
        res = c.commit(gid, {(topic, 0): 5, (topic, 1): 6, (other, 0): 7})
        assert set(res.values()) == {kwire.NONE}
        err, parts = c.offset_delete(gid, {topic: [0], "no-such-topic": [0]})
        assert err == kwire.NONE
        assert parts == {(topic, 0): kwire.NONE,
                         ("no-such-topic", 0): kwire.UNKNOWN_TOPIC_OR_PARTITION}
        offs = c.fetch_offsets(gid, {topic: [0, 1], other: [0]})[1]
        assert [offs[k][0] for k in [(topic, 0), (topic, 1), (other, 0)]] == [-1, 6, 7], offs
    # a live consumer group subscribed to `topic`: its offsets stay, the other topic's go
    g = gu.RawGroup(cluster.bootstrap, gid, 1, topic, PARTS)
    try:
        err, parts = g.conns[0].offset_delete(gid, {topic: [1], other: [0]})
        assert err == kwire.NONE
        assert parts == {(topic, 1): kwire.GROUP_SUBSCRIBED_TO_TOPIC, (other, 0): kwire.NONE}, \
            {k: kwire.ename(v) for k, v in parts.items()}
        offs = g.conns[0].fetch_offsets(gid, {topic: [1], other: [0]})[1]
        assert offs[(topic, 1)][0] == 6 and offs[(other, 0)][0] == -1
    finally:
        g.close()


# ------------------------------------------------------------------ initial rebalance delay
@pytest.mark.timeout(40)
@pytest.mark.parametrize("delay_ms", [None, 1500])
def test_initial_rebalance_delay(minikora, delay_ms):
    """Default 0 (fixture-friendly): the first member of an empty group is answered at once.
    With group.initial.rebalance.delay.ms set, the first rebalance waits that long."""
    args = [] if delay_ms is None else ["--set", "group.initial.rebalance.delay.ms=%d" % delay_ms]
    mk = minikora(*args)
    topic = "delay-topic"
    clients.create_topic_ok(mk.bootstrap, topic, 1)
    group = "delay-group"
    with gu.coordinator(mk.bootstrap, group) as c:
        t0 = time.monotonic()
        r = c.join(group, "", topics=[topic], version=3, timeout=10)
        took = time.monotonic() - t0
    assert r["error"] == kwire.NONE, kwire.ename(r["error"])
    if delay_ms is None:
        assert took < 0.5, "first JoinGroup took %.2f s with the default delay 0" % took
    else:
        assert delay_ms / 1000.0 - 0.1 <= took <= delay_ms / 1000.0 + 1.5, took
