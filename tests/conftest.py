"""pytest fixtures that run the real ./minikora binary.

* `Minikora` starts `minikora serve --port 0 ...`, waits (bounded, no sleep-polling) for the ready
  line on stdout, parses the bootstrap servers, keeps draining stdout, collects stderr to a file,
  and on stop() sends SIGTERM and checks the exit code is 0 and the process never died on its own.
* `module_cluster` is one ephemeral cluster per test module; `cluster` hands it to a test and
  checks after every test that the process is still alive.
* `minikora` is a factory for tests that need their own process (flags, a fixed --data-dir,
  restarts).  Everything it started is stopped (and checked) at teardown.
* Every test has a bounded run time: `@pytest.mark.timeout(S)` or DEFAULT_TIMEOUT.  A SIGALRM
  raises in the test; a watchdog thread kills everything if even that does not help.

Environment: MINIKORA_BIN (default <repo>/minikora), MINIKORA_TEST_LOGS (default
<repo>/build/test-logs), MINIKORA_TEST_TIMEOUT (default per-test seconds).
"""

import ctypes
import faulthandler
import itertools
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kwire  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("MINIKORA_BIN", REPO / "minikora"))
LOG_DIR = Path(os.environ.get("MINIKORA_TEST_LOGS", REPO / "build" / "test-logs"))
DEFAULT_TIMEOUT = float(os.environ.get("MINIKORA_TEST_TIMEOUT", "90"))
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
READY_RE = re.compile(r"bootstrap servers (\S+)")

_all_procs = []  # every Popen we started, for the watchdog's last resort
_seq = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# Per-test time limit
# ---------------------------------------------------------------------------------------------
def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (default %d s)"
                            % DEFAULT_TIMEOUT)
    LOG_DIR.mkdir(parents=True, exist_ok=True)


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit (SIGALRM)")


def _kill_everything_and_exit(limit, nodeid):
    sys.stderr.write("\n*** WATCHDOG: %s still running %.0f s past its %.0f s limit; "
                     "killing minikora processes and exiting ***\n" % (nodeid, 30, limit))
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for p in _all_procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    os._exit(3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    m = item.get_closest_marker("timeout")
    limit = float(m.args[0]) if m and m.args else DEFAULT_TIMEOUT
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    wd = threading.Timer(limit + 30, _kill_everything_and_exit, args=(limit, item.nodeid))
    wd.daemon = True
    wd.start()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        wd.cancel()


# ---------------------------------------------------------------------------------------------
# The process handle
# ---------------------------------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: if pytest dies, the broker gets SIGKILL instead of lingering.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


class Minikora:
    """One `minikora serve` process."""

    def __init__(self, *extra, data_dir=None, ephemeral=None, name="minikora"):
        self.extra = [str(a) for a in extra]
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.ephemeral = (data_dir is None) if ephemeral is None else ephemeral
        self.name = "%s-%d-%d" % (re.sub(r"[^\w.-]", "_", name)[:80], os.getpid(), next(_seq))
        self.stderr_path = LOG_DIR / (self.name + ".1.stderr")
        self.proc = None
        self.bootstrap = None
        self.brokers = []
        self.stdout_lines = []
        self.starts = 0

    # -- lifecycle -------------------------------------------------------------------------
    def argv(self):
        a = [str(BIN), "serve", "--port", "0", "--host", "127.0.0.1"]
        if self.ephemeral:
            a.append("--ephemeral")
        if self.data_dir:
            a += ["--data-dir", self.data_dir]
        return a + self.extra

    def start(self, timeout=READY_TIMEOUT):
        if not BIN.exists():
            pytest.fail("minikora binary not found at %s (run `make minikora`)" % BIN)
        self.starts += 1
        self.stderr_path = LOG_DIR / ("%s.%d.stderr" % (self.name, self.starts))
        errf = open(self.stderr_path, "ab")
        errf.write(("\n==== start #%d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
        errf.flush()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=errf,
                                     preexec_fn=_die_with_parent, cwd=str(REPO))
        errf.close()
        _all_procs.append(self.proc)
        lines = queue.Queue()
        proc = self.proc

        def reader():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout_lines.append(line)
                lines.put(line)
            lines.put(None)  # EOF

        threading.Thread(target=reader, daemon=True).start()

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                pytest.fail("minikora: no ready line within %.0f s\n%s" % (timeout, self.diag()))
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                try:
                    rc = proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    rc = "still running"
                pytest.fail("minikora closed stdout before the ready line (rc=%s)\n%s"
                            % (rc, self.diag()))
            m = READY_RE.search(line)
            if m and "ready" in line:
                self.bootstrap = m.group(1)
                self.brokers = kwire.parse_bootstrap(self.bootstrap)
                return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self, what=""):
        if not self.alive():
            pytest.fail("minikora died%s (rc=%s)\n%s"
                        % (" after " + what if what else "", self.proc.poll(), self.diag()))

    def stop(self, timeout=STOP_TIMEOUT, check=True):
        """SIGTERM, wait, and (check=True) assert it had not died before and exits 0."""
        if self.proc is None:
            return None
        proc = self.proc
        died_before = proc.poll() is not None
        if not died_before:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            if check:
                pytest.fail("minikora did not exit within %.0f s of SIGTERM\n%s"
                            % (timeout, self.diag()))
            rc = None
        self.proc = None
        if check:
            if died_before:
                pytest.fail("minikora died during the test (rc=%s) before SIGTERM\n%s"
                            % (rc, self.diag(proc_rc=rc)))
            if rc != 0:
                pytest.fail("minikora exited %s after SIGTERM (expected 0)\n%s"
                            % (rc, self.diag(proc_rc=rc)))
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout=READY_TIMEOUT):
        self.stop()
        return self.start(timeout)

    # -- diagnostics -----------------------------------------------------------------------
    def stderr_tail(self, n=40):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()[-16384:]
        except OSError:
            return "(no stderr file)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-n:])

    def diag(self, proc_rc=None):
        return ("  argv: %s\n  stdout: %r\n  stderr (%s), last lines:\n%s"
                % (" ".join(self.argv()), self.stdout_lines[-5:], self.stderr_path,
                   "\n".join("    " + l for l in self.stderr_tail().splitlines())))

    def vm_status(self):
        """{'VmPeak': kB, 'VmRSS': kB, ...} from /proc (Linux)."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.startswith("Vm"):
                    out[k] = int(v.split()[0])
        return out


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def module_cluster(request):
    mk = Minikora(name=request.module.__name__)
    mk.start()
    yield mk
    mk.stop()


@pytest.fixture
def cluster(module_cluster, request):
    """The module's shared ephemeral cluster; after the test, it must still be alive.  If an
    earlier test killed it (that test has failed already), start a fresh one so that the rest
    of the module still tests something instead of failing in a cascade."""
    if not module_cluster.alive():
        sys.stderr.write("\n[conftest] %s: module cluster had died (rc=%s); restarting it\n"
                         % (request.node.nodeid, module_cluster.proc and module_cluster.proc.poll()))
        module_cluster.proc = None
        module_cluster.start()
    yield module_cluster
    if not module_cluster.alive():
        pytest.fail("minikora died during %s (rc=%s)\n%s"
                    % (request.node.nodeid, module_cluster.proc.poll(), module_cluster.diag()))


@pytest.fixture
def minikora(request):
    """Factory: minikora(*args, data_dir=None, ephemeral=None, start=True) -> Minikora."""
    started = []

    def make(*args, data_dir=None, ephemeral=None, start=True):
        mk = Minikora(*args, data_dir=data_dir, ephemeral=ephemeral, name=request.node.name)
        started.append(mk)
        if start:
            mk.start()
        return mk

    yield make
    errors = []
    for mk in started:
        if mk.proc is None:
            continue
        try:
            mk.stop()
        except BaseException as e:  # pytest.fail raises a BaseException subclass
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(autouse=True)
def _reset_client_log_cap():
    import clients
    clients.reset_log_cap()
    yield


_topic_seq = itertools.count(1)


@pytest.fixture
def topic_name(request):
    """A fresh, valid topic name per call: topic_name() or topic_name('suffix')."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", request.node.name)[:100]

    def make(suffix=""):
        return "%s-%d-%d%s" % (base, os.getpid(), next(_topic_seq), ("-" + suffix) if suffix else "")
    return make
