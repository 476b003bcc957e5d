"""Connection limits on the Kafka listeners, by Kafka's names (docs/ADMIN-API.md, "Connection
limits"): max.connections and max.connections.per.ip refuse a connection at accept, before a byte
is read (and so before any authentication); connections.max.idle.ms closes a quiet one.

Each limit is per broker listener.  Raw sockets (tests/kwire.py) show what a client sees: a
refused connection is closed at once (EOF or reset), while the ones inside the limit keep
answering ApiVersions.  Every wait is bounded; the only sleep paces an active connection.
"""

import socket
import time

import pytest

import kwire


class SrcConn(kwire.Conn):
    """kwire.Conn from a chosen source address (127.0.0.2 is a second IP on loopback)."""

    def __init__(self, host, port, source, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.corr = 0
        self.versions = None


def works(c):
    """One ApiVersions round trip succeeds on c."""
    err, apis = c.api_versions(0)
    assert err == 0 and kwire.API_VERSIONS in apis, (err, apis)


def refused(c, timeout=5.0):
    """c is closed by the broker without an answer (EOF or reset), within timeout."""
    try:
        c.send(kwire.request(kwire.API_VERSIONS, 0, 1, b""))
    except (BrokenPipeError, ConnectionResetError):
        return True
    closed, got = c.wait_closed(timeout)
    assert not got, "a refused connection was answered: %r" % got
    return closed


def can_bind(addr):
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


def wait_works(open_conn, timeout=10.0):
    """A new connection works within timeout (the broker may not have seen a close yet)."""
    deadline = time.monotonic() + timeout
    while True:
        c = open_conn()
        try:
            works(c)
            return c
        except (kwire.Closed, ConnectionError, socket.timeout):
            c.close()
            if time.monotonic() > deadline:
                raise
        # no sleep: each attempt is a full round trip, bounded by the deadline


@pytest.mark.timeout(60)
def test_max_connections_per_ip(minikora):
    mk = minikora("--brokers", "3", "--set", "max.connections.per.ip=3")
    host, port = mk.addr(1)
    conns = [kwire.Conn(host, port, timeout=5) for _ in range(3)]
    try:
        for c in conns:
            works(c)
        fourth = kwire.Conn(host, port, timeout=5)
        assert refused(fourth), "the 4th connection from one IP was not closed"
        fourth.close()
        for c in conns:  # the first three still work
            works(c)
        # The limit is per broker listener: broker 2 takes connections from the same IP.
        with kwire.Conn(*mk.addr(2), timeout=5) as other:
            works(other)
        # Another IP is not counted against this one.
        if can_bind("127.0.0.2"):
            with SrcConn(host, port, "127.0.0.2", timeout=5) as c2:
                works(c2)
        # Closing one frees a slot.
        conns.pop().close()
        conns.append(wait_works(lambda: kwire.Conn(host, port, timeout=5)))
    finally:
        for c in conns:
            c.close()
    log = mk.stderr_text()
    assert "refused on port %d" % port in log and "(max.connections.per.ip)" in log, log[-2000:]
    mk.assert_alive("connections refused")


@pytest.mark.timeout(60)
def test_max_connections(minikora):
    if not can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 is not usable as a source address here")
    mk = minikora("--brokers", "3", "--set", "max.connections=4", "--set", "max.connections.per.ip=3")
    host, port = mk.addr(1)
    conns = [kwire.Conn(host, port, timeout=5) for _ in range(3)]
    try:
        conns.append(SrcConn(host, port, "127.0.0.2", timeout=5))
        for c in conns:
            works(c)
        extra = SrcConn(host, port, "127.0.0.2", timeout=5)  # 2nd from .2, 5th on the listener
        assert refused(extra), "the 5th connection to a listener with max.connections=4 stayed open"
        extra.close()
        for c in conns:
            works(c)
    finally:
        for c in conns:
            c.close()
    assert "(max.connections)" in mk.stderr_text()


@pytest.mark.timeout(60)
def test_idle_connections_are_closed(minikora):
    mk = minikora("--brokers", "3", "--set", "connections.max.idle.ms=500")
    host, port = mk.addr(1)
    idle = kwire.Conn(host, port, timeout=5)
    active = kwire.Conn(host, port, timeout=5)
    silent = kwire.Conn(host, port, timeout=5)  # never sends a byte
    try:
        works(idle)
        t0 = time.monotonic()
        # The active one keeps talking (every 150 ms, well inside 500 ms) while the idle one waits.
        deadline = t0 + 1.5
        while time.monotonic() < deadline:
            works(active)
            time.sleep(0.15)  # pacing the active connection, not synchronisation
        closed, got = idle.wait_closed(timeout=5)
        waited = time.monotonic() - t0
        assert closed and not got, "idle connection not closed (%.1f s)" % waited
        assert silent.wait_closed(timeout=5)[0], "a connection that never sent a byte was not closed"
        works(active)  # still open: it was never idle for 500 ms
    finally:
        for c in (idle, active, silent):
            c.close()
    assert "connections.max.idle.ms=500" in mk.stderr_text()


def test_bad_limit_values_are_refused():
    import subprocess
    from cluster import BIN
    for kv in ["max.connections=-1", "max.connections.per.ip=-5", "connections.max.idle.ms=x"]:
        r = subprocess.run([str(BIN), "serve", "--ephemeral", "--port", "0", "--set", kv],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "invalid value" in r.stderr, (kv, r)
