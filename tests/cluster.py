"""The one way the tests run ./minikora: `Cluster`.

* `Cluster(*extra, data_dir=None, ephemeral=None, name=..., control=False)` is one
  `minikora serve --port 0 --host 127.0.0.1 ...` process (MINIKORA_BIN, default <repo>/minikora).
  start() waits (bounded, no sleep-polling) for the ready line on stdout in _wait_ready(), the
  only ready-line wait; from it come .bootstrap, .brokers [(host, port)], .ready_line and
  .admin_url (None when the line names no admin URL).  stdout keeps being drained; stderr goes to
  a file under MINIKORA_TEST_LOGS; stop() sends SIGTERM and (check=True) requires exit 0 and no
  earlier death.  A started Cluster is also a context manager that stops it on exit.
* control=True adds `--control-stdin` with a pipe on stdin: control("crash 3") writes one line
  and waits (bounded) for its single `control: ...` answer; crash()/start_broker()/stats(), and
  .down (brokers crashed/stopped that way) with up_brokers().
* wire(broker=None) opens a kwire connection to broker `broker` (1-based id) or to the first
  running broker that accepts one.
* .admin_token is the admin API's bearer token: the `--admin-token` given in `extra`, else the one
  the process generated, read from <data dir>/admin-token (the data dir named by the ready line);
  admin_headers() is {"Authorization": "Bearer <token>"}, for every request that acts.

Every process started here is registered in _all_procs, so that the conftest watchdog can kill
it, and gets SIGKILL if pytest dies (PR_SET_PDEATHSIG).
"""

import ctypes
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import kwire

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("MINIKORA_BIN", REPO / "minikora"))
LOG_DIR = Path(os.environ.get("MINIKORA_TEST_LOGS", REPO / "build" / "test-logs"))
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
CONTROL_TIMEOUT = 15.0
READY_RE = re.compile(r"bootstrap servers (\S+)")
ADMIN_RE = re.compile(r"\badmin (http://\S+)")
DATA_RE = re.compile(r"; data (.+?); [0-9.]+ ms\)")

_all_procs = []  # every Popen we started, for the watchdog's last resort
_seq = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: if pytest dies, the broker gets SIGKILL instead of lingering.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


class ControlError(AssertionError):
    pass


class Cluster:
    """One `minikora serve` process (all its brokers)."""

    def __init__(self, *extra, data_dir=None, ephemeral=None, name="minikora", control=False):
        self.control_stdin = control
        self.extra = (["--control-stdin"] if control else []) + [str(a) for a in extra]
        self.data_dir = str(data_dir) if data_dir is not None else None
        self.ephemeral = (data_dir is None) if ephemeral is None else ephemeral
        self.name = "%s-%d-%d" % (re.sub(r"[^\w.-]", "_", name)[:80], os.getpid(), next(_seq))
        self.stderr_path = LOG_DIR / (self.name + ".1.stderr")
        self.proc = None
        self.bootstrap = None
        self.brokers = []
        self.ready_line = None
        self.stdout_lines = []
        self.starts = 0
        self.control_q = None
        self.down = set()  # brokers crashed/stopped through control()

    # -- lifecycle -------------------------------------------------------------------------
    def argv(self):
        a = [str(BIN), "serve", "--port", "0", "--host", "127.0.0.1"]
        if self.ephemeral:
            a.append("--ephemeral")
        if self.data_dir:
            a += ["--data-dir", self.data_dir]
        return a + self.extra

    def start(self, timeout=READY_TIMEOUT):
        """Start the process and wait for its ready line; returns self."""
        if not BIN.exists():
            pytest.fail("minikora binary not found at %s (run `make minikora`)" % BIN)
        self.starts += 1
        self.stderr_path = LOG_DIR / ("%s.%d.stderr" % (self.name, self.starts))
        errf = open(self.stderr_path, "ab")
        errf.write(("\n==== start #%d: %s\n" % (self.starts, " ".join(self.argv()))).encode())
        errf.flush()
        stdin = subprocess.PIPE if self.control_stdin else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.argv(), stdin=stdin,
                                     stdout=subprocess.PIPE, stderr=errf,
                                     preexec_fn=_die_with_parent, cwd=str(REPO))
        errf.close()
        _all_procs.append(self.proc)
        lines = queue.Queue()
        ctl = self.control_q = queue.Queue()
        proc = self.proc

        def reader():
            # 'control:' answers go to their own queue; everything else to `lines`
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout_lines.append(line)
                (ctl if line.startswith("control:") else lines).put(line)
            lines.put(None)  # EOF
            ctl.put(None)

        threading.Thread(target=reader, daemon=True).start()
        self._wait_ready(lines, timeout)
        self.down = set()
        return self

    def _wait_ready(self, lines, timeout):
        """The ready-line wait: bounded by `timeout`, fails the test on timeout or early EOF."""
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
                    rc = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    rc = "still running"
                pytest.fail("minikora closed stdout before the ready line (rc=%s)\n%s"
                            % (rc, self.diag()))
            m = READY_RE.search(line)
            if m and "ready" in line:
                self.ready_line = line
                self.bootstrap = m.group(1)
                self.brokers = kwire.parse_bootstrap(self.bootstrap)
                return

    @property
    def admin_token(self):
        """The admin bearer token of this process (see the module docstring), or None when the
        process has no admin API."""
        if "--admin-token" in self.extra:
            return self.extra[self.extra.index("--admin-token") + 1]
        m = DATA_RE.search(self.ready_line or "")
        if not m or not self.admin_url:
            return None
        try:
            return (Path(m.group(1)) / "admin-token").read_text().strip()
        except OSError:
            return None

    def admin_headers(self):
        """{"Authorization": "Bearer <token>"} for the admin API ({} when there is no token)."""
        t = self.admin_token
        return {"Authorization": "Bearer " + t} if t else {}

    @property
    def admin_url(self):
        """The admin URL of the last start's ready line, or None if it names none."""
        m = ADMIN_RE.search(self.ready_line or "")
        return m.group(1) if m else None

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
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
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

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    # -- brokers and connections -----------------------------------------------------------
    def addr(self, broker):
        """(host, port) of broker `broker` (1-based id)."""
        return self.brokers[broker - 1]

    def up_brokers(self):
        """[(id, (host, port))] of the brokers not crashed/stopped through control()."""
        return [(i + 1, hp) for i, hp in enumerate(self.brokers) if i + 1 not in self.down]

    def wire(self, broker=None, timeout=10.0, cls=kwire.Conn):
        """A kwire connection (`cls`) to `broker`, or to the first running broker that accepts
        one (AssertionError if none does)."""
        if broker:
            return cls(*self.addr(broker), timeout=timeout)
        last = None
        for _, (h, p) in self.up_brokers():
            try:
                return cls(h, p, timeout=timeout)
            except OSError as e:
                last = e
        raise AssertionError("no broker accepts connections (%s)" % last)

    # -- control (control=True) ------------------------------------------------------------
    def control(self, cmd, check=True, timeout=None):
        """Send one control line, return its answer line (without 'control: ')."""
        assert self.control_stdin, "control() needs Cluster(control=True)"
        self.assert_alive("control %r" % cmd)
        while True:  # drop stale answers (none expected)
            try:
                self.control_q.get_nowait()
            except queue.Empty:
                break
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        try:
            line = self.control_q.get(timeout=timeout or CONTROL_TIMEOUT)
        except queue.Empty:
            raise ControlError("no answer to control %r within %.0f s\n%s"
                               % (cmd, timeout or CONTROL_TIMEOUT, self.diag()))
        if line is None:
            raise ControlError("minikora closed stdout after control %r\n%s" % (cmd, self.diag()))
        ans = line[len("control:"):].strip()
        if check and not (ans.startswith("ok ") or ans.startswith("stats ")):
            raise ControlError("control %r answered %r" % (cmd, line))
        parts = cmd.split()
        if ans.startswith("ok "):
            if parts[0] in ("crash", "stop"):
                self.down.add(int(parts[1]))
            elif parts[0] == "start":
                self.down.discard(int(parts[1]))
        return ans

    def crash(self, broker):
        return self.control("crash %d" % broker)

    def start_broker(self, broker):
        return self.control("start %d" % broker)

    def stats(self):
        ans = self.control("stats")
        assert ans.startswith("stats "), ans
        return json.loads(ans[len("stats "):])

    # -- diagnostics -----------------------------------------------------------------------
    def stderr_text(self):
        try:
            return Path(self.stderr_path).read_text("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=40):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()[-16384:]
        except OSError:
            return "(no stderr file)"
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-n:])

    def diag(self, proc_rc=None):
        return ("  argv: %s\n  stdout: %r\n  stderr (%s), last lines:\n%s%s"
                % (" ".join(self.argv()), self.stdout_lines[-5:], self.stderr_path,
                   "\n".join("    " + l for l in self.stderr_tail().splitlines()), self.crash_stack()))

    def crash_stack(self):
        """The stack minikora printed on a fatal signal, resolved to functions and lines."""
        text = self.stderr_text()
        at = text.rfind("minikora: fatal signal; stack:")
        offs = re.findall(r"minikora\(\+(0x[0-9a-f]+)\)", text[at:]) if at >= 0 else []
        if not offs:
            return ""
        try:
            out = subprocess.run(["addr2line", "-f", "-i", "-C", "-e", str(BIN)] + offs,
                                 capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError) as e:
            return "\n  crash stack: addr2line failed: %s" % e
        return "\n  crash stack (addr2line):\n" + "\n".join("    " + l for l in out.splitlines())

    def vm_status(self):
        """{'VmPeak': kB, 'VmRSS': kB, ...} from /proc (Linux)."""
        out = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.startswith("Vm"):
                    out[k] = int(v.split()[0])
        return out
