"""Cluster topology as clients see it: 6 brokers (ids 1..6) on the ports of the ready line,
rack = AZ = az-(1+(id-1)%3), a controller id that names a live broker, and the API versions
a modern client needs."""

import json

import kwire
from clients import ck_admin, js_admin, kcat, kp_servers, node_available

import pytest

EXPECTED_IDS = [1, 2, 3, 4, 5, 6]


def expected_rack(broker_id):
    return "az-%d" % (1 + (broker_id - 1) % 3)


def test_ready_line_lists_six_brokers(cluster):
    assert len(cluster.brokers) == 6, cluster.bootstrap
    assert len({p for _, p in cluster.brokers}) == 6
    assert all(h == "127.0.0.1" for h, _ in cluster.brokers), cluster.bootstrap


def test_kcat_lists_brokers(cluster):
    r = kcat("-L", "-J", "-b", cluster.bootstrap, "-m", "15")
    md = json.loads(r.stdout)
    brokers = md["brokers"]
    assert sorted(b["id"] for b in brokers) == EXPECTED_IDS, brokers
    ports = sorted(int(b["name"].rsplit(":", 1)[1]) for b in brokers)
    assert ports == sorted(p for _, p in cluster.brokers), (brokers, cluster.bootstrap)
    for b in brokers:  # kcat 1.7 prints no rack; if a newer one does, check it
        if "rack" in b:
            assert b["rack"] == expected_rack(b["id"]), b
    if "controllerid" in md:
        assert md["controllerid"] in EXPECTED_IDS, md["controllerid"]


def test_kcat_plain_metadata_marks_controller(cluster):
    out = kcat("-L", "-b", cluster.bootstrap, "-m", "15").stdout.decode()
    assert " 6 brokers:" in out, out
    assert out.count("(controller)") == 1, out


def test_confluent_metadata_brokers_and_controller(cluster):
    md = ck_admin(cluster.bootstrap).list_topics(timeout=10)
    assert sorted(md.brokers) == EXPECTED_IDS
    assert sorted(b.port for b in md.brokers.values()) == sorted(p for _, p in cluster.brokers)
    assert md.controller_id in EXPECTED_IDS, md.controller_id


def test_kafka_python_racks_and_controller(cluster):
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=kp_servers(cluster.bootstrap), request_timeout_ms=10000)
    try:
        d = a.describe_cluster()
    finally:
        a.close()
    brokers = {b["node_id"]: b for b in d["brokers"]}
    assert sorted(brokers) == EXPECTED_IDS, d
    for bid, b in brokers.items():
        assert b["rack"] == expected_rack(bid), (bid, b)
        assert b["host"] == "127.0.0.1"
    assert d["controller_id"] in EXPECTED_IDS, d


def test_kafka_python_detects_modern_broker(cluster):
    """kafka-python infers the broker version from ApiVersions; below 0.11 it would fall back
    to message format v0/v1, which minikora does not need to support."""
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=kp_servers(cluster.bootstrap), request_timeout_ms=10000)
    try:
        v = a.config["api_version"]
    finally:
        a.close()
    assert tuple(v) >= (0, 11), "kafka-python detected broker version %r" % (v,)


@pytest.mark.parametrize("idx", range(6))
def test_raw_metadata_from_every_broker(cluster, idx):
    host, port = cluster.brokers[idx]
    with kwire.Conn(host, port) as c:
        md = c.metadata(topics=None)
    brokers = {b["node_id"]: b for b in md["brokers"]}
    assert sorted(brokers) == EXPECTED_IDS, md["brokers"]
    for bid, b in brokers.items():
        assert b["rack"] == expected_rack(bid), b
        assert (b["host"], b["port"]) in cluster.brokers, b
    assert md["controller"] in EXPECTED_IDS
    # broker i listens on the i-th port of the ready line?  Not required; but the node we
    # talked to must be one of them.
    assert port in [b["port"] for b in brokers.values()]


def test_all_brokers_agree_on_controller_and_cluster_id(cluster):
    seen = set()
    for host, port in cluster.brokers:
        with kwire.Conn(host, port) as c:
            md = c.metadata(topics=[])
        seen.add((md["controller"], md["cluster_id"]))
    assert len(seen) == 1, seen


def test_raw_describe_cluster(cluster):
    host, port = cluster.brokers[0]
    with kwire.Conn(host, port) as c:
        d = c.describe_cluster()
        md = c.metadata(topics=[])
    assert d["error"] == 0, d
    brokers = {b["node_id"]: b for b in d["brokers"]}
    assert sorted(brokers) == EXPECTED_IDS, d
    for bid, b in brokers.items():
        assert b["rack"] == expected_rack(bid), b
    assert d["controller"] in EXPECTED_IDS
    assert d["cluster_id"] and d["cluster_id"] == md["cluster_id"], (d, md["cluster_id"])


def test_api_versions_advertises_required_apis(cluster):
    host, port = cluster.brokers[0]
    required = [kwire.PRODUCE, kwire.FETCH, kwire.LIST_OFFSETS, kwire.METADATA,
                kwire.API_VERSIONS, kwire.CREATE_TOPICS, kwire.DELETE_TOPICS,
                kwire.DESCRIBE_CONFIGS, kwire.DESCRIBE_CLUSTER]
    for v in (0, 1, 2, 3):
        with kwire.Conn(host, port) as c:
            err, apis = c.api_versions(v)
        assert err == 0, (v, err)
        for k in required:
            assert k in apis, "ApiVersions v%d lacks api key %d: %r" % (v, k, apis)
            lo, hi = apis[k]
            assert 0 <= lo <= hi, (k, lo, hi)
    # record batches v2 need Produce >= 3 and Fetch >= 4
    assert apis[kwire.PRODUCE][1] >= 3 and apis[kwire.FETCH][1] >= 4, apis
    assert apis[kwire.API_VERSIONS][1] >= 3, apis


@pytest.mark.skipif(not node_available(), reason="tests/js/node_modules missing (npm install)")
def test_kafkajs_describe_cluster(cluster):
    res = js_admin(cluster.bootstrap, "describeCluster")
    assert res["ok"], res
    r = res["result"]
    assert sorted(b["nodeId"] for b in r["brokers"]) == EXPECTED_IDS, r
    assert r["controller"] in EXPECTED_IDS, r
    assert r["clusterId"], r


def test_advertise_host(minikora):
    """--advertise-host changes what Metadata tells clients, not what is bound."""
    mk = minikora("--advertise-host", "localhost")
    host, port = "127.0.0.1", mk.brokers[0][1]
    with kwire.Conn(host, port) as c:
        md = c.metadata(topics=[])
    assert {b["host"] for b in md["brokers"]} == {"localhost"}, md["brokers"]
    assert sorted(b["port"] for b in md["brokers"]) == sorted(p for _, p in mk.brokers)
    # a real client follows the advertised name (localhost resolves to 127.0.0.1 here)
    md2 = ck_admin(",".join("127.0.0.1:%d" % p for _, p in mk.brokers)).list_topics(timeout=10)
    assert sorted(md2.brokers) == EXPECTED_IDS
