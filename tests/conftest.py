"""pytest fixtures that run the real ./minikora binary (through cluster.Cluster).

* `cluster.Cluster` starts `minikora serve --port 0 ...`, waits (bounded, no sleep-polling) for
  the ready line on stdout, parses the bootstrap servers, keeps draining stdout, collects stderr
  to a file, and on stop() sends SIGTERM and checks the exit code is 0 and the process never
  died on its own; control=True adds --control-stdin.
* `module_cluster` is one ephemeral cluster per test module; `cluster` hands it to a test and
  checks after every test that the process is still alive (shared_cluster(), also used by
  modules with a shared cluster of their own).
* `minikora` is a factory for tests that need their own process (flags, a fixed --data-dir,
  restarts, control=True).  Everything it started is stopped (and checked) at teardown.
* Every test has a bounded run time: `@pytest.mark.timeout(S)` or DEFAULT_TIMEOUT.  A SIGALRM
  raises in the test; a watchdog thread kills everything if even that does not help.

Environment: MINIKORA_BIN (default <repo>/minikora), MINIKORA_TEST_LOGS (default
<repo>/build/test-logs), MINIKORA_TEST_TIMEOUT (default per-test seconds).
"""

import faulthandler
import itertools
import os
import re
import signal
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import LOG_DIR, Cluster, _all_procs  # noqa: E402

DEFAULT_TIMEOUT = float(os.environ.get("MINIKORA_TEST_TIMEOUT", "90"))


# ---------------------------------------------------------------------------------------------
# Per-test time limit
# ---------------------------------------------------------------------------------------------
_config = None  # for the watchdog


def pytest_configure(config):
    global _config
    _config = config
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (default %d s)"
                            % DEFAULT_TIMEOUT)
    LOG_DIR.mkdir(parents=True, exist_ok=True)


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test exceeded its time limit (SIGALRM)")


def _kill_everything_and_exit(limit, nodeid):
    # pytest captures fd 2 during the test and that capture is lost on os._exit: give the
    # terminal back first, so that the message and the stacks are seen
    capman = _config and _config.pluginmanager.getplugin("capturemanager")
    if capman:
        try:
            capman.suspend_global_capture(in_=False)
        except Exception:  # noqa: BLE001 - last gasp; write what we can
            pass
    err = sys.__stderr__
    err.write("\n*** WATCHDOG: %s still running %.0f s past its %.0f s limit; "
              "killing minikora processes and exiting ***\n" % (nodeid, 30, limit))
    err.flush()
    faulthandler.dump_traceback(file=err, all_threads=True)
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


_exitstatus = 0


def pytest_sessionfinish(session, exitstatus):
    global _exitstatus
    _exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    # A failed test can leave a client thread behind (a librdkafka producer that still retries a
    # broker it stopped): the interpreter would wait for it at exit and the run would end at its
    # time limit instead of with the result.  The result is reported by now; leave.
    stray = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if stray:
        sys.__stderr__.write("conftest: %d thread(s) still running after the session (%s); exiting %d\n"
                             % (len(stray), ", ".join(t.name for t in stray[:5]), _exitstatus))
        sys.__stderr__.flush()
        sys.stdout.flush()
        os._exit(_exitstatus)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def module_cluster(request):
    with Cluster(name=request.module.__name__) as mk:
        yield mk


def shared_cluster(mk, request):
    """Body of a per-test fixture over a module's shared cluster `mk` (use with `yield from`):
    after the test, it must still be alive.  If an earlier test killed it (that test has failed
    already), start a fresh one so that the rest of the module still tests something instead of
    failing in a cascade."""
    if not mk.alive():
        sys.stderr.write("\n[conftest] %s: module cluster had died (rc=%s); restarting it\n"
                         % (request.node.nodeid, mk.proc and mk.proc.poll()))
        mk.proc = None
        mk.start()
    yield mk
    if not mk.alive():
        pytest.fail("minikora died during %s (rc=%s)\n%s"
                    % (request.node.nodeid, mk.proc.poll(), mk.diag()))


@pytest.fixture
def cluster(module_cluster, request):
    """The module's shared ephemeral cluster (see shared_cluster)."""
    yield from shared_cluster(module_cluster, request)


@pytest.fixture
def minikora(request):
    """Factory: minikora(*args, data_dir=None, ephemeral=None, start=True, control=False)
    -> Cluster."""
    started = []

    def make(*args, data_dir=None, ephemeral=None, start=True, control=False):
        mk = Cluster(*args, data_dir=data_dir, ephemeral=ephemeral, name=request.node.name,
                     control=control)
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
