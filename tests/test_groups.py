"""Consumer groups with real clients (issue 3): kafka-python, confluent-kafka and kafkajs each

* three consumers share a 6-partition topic without overlap, every record consumed exactly once
  in steady state (and the generation does not move);
* a member leaving, then one joining, triggers a rebalance each, and no record is lost;
* a new consumer resumes from the committed offsets with no re-delivery;
* a static member (group.instance.id) restarting within its session keeps its partitions
  without a rebalance (same generation, probed with raw Heartbeats; the other members see no
  revoke/assign).

Members are tests/groups_util.py's CkMember / KpMember / JsMember; clients use a 6 s session
(the broker minimum), 300 ms heartbeats and a 10 s rebalance timeout.
"""

import time
from collections import Counter

import pytest

import clients
import groups_util as gu
import kwire

KINDS = ["kafka-python", "confluent", "kafkajs"]
PARTITIONS = 6


def _skip_if_no_node(kind):
    if kind == "kafkajs" and not clients.node_available():
        pytest.skip("node or tests/js/node_modules/kafkajs missing")


@pytest.fixture
def group_for(cluster, topic_name, request):
    """group_for(kind) -> a Group on a fresh 6-partition topic; members closed at teardown."""
    made = []

    def make(kind, group=None):
        _skip_if_no_node(kind)
        topic = topic_name(kind)
        clients.create_topic_ok(cluster.bootstrap, topic, PARTITIONS)
        g = gu.Group(kind, cluster.bootstrap, topic, PARTITIONS, group=group)
        made.append(g)
        return g

    yield make
    errs = []
    for g in made:
        errs += g.close_all()
    assert not errs, errs


def member_of(group_desc, instance_id):
    for m in group_desc["members"]:
        if m["instance_id"] == instance_id:
            return m
    raise AssertionError("no member with instance id %s in %r" % (instance_id, group_desc))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_three_consumers_share_exactly_once(cluster, group_for, kind, record_property):
    g = group_for(kind)
    t0 = time.monotonic()
    for _ in range(3):
        g.add()
    d = g.wait_balanced(30, "three members")
    record_property("join_s", round(time.monotonic() - t0, 2))
    owner = {p: m for m in g.members for p in m.assignment}
    assert all(len(m.assignment) == 2 for m in g.members), g.members
    # the broker's view: the same three members, and their assignments as the clients see them
    by_client = sorted(sorted(m.assignment) for m in g.members)
    by_broker = sorted(kwire.parse_assignment(m["assignment"]).get(g.topic, []) for m in d["members"])
    assert by_broker == by_client, (d, g.members)
    events = [(m.assign_events, m.revoke_events) for m in g.members]
    gen0, err = gu.probe_generation(cluster.bootstrap, g.group, d["members"][0]["member_id"])
    assert err == kwire.NONE, kwire.ename(err)

    expected, keys = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 50, "steady")
    g.wait_consumed(expected, 30, "steady state")

    got = [(p, o) for p, o, _ in g.consumed()]
    dups = [k for k, n in Counter(got).items() if n > 1]
    assert not dups, "records consumed more than once: %r" % dups[:10]
    assert set(got) == expected
    for m in g.members:
        for p, o, k in m.snapshot():
            assert owner[p] is m, "partition %d consumed by %s but assigned to %s" % (
                p, m.name, owner[p].name)
            assert keys[(p, o)] == k, (p, o, k, keys[(p, o)])
    # steady state: no member saw another rebalance, and the generation did not move
    assert [(m.assign_events, m.revoke_events) for m in g.members] == events, g.members
    gen1, err = gu.probe_generation(cluster.bootstrap, g.group, d["members"][0]["member_id"])
    assert (gen1, err) == (gen0, kwire.NONE), (gen0, gen1, kwire.ename(err))
    gu.wait_until(lambda: gu.committed(cluster.bootstrap, g.group, g.topic, PARTITIONS)
                  == {p: 50 for p in range(PARTITIONS)}, 15, "committed offsets at 50")
    assert not g.member_errors(ignore=()), g.member_errors(ignore=())


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
def test_leave_and_join_rebalance_without_loss(cluster, group_for, kind, record_property):
    g = group_for(kind)
    for _ in range(3):
        g.add()
    d = g.wait_balanced(30, "three members")
    gens = [gu.probe_generation(cluster.bootstrap, g.group, d["members"][0]["member_id"])[0]]
    all_expected = set()

    exp, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 20, "a")
    all_expected |= exp
    g.wait_consumed(all_expected, 30, "batch a")

    # a member leaves (commit + LeaveGroup); records produced during the rebalance
    leaver = g.members[2]
    t0 = time.monotonic()
    g.stop(leaver)
    exp, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 20, "b")
    all_expected |= exp
    d = g.wait_balanced(30, "after a leave")
    record_property("leave_rebalance_s", round(time.monotonic() - t0, 2))
    assert len(d["members"]) == 2 and all(len(m.assignment) == 3 for m in g.live()), g.members
    gens.append(gu.probe_generation(cluster.bootstrap, g.group, d["members"][0]["member_id"])[0])
    g.wait_consumed(all_expected, 30, "batch b after the leave")

    # a member joins; records produced during the rebalance
    t0 = time.monotonic()
    joiner = g.add()
    exp, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 20, "c")
    all_expected |= exp
    d = g.wait_balanced(30, "after a join")
    record_property("join_rebalance_s", round(time.monotonic() - t0, 2))
    assert len(d["members"]) == 3 and joiner.assignment, g.members
    gens.append(gu.probe_generation(cluster.bootstrap, g.group, d["members"][0]["member_id"])[0])
    exp, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 20, "d")
    all_expected |= exp
    g.wait_consumed(all_expected, 30, "batches c, d after the join")

    assert gens[0] < gens[1] < gens[2], "each membership change is a new generation: %r" % gens
    got = Counter((p, o) for p, o, _ in g.consumed())
    assert set(got) == all_expected, "consumed records that were never produced"
    record_property("duplicates", sum(n - 1 for n in got.values()))
    gu.wait_until(lambda: gu.committed(cluster.bootstrap, g.group, g.topic, PARTITIONS)
                  == {p: 80 for p in range(PARTITIONS)}, 15, "committed offsets at the end")
    assert not g.member_errors(), g.member_errors()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
def test_new_consumer_resumes_from_committed(cluster, group_for, kind):
    g = group_for(kind)
    for _ in range(3):
        g.add()
    g.wait_balanced(30, "three members")
    first, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 30, "first")
    g.wait_consumed(first, 30, "first batch")
    gu.wait_until(lambda: gu.committed(cluster.bootstrap, g.group, g.topic, PARTITIONS)
                  == {p: 30 for p in range(PARTITIONS)}, 15, "first batch committed")
    for m in list(g.members):
        g.stop(m)
    d = gu.describe(cluster.bootstrap, g.group)
    assert d["state"] == "Empty" and not d["members"], d

    second, keys = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 10, "second")
    fresh = g.add()
    g._wait(lambda: fresh.assignment == frozenset(range(PARTITIONS)), 30,
               "the new consumer owns every partition (%r)" % fresh)
    g.wait_consumed(second, 30, "second batch")
    got = fresh.snapshot()
    assert sorted((p, o) for p, o, _ in got) == sorted(second), \
        "re-delivered or missing: %r" % sorted(set((p, o) for p, o, _ in got) ^ second)[:10]
    assert all(keys[(p, o)] == k for p, o, k in got)
    assert not g.member_errors(), g.member_errors()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", KINDS)
def test_static_member_restart_keeps_partitions(cluster, group_for, kind):
    if kind == "kafka-python":
        pytest.skip("kafka-python 2.0.2 has no group_instance_id (static membership); the broker "
                    "side is covered by test_groups_protocol.py::test_static_member_rejoin_*")
    g = group_for(kind)
    for i in range(3):
        g.add(instance_id="%s-static-%d" % (g.group, i))
    d = g.wait_balanced(30, "three static members")
    assert sorted(m["instance_id"] for m in d["members"]) == sorted(m.instance_id for m in g.members)
    before, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 10, "before")
    g.wait_consumed(before, 30, "records before the restart")
    gu.wait_until(lambda: gu.committed(cluster.bootstrap, g.group, g.topic, PARTITIONS)
                  == {p: 10 for p in range(PARTITIONS)}, 15, "committed before the restart")

    victim, others = g.members[1], [g.members[0], g.members[2]]
    probe = member_of(d, others[0].instance_id)
    gen0, err = gu.probe_generation(cluster.bootstrap, g.group, probe["member_id"],
                                    probe["instance_id"])
    assert err == kwire.NONE, kwire.ename(err)
    old_parts = victim.assignment
    old_member_id = member_of(d, victim.instance_id)["member_id"]
    events = [(m.assign_events, m.revoke_events) for m in others]

    t0 = time.monotonic()
    g.stop(victim, crash=True)          # no LeaveGroup
    again = g.add(instance_id=victim.instance_id, name=victim.name + "-again")
    g._wait(lambda: again.assignment is not None, 20, "the restarted member's assignment")
    elapsed = time.monotonic() - t0
    assert elapsed < gu.SESSION_MS / 1000.0, "restart took %.1f s, longer than the session" % elapsed
    assert again.assignment == old_parts, (old_parts, again)

    d2 = gu.describe(cluster.bootstrap, g.group)
    assert d2["state"] == "Stable" and len(d2["members"]) == 3, d2
    assert member_of(d2, victim.instance_id)["member_id"] != old_member_id
    gen1, err = gu.probe_generation(cluster.bootstrap, g.group, probe["member_id"],
                                    probe["instance_id"])
    assert (gen1, err) == (gen0, kwire.NONE), \
        "static rejoin moved the generation %d -> %d (%s)" % (gen0, gen1, kwire.ename(err))
    assert [(m.assign_events, m.revoke_events) for m in others] == events, \
        "the other members rebalanced: %r" % others

    after, _ = gu.produce(cluster.bootstrap, g.topic, PARTITIONS, 10, "after")
    g.wait_consumed(after, 30, "records after the restart")
    got = [(p, o) for p, o, _ in again.snapshot()]
    assert sorted(got) == sorted(x for x in after if x[0] in old_parts), \
        "the restarted member should read exactly its partitions' new records: %r" % sorted(got)
    live = [again] + others
    got_all = Counter((p, o) for m in live for p, o, _ in m.snapshot())
    assert all(n == 1 for n in got_all.values()), "duplicates: %r" % [
        k for k, n in got_all.items() if n > 1][:10]
    assert not g.member_errors(ignore=()), g.member_errors(ignore=())
