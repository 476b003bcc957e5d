"""The pytest plugin as a user gets it: fixtures `minikora` (session) and `kafka_reset`
(function), with no conftest, from the installed package's pytest11 entry point."""

import os
import subprocess
import sys
import uuid

import pytest

import minikora as pkg


def produce_consume(bootstrap, topic, n=10, **conf):
    import confluent_kafka as ck
    p = ck.Producer(dict({"bootstrap.servers": bootstrap, "acks": "all"}, **conf))
    for i in range(n):
        p.produce(topic, value=b"v%d" % i)
    assert p.flush(30) == 0
    c = ck.Consumer(dict({"bootstrap.servers": bootstrap, "group.id": "g-" + uuid.uuid4().hex[:8],
                          "auto.offset.reset": "earliest"}, **conf))
    try:
        c.subscribe([topic])
        got = []
        for _ in range(200):
            m = c.poll(0.2)
            if m is not None and not m.error():
                got.append(m.value())
            if len(got) == n:
                break
        return got
    finally:
        c.close()


def test_plugin_comes_from_the_installed_entry_point(pytestconfig):
    plugin = pytestconfig.pluginmanager.get_plugin("minikora")
    assert plugin is not None and plugin.__name__ == "minikora.pytest_plugin"
    assert os.path.dirname(pkg.__file__).endswith(os.path.join("site-packages", "minikora")) or \
        os.environ.get("MINIKORA_PLUGIN_UNINSTALLED"), pkg.__file__


def test_session_cluster(minikora):
    assert minikora.alive()
    assert len(minikora.bootstrap.split(",")) == 3  # minikora_args in pytest.ini
    assert minikora.admin.startswith("http://127.0.0.1:") and len(minikora.admin_token) == 64
    # the bundled S3 server, as the ready file names it
    assert minikora.s3["url"].startswith("http://") and minikora.s3["bucket"] == "minikora"
    assert minikora.s3["access_key"] and minikora.s3["secret_key"]
    assert os.environ["KAFKA_BOOTSTRAP"] == minikora.bootstrap
    assert os.environ["MINIKORA_ADMIN"] == minikora.admin
    assert os.environ["MINIKORA_ADMIN_TOKEN"] == minikora.admin_token
    assert produce_consume(minikora.bootstrap, "plugin-t1") == [b"v%d" % i for i in range(10)]


def test_kafka_reset_empties_the_cluster(minikora, kafka_reset):
    assert kafka_reset is minikora
    assert minikora.cluster()["topics"] == 0  # plugin-t1 of the test before is gone
    minikora.create_topic("made-here", partitions=2, replication_factor=3)
    assert minikora.cluster()["topics"] == 1


def test_kafka_reset_again(kafka_reset):
    assert kafka_reset.cluster()["topics"] == 0


def test_fault_vocabulary(kafka_reset):
    mk = kafka_reset
    t = mk.create_topic("faults", partitions=3, replication_factor=3)
    assert t["partitions"] == 3
    b = mk.crash_broker(2)
    assert (b["running"], b["state"]) == (False, "crashed")
    assert [e["broker"] for e in mk.events(type="broker_crashed")][-1] == 2
    assert sorted(produce_consume(mk.bootstrap, "faults")) == sorted(b"v%d" % i for i in range(10))
    assert mk.start_broker(2)["running"] is True
    assert mk.stop_broker(3)["state"] == "stopped"
    assert mk.restart_broker(3)["running"] is True
    assert mk.az_down(1)["brokers_changed"] == 1
    assert mk.az_up("az-1")["brokers_changed"] == 1
    with pytest.raises(pkg.MinikoraError) as e:
        mk.crash_broker(99)
    assert e.value.status == 404 and e.value.body["error"] == "unknown_broker"
    mk.delete_topic("faults")
    assert mk.cluster()["topics"] == 0


def test_tenant_vocabulary(kafka_reset):
    mk = kafka_reset
    mk.create_tenant("acme")
    try:
        key, secret = mk.create_api_key("acme")
        sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                "sasl.username": key, "sasl.password": secret}
        assert produce_consume(mk.bootstrap, "acme-orders", n=3, **sasl) == [b"v0", b"v1", b"v2"]
    finally:
        mk.delete_tenant("acme")


def test_fixtures_in_a_suite_of_their_own(pytester):
    """A user's suite with no conftest: the fixtures are simply there."""
    pytester.makepyfile(test_user="""
        def test_uses_fixtures(minikora, kafka_reset):
            assert minikora.bootstrap and kafka_reset.cluster()["topics"] == 0
            assert minikora.cluster()["brokers_running"] == 1
    """)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--minikora-args", "--brokers 1 --azs 1")
    r.assert_outcomes(passed=1)
