"""Group coordinator failover (issue 3): the broker coordinating a group crashes; the group's
coordination moves to another running broker, clients find it (NOT_COORDINATOR /
COORDINATOR_NOT_AVAILABLE, then FindCoordinator again), committed offsets are kept, and the
consumer carries on without losing records.

The cluster runs with --control-stdin so the test can crash and start brokers, synchronising on
the control answers; the topic has RF 3 so its partitions stay available.
"""

import time

import confluent_kafka as ck
import pytest

from clients import RDK_LOG, ck_create_topic
import kwire
from groups_util import wait_until
from kwire import NONE
from repl_util import isr_full, wait_metadata


def coordinator_of(bootstrap, group):
    """The coordinator's node id, asked of the first broker that answers (some are down)."""
    for host, port in kwire.parse_bootstrap(bootstrap):
        try:
            with kwire.Conn(host, port, timeout=5) as c:
                err, node, _, _ = c.find_coordinator(group)
        except OSError:
            continue
        if err == NONE:
            return node
    return None


@pytest.fixture
def mk(minikora, tmp_path):
    return minikora(data_dir=tmp_path / "data", control=True)


def test_coordinator_crash_moves_group_and_keeps_offsets(mk, topic_name):
    topic, group = topic_name(), "failover-group"
    assert ck_create_topic(mk.bootstrap, topic, 6, rf=3) is None
    wait_metadata(mk, topic, lambda ps: len(ps) == 6 and isr_full(ps), 20, "topic ready")

    p = ck.Producer({"bootstrap.servers": mk.bootstrap, "acks": "all", "logger": RDK_LOG})
    for i in range(600):
        p.produce(topic, key=str(i), value=str(i), partition=i % 6)
    assert p.flush(20) == 0

    c = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "heartbeat.interval.ms": 300, "session.timeout.ms": 6000, "logger": RDK_LOG})
    try:
        c.subscribe([topic])
        seen = set()
        deadline = time.monotonic() + 30
        while len(seen) < 600 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.add(int(m.value()))
        assert len(seen) == 600, "consumed %d of 600 before the crash" % len(seen)
        c.commit(asynchronous=False)

        old = coordinator_of(mk.bootstrap, group)
        assert old is not None
        mk.crash(old)
        new = wait_until(lambda: (lambda n: n if n not in (None, old) else None)(coordinator_of(mk.bootstrap, group)),
                         15, "the group's coordinator to move off broker %d" % old)
        assert new != old

        for i in range(600, 900):
            p.produce(topic, key=str(i), value=str(i), partition=i % 6)
        assert p.flush(30) == 0
        deadline = time.monotonic() + 40
        while len(seen) < 900 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen.add(int(m.value()))
        assert len(seen) == 900, "consumed %d of 900 after the coordinator crash" % len(seen)
        # Commits go to the new coordinator, and the pre-crash ones were kept.
        deadline = time.monotonic() + 20
        while True:
            try:
                c.commit(asynchronous=False)
                break
            except ck.KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        committed = c.committed([ck.TopicPartition(topic, i) for i in range(6)], timeout=15)
        assert sum(tp.offset for tp in committed) == 900, committed
    finally:
        c.close()

    mk.start_broker(old)
    # A new consumer in the group resumes after everything: nothing re-delivered.
    c2 = ck.Consumer({"bootstrap.servers": mk.bootstrap, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False, "logger": RDK_LOG})
    try:
        c2.subscribe([topic])
        p.produce(topic, key="last", value="900", partition=0)
        assert p.flush(20) == 0
        got = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            m = c2.poll(0.2)
            if m is not None and not m.error():
                got.append(int(m.value()))
        assert got == [900], "expected only the new record, got %r" % got
    finally:
        c2.close()
