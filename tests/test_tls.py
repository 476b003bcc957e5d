"""TLS listeners: every broker has a second (SSL) listener whose ports follow the PLAINTEXT ones
(free ports under the fixtures' --port 0).  At first start minikora makes a CA and a server
certificate under DATA/tls/ and names the CA in the ready line and the ready file.

Real clients go through the TLS ports with security.protocol=SSL and ssl.ca.location=<that
file>, with hostname verification on (librdkafka's default): confluent-kafka produces and
consumes a topic with one partition led by each broker, kcat lists the brokers at their TLS
ports.  A plain Kafka request and random bytes sent to a TLS port are refused with the process
alive, and a restart reuses the same CA file.
"""

import json
import os
import random
import re
import socket
import ssl
import stat
import time

import confluent_kafka as ck
import pytest
from confluent_kafka.admin import NewTopic

import kwire
from clients import (check_partitions, ck_admin, ck_consume, ck_produce, ck_result,
                     expected_by_partition, kcat, make_records)

TLS_RE = re.compile(r" tls (\S+) ca (\S+)$")


def tls_of(mk):
    """(tls bootstrap, CA file) from the cluster's ready line."""
    m = TLS_RE.search(mk.ready_line)
    assert m, "ready line names no TLS listeners: %r" % mk.ready_line
    return m.group(1), m.group(2)


def ssl_conf(ca):
    return {"security.protocol": "SSL", "ssl.ca.location": ca}


def handshake(host, port, ca, server_hostname, timeout=10):
    """A TLS handshake that verifies the chain against ca and the name against the
    certificate; returns the negotiated protocol version."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname=server_hostname) as t:
            return t.version()


def read_until_eof(sock, timeout=10):
    """Everything the peer sends until it closes; fails if it does not close in time."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the broker kept the connection open (%d bytes received)" % len(got)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return got
        if not chunk:
            return got
        got += chunk


def wait_topic_ready_with(admin, name, partitions, timeout=20):
    """clients.wait_topic_ready through a given (TLS) admin client."""
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader in md.brokers and p.error is None for p in t.partitions.values()):
            return md
        assert time.monotonic() < deadline, "topic %s not ready over TLS: %r" % (name, t)
        time.sleep(0.1)  # bounded by `timeout`


def stderr_text(mk):
    return mk.stderr_path.read_text(errors="replace")


# ---------------------------------------------------------------------------------------------
# ready line, ready file, certificates
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_ready_line_file_and_certificates(minikora, tmp_path):
    ready = tmp_path / "ready.json"
    data = tmp_path / "data"
    mk = minikora("--ready-file", ready, data_dir=data, ephemeral=False)
    boot, ca = tls_of(mk)
    # the beginning of the line is as it was; the admin URL stays one word
    assert mk.ready_line.startswith("minikora ready: bootstrap servers ")
    assert mk.admin_url and re.fullmatch(r"http://127\.0\.0\.1:\d+", mk.admin_url)
    assert ca == str(data / "tls" / "ca.pem")
    tls_brokers = kwire.parse_bootstrap(boot)
    assert len(tls_brokers) == len(mk.brokers) == 6
    assert not set(p for _, p in tls_brokers) & set(p for _, p in mk.brokers)

    info = json.loads(ready.read_text())
    assert info["tls_bootstrap"] == boot
    assert info["ca_file"] == ca
    assert [b["tls_port"] for b in info["brokers"]] == [p for _, p in tls_brokers]

    d = data / "tls"
    assert sorted(os.listdir(d)) == ["ca.key", "ca.pem", "server.key", "server.pem"]
    for key in ("server.key", "ca.key"):
        assert stat.S_IMODE((d / key).stat().st_mode) == 0o600, key
    # the server certificate chains to ca.pem and names localhost and 127.0.0.1
    host, port = tls_brokers[0]
    assert handshake(host, port, ca, "127.0.0.1") in ("TLSv1.2", "TLSv1.3")
    assert handshake(host, port, ca, "localhost") in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(host, port, ca, "not-this-host.example")
    # and a client that trusts nothing refuses it (it is not some public certificate)
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx = ssl.create_default_context()
        with socket.create_connection((host, port), timeout=10) as s:
            ctx.wrap_socket(s, server_hostname="127.0.0.1")
    mk.assert_alive("TLS handshakes")


@pytest.mark.timeout(60)
def test_tls_port_minus_one_disables_tls(minikora, tmp_path):
    ready = tmp_path / "ready.json"
    mk = minikora("--tls-port", "-1", "--ready-file", ready)
    assert " tls " not in mk.ready_line and " ca " not in mk.ready_line
    info = json.loads(ready.read_text())
    assert info["tls_bootstrap"] is None and info["ca_file"] is None


@pytest.mark.timeout(90)
def test_restart_reuses_the_ca(minikora, tmp_path):
    data = tmp_path / "data"
    mk = minikora(data_dir=data, ephemeral=False)
    _, ca = tls_of(mk)
    files = {n: (data / "tls" / n).read_bytes() for n in ("ca.pem", "ca.key", "server.pem", "server.key")}
    mk.restart()
    boot2, ca2 = tls_of(mk)
    assert ca2 == ca
    for n, b in files.items():
        assert (data / "tls" / n).read_bytes() == b, "%s changed across a restart" % n
    host, port = kwire.parse_bootstrap(boot2)[0]
    assert handshake(host, port, ca, "127.0.0.1")


@pytest.mark.timeout(90)
def test_operator_certificate_files(minikora, tmp_path):
    """--tls-cert/--tls-key/--tls-ca: those files are served and named, DATA/tls is not made."""
    first = minikora(data_dir=tmp_path / "a", ephemeral=False)
    _, ca = tls_of(first)
    first.stop()
    d = tmp_path / "a" / "tls"
    data = tmp_path / "b"
    mk = minikora("--tls-cert", d / "server.pem", "--tls-key", d / "server.key", "--tls-ca", ca,
                  data_dir=data, ephemeral=False)
    boot, ca2 = tls_of(mk)
    assert ca2 == ca
    assert not (data / "tls").exists()
    host, port = kwire.parse_bootstrap(boot)[0]
    assert handshake(host, port, ca, "127.0.0.1")


# ---------------------------------------------------------------------------------------------
# real clients over TLS
# ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_confluent_kafka_produce_consume_over_tls(cluster, topic_name):
    boot, ca = tls_of(cluster)
    tls_ports = {p for _, p in kwire.parse_bootstrap(boot)}
    admin = ck_admin(boot, **ssl_conf(ca))
    md = admin.list_topics(timeout=20)
    # a client that came in over TLS is told the TLS port of every broker
    assert {b.port for b in md.brokers.values()} == tls_ports, md.brokers
    assert len(md.brokers) == 6

    topic = topic_name()
    # one partition led by each broker, so the client talks TLS to all six
    assignment = [[b] for b in sorted(md.brokers)]
    err = ck_result(admin.create_topics([NewTopic(topic, 6, replica_assignment=assignment)],
                                        operation_timeout=10)[topic])
    assert err is None, "create topic over TLS: %s" % err
    md = wait_topic_ready_with(admin, topic, 6)
    assert sorted(p.leader for p in md.topics[topic].partitions.values()) == sorted(md.brokers)

    records = make_records("tls", 600, 6)
    offsets = ck_produce(boot, topic, records, codec="lz4", **ssl_conf(ca))
    assert sorted(offsets) == list(range(6))
    exp = expected_by_partition(records)
    got = ck_consume(boot, topic, {p: len(v) for p, v in exp.items()}, **ssl_conf(ca))
    check_partitions(exp, got, "consumed over TLS")

    # the PLAINTEXT listeners still answer with the PLAINTEXT ports
    plain = ck_admin(cluster.bootstrap).list_topics(timeout=20)
    assert {b.port for b in plain.brokers.values()} == {p for _, p in cluster.brokers}


@pytest.mark.timeout(60)
def test_kcat_lists_brokers_with_tls_ports(cluster):
    boot, ca = tls_of(cluster)
    r = kcat("-b", boot, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + ca, "-L",
             "-m", "20", timeout=40)
    out = r.stdout.decode()
    listed = {(int(i), int(p)) for i, p in re.findall(r"broker (\d+) at [^:\s]+:(\d+)", out)}
    assert len(listed) == 6, out
    assert {p for _, p in listed} == {p for _, p in kwire.parse_bootstrap(boot)}, out
    assert re.search(r"from broker \d+: ssl://", out), out


# ---------------------------------------------------------------------------------------------
# what is not TLS is refused, and the broker lives on
# ---------------------------------------------------------------------------------------------
def assert_plaintext_still_serves(mk):
    host, port = mk.brokers[0]
    with kwire.Conn(host, port) as c:
        assert c.api_versions()  # any answer: the broker is serving


@pytest.mark.timeout(60)
def test_plaintext_kafka_request_on_tls_port_is_refused(cluster):
    boot, _ = tls_of(cluster)
    host, port = kwire.parse_bootstrap(boot)[0]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(kwire.request(18, 0, 7, b""))  # ApiVersions v0 in the clear
        got = read_until_eof(s)
    # nothing but (at most) a TLS alert record comes back: no Kafka response
    assert got == b"" or got[0] == 0x15, got[:32]
    cluster.assert_alive("a plaintext request on a TLS port")
    assert_plaintext_still_serves(cluster)
    assert re.search(r"TLS handshake failed", stderr_text(cluster))


@pytest.mark.timeout(60)
def test_garbage_on_tls_port_is_refused(cluster):
    boot, ca = tls_of(cluster)
    host, port = kwire.parse_bootstrap(boot)[1]
    rnd = random.Random(10)
    for size in (1, 5, 300, 70000):
        with socket.create_connection((host, port), timeout=10) as s:
            data = bytes(rnd.randrange(256) for _ in range(size))
            try:
                s.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                pass
            if size >= 5:
                read_until_eof(s)
        cluster.assert_alive("%d random bytes on a TLS port" % size)
    # a TLS record header that claims a record bigger than TLS allows
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\xff\xff" + b"\x00" * 100)
        read_until_eof(s)
    # a handshake cut short: the client goes away mid-ClientHello
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    # a good handshake, then a frame size out of range inside TLS: the frame parser closes it
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(b"\x7f\xff\xff\xff" + b"x" * 16)
            t.settimeout(10)
            try:
                assert t.recv(100) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass
    cluster.assert_alive("garbage on a TLS port")
    assert_plaintext_still_serves(cluster)
    # and TLS clients still get served
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(kwire.request(18, 0, 9, b""))
            t.settimeout(10)
            head = b""
            while len(head) < 8:
                chunk = t.recv(8 - len(head))
                assert chunk, "EOF before the ApiVersions answer over TLS"
                head += chunk
            assert int.from_bytes(head[4:8], "big") == 9  # correlation id


@pytest.mark.timeout(90)
def test_new_advertise_host_keeps_the_ca(minikora, tmp_path):
    """A server certificate that does not name the advertise host is issued again by the
    same CA, so clients keep their ca.pem."""
    data = tmp_path / "data"
    first = minikora(data_dir=data, ephemeral=False)
    ca_bytes = (data / "tls" / "ca.pem").read_bytes()
    server_bytes = (data / "tls" / "server.pem").read_bytes()
    first.stop()
    mk = minikora("--advertise-host", "localhost", data_dir=data, ephemeral=False)
    assert (data / "tls" / "server.pem").read_bytes() == server_bytes  # localhost was named
    mk.stop()
    mk = minikora("--advertise-host", "127.0.0.2", data_dir=data, ephemeral=False)
    boot, ca = tls_of(mk)
    assert boot.startswith("127.0.0.2:")
    assert (data / "tls" / "ca.pem").read_bytes() == ca_bytes
    assert (data / "tls" / "server.pem").read_bytes() != server_bytes
    port = kwire.parse_bootstrap(boot)[0][1]
    assert handshake("127.0.0.1", port, ca, "127.0.0.2")


@pytest.mark.timeout(120)
def test_large_records_over_tls(cluster, topic_name):
    """Records far larger than a TLS record (16 KiB) and than one read: Produce requests and
    Fetch responses span many TLS records and many reads each way."""
    boot, ca = tls_of(cluster)
    admin = ck_admin(boot, **ssl_conf(ca))
    topic = topic_name()
    err = ck_result(admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10)[topic])
    assert err is None, "create topic over TLS: %s" % err
    wait_topic_ready_with(admin, topic, 1)
    rnd = random.Random(7)
    records = [(0, b"k%d" % i, rnd.randbytes(300000 + i), []) for i in range(16)]
    ck_produce(boot, topic, records, **{"linger.ms": 0, "message.max.bytes": 1 << 20}, **ssl_conf(ca))
    got = ck_consume(boot, topic, {0: len(records)}, **ssl_conf(ca))
    check_partitions(expected_by_partition(records), got, "large records over TLS")


@pytest.mark.timeout(120)
def test_sasl_ssl_plain_with_a_tenant_key(minikora, topic_name):
    """SASL_SSL, as on Confluent Cloud: a tenant's API key over TLS with mechanism PLAIN, and
    minikora.auth.required=true so that only authenticated connections are served."""
    import urllib.request
    mk = minikora("--set", "minikora.auth.required=true")
    boot, ca = tls_of(mk)

    def post(path, body=None):
        req = urllib.request.Request(mk.admin_url + path, method="POST",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **mk.admin_headers()})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
            return json.loads(r.read())

    post("/v1/tenants", {"id": "acme"})
    k = post("/v1/tenants/acme/keys")
    creds = {"security.protocol": "SASL_SSL", "ssl.ca.location": ca, "sasl.mechanism": "PLAIN",
             "sasl.username": k["key"], "sasl.password": k["secret"]}
    admin = ck_admin(boot, **creds)
    md = admin.list_topics(timeout=20)
    assert {b.port for b in md.brokers.values()} == {p for _, p in kwire.parse_bootstrap(boot)}
    topic = topic_name()
    err = ck_result(admin.create_topics([NewTopic(topic, 3, 1)], operation_timeout=10)[topic])
    assert err is None, "create topic over SASL_SSL: %s" % err
    wait_topic_ready_with(admin, topic, 3)
    records = make_records("sasl-ssl", 90, 3)
    ck_produce(boot, topic, records, **creds)
    exp = expected_by_partition(records)
    got = ck_consume(boot, topic, {p: len(v) for p, v in exp.items()}, **creds)
    check_partitions(exp, got, "consumed over SASL_SSL")
    # a wrong password over TLS is refused like over PLAINTEXT
    bad = dict(creds, **{"sasl.password": "wrong"})
    with pytest.raises(ck.KafkaException):
        ck_admin(boot, **bad).list_topics(timeout=5)
    mk.assert_alive("SASL_SSL")


@pytest.mark.timeout(120)
def test_kafkajs_sasl_ssl_plain(minikora, topic_name):
    """kafkajs (pure JavaScript) with a tenant key over SASL_SSL, mechanism PLAIN."""
    from clients import node_available, run_node
    if not node_available():
        pytest.skip("node / kafkajs not installed (cd tests/js && npm install)")
    import urllib.request
    mk = minikora()
    boot, ca = tls_of(mk)

    def post(path, body=None):
        req = urllib.request.Request(mk.admin_url + path, method="POST",
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **mk.admin_headers()})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    post("/v1/tenants", {"id": "jsco"})
    k = post("/v1/tenants/jsco/keys")
    topic = topic_name()
    res = run_node("sasl_ssl.js", boot, ca, k["key"], k["secret"], topic, 20, timeout=90)
    assert res["ok"], res
    assert res["consumed"] == 20, res
    assert sorted(res["values"]) == sorted("js-%d" % i for i in range(20)), res
    # The topic is the tenant's: a default-tenant client does not see it.
    assert topic not in ck_admin(mk.bootstrap).list_topics(timeout=10).topics
    bad = run_node("sasl_ssl.js", boot, ca, k["key"], "wrong-secret", topic + "-x", 1, timeout=90)
    assert not bad["ok"], bad
    mk.assert_alive("kafkajs over SASL_SSL")
