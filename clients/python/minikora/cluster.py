"""A minikora cluster for a test suite: started, told apart from other runs, stopped.

    with Minikora(brokers=3) as mk:
        Producer({"bootstrap.servers": mk.bootstrap})
        mk.crash_broker(2)
        mk.reset()

Where minikora comes from, first match wins:
  1. Docker, when `image` (or $MINIKORA_IMAGE) is set: the image runs with its broker ports and
     admin port published on random host ports (as Testcontainers does), and the brokers are then
     told their mapped ports through PUT /v1/advertised.
  2. The binary `binary`, else $MINIKORA_BIN, else `minikora` on $PATH.
  3. A minikora source tree ($MINIKORA_SRC, else the first directory upwards from the current
     one that holds src/main.c and a Makefile naming minikora): its ./minikora, built with
     `make minikora` when it is missing.

A local cluster runs `minikora serve --ephemeral --port 0 --ready-file ...`, so parallel runs
never collide and nothing is left behind; everything about it comes from the ready file.

The admin actions share their names with the npm package (clients/js), in snake_case here and
camelCase there: reset, crash_broker, stop_broker, start_broker, restart_broker, az_down, az_up,
create_topic, delete_topic, create_tenant, create_api_key, delete_tenant, set_advertised,
advertised, cluster, events.  Every acting call sends the admin token.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["Minikora", "MinikoraError", "find_binary"]

READY_TIMEOUT = 60.0


class MinikoraError(RuntimeError):
    """minikora could not be found, built, started, or answered an admin call with an error
    (.status and .body then say what it answered)."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status = status
        self.body = body


# ---------------------------------------------------------------------------------------------
# Finding the binary
# ---------------------------------------------------------------------------------------------
def _source_tree(start):
    """The nearest directory at or above `start` that is a minikora checkout, or None."""
    d = Path(start).resolve()
    for cand in [d] + list(d.parents):
        mf = cand / "Makefile"
        if (cand / "src" / "main.c").is_file() and mf.is_file() and "minikora" in mf.read_text(errors="replace"):
            return cand
    return None


def find_binary(binary=None, build=True):
    """The path of a minikora binary (see the module docstring for the order), building it in a
    source tree when needed and `build` allows.  Raises MinikoraError when there is none."""
    for cand in (binary, os.environ.get("MINIKORA_BIN")):
        if cand:
            if not (Path(cand).is_file() and os.access(cand, os.X_OK)):
                raise MinikoraError("minikora binary %s is not an executable file" % cand)
            return str(Path(cand).resolve())
    on_path = shutil.which("minikora")
    if on_path:
        return on_path
    roots = [os.environ.get("MINIKORA_SRC"), os.getcwd(), Path(__file__).parent]
    for r in roots:
        tree = _source_tree(r) if r else None
        if not tree:
            continue
        exe = tree / "minikora"
        if not exe.is_file() and build:
            jobs = str(min(os.cpu_count() or 2, 4))
            p = subprocess.run(["make", "-C", str(tree), "-j" + jobs, "minikora"], capture_output=True, text=True)
            if p.returncode != 0:
                raise MinikoraError("`make minikora` failed in %s:\n%s" % (tree, (p.stdout + p.stderr)[-3000:]))
        if exe.is_file():
            return str(exe)
    raise MinikoraError("no minikora binary: set MINIKORA_BIN, put minikora on PATH, run from a minikora "
                        "checkout (or set MINIKORA_SRC), or set MINIKORA_IMAGE to use Docker")


# ---------------------------------------------------------------------------------------------
# The cluster
# ---------------------------------------------------------------------------------------------
class Minikora:
    """One minikora cluster (see the module docstring).  Attributes once started:

    bootstrap     "host:port,..." for bootstrap.servers
    admin         the admin API's URL ("http://host:port")
    admin_token   the bearer token of its acting routes
    s3            the bundled S3 server's endpoint when the cluster runs one, else None
    ready         the ready file as a dict (local clusters)
    """

    def __init__(self, *args, brokers=None, azs=None, binary=None, image=None, env=None,
                 ready_timeout=READY_TIMEOUT, log_path=None):
        self.args = [str(a) for a in args]
        self.brokers = brokers
        self.azs = azs
        self.binary = binary
        self.image = image if image is not None else os.environ.get("MINIKORA_IMAGE") or None
        self.env = env
        self.ready_timeout = ready_timeout
        self.log_path = log_path
        self.proc = None
        self.container = None
        self.bootstrap = None
        self.admin = None
        self.admin_token = None
        self.s3 = None
        self.ready = None
        self._tmp = None

    # -- lifecycle -----------------------------------------------------------------------
    def _serve_args(self):
        a = []
        if self.brokers is not None:
            a += ["--brokers", str(self.brokers)]
        if self.azs is not None:
            a += ["--azs", str(self.azs)]
        return a + self.args

    def start(self):
        """Start the cluster and wait until it is ready; returns self."""
        if self.proc or self.container:
            return self
        if self.image:
            self._start_docker()
        else:
            self._start_local()
        return self

    def _start_local(self):
        exe = find_binary(self.binary)
        self._tmp = tempfile.mkdtemp(prefix="minikora-py-")
        ready = Path(self._tmp) / "ready.json"
        log = Path(self.log_path) if self.log_path else Path(self._tmp) / "minikora.log"
        self.log_path = str(log)
        argv = [exe, "serve", "--ephemeral", "--port", "0", "--ready-file", str(ready)] + self._serve_args()
        env = dict(os.environ, **(self.env or {}))
        with open(log, "ab") as lf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                tail = self.log_tail()
                self.stop()
                raise MinikoraError("minikora exited (%s) before it was ready:\n%s" % (rc, tail))
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise MinikoraError("minikora not ready within %.0f s:\n%s" % (self.ready_timeout, tail))
            time.sleep(0.02)  # bounded by the deadline; the ready file is renamed into place whole
        self.ready = json.loads(ready.read_text())
        self.bootstrap = self.ready["bootstrap"]
        self.admin = self.ready.get("admin")
        self.admin_token = self.ready.get("admin_token")
        self.s3 = self.ready.get("s3")

    def _docker(self, *args, check=True, timeout=120):
        p = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise MinikoraError("docker %s failed: %s" % (" ".join(args[:2]), p.stderr.strip()[-2000:]))
        return p.stdout.strip()

    def _start_docker(self):
        if not shutil.which("docker"):
            raise MinikoraError("MINIKORA_IMAGE is set but there is no docker command")
        n = int(self.brokers or 3)
        token = os.urandom(16).hex()
        ports = []
        for i in range(n):
            ports += ["-p", "127.0.0.1::%d" % (9092 + i)]
        self.container = self._docker(
            "run", "-d", "--rm", "-e", "MINIKORA_ADMIN_TOKEN=" + token, "-e", "MINIKORA_ADVERTISE_HOST=127.0.0.1",
            *ports, "-p", "127.0.0.1::8080", self.image, "serve", "--ephemeral", "--brokers", str(n),
            "--tls-port", "-1", *(["--azs", str(self.azs)] if self.azs else []), *self.args)
        self.admin_token = token

        def mapped(port):
            out = self._docker("port", self.container, "%d/tcp" % port)
            return int(out.splitlines()[0].rsplit(":", 1)[1])
        self.admin = "http://127.0.0.1:%d" % mapped(8080)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                self._call("GET", "/readyz")
                break
            except (MinikoraError, OSError):
                if time.monotonic() > deadline:
                    logs = self._docker("logs", "--tail", "40", self.container, check=False)
                    self.stop()
                    raise MinikoraError("container not ready within %.0f s:\n%s" % (self.ready_timeout, logs))
                time.sleep(0.1)  # bounded by the deadline
        # The brokers listen on 9092.. inside; clients outside must be told the mapped ports.
        adv = self.set_advertised({i + 1: "127.0.0.1:%d" % mapped(9092 + i) for i in range(n)})
        self.bootstrap = adv["bootstrap"]

    def stop(self, timeout=20):
        """Stop the cluster (SIGTERM: a clean stop that removes its data).  Returns the exit
        status (0 for a clean stop), or None for a container or when nothing ran."""
        rc = None
        if self.proc is not None:
            p, self.proc = self.proc, None
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
        if self.container is not None:
            c, self.container = self.container, None
            self._docker("rm", "-f", c, check=False)
        if self._tmp:
            self._last_log = self.log_tail()  # the log may live in the directory removed now
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def alive(self):
        if self.container:
            return self._docker("inspect", "-f", "{{.State.Running}}", self.container, check=False) == "true"
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        """The last n lines of minikora's output (kept after stop())."""
        try:
            lines = Path(self.log_path).read_text(errors="replace").splitlines()
        except (OSError, TypeError):
            return getattr(self, "_last_log", None) or "(no log)"
        return "\n".join(lines[-n:])

    # -- the admin API -------------------------------------------------------------------
    def _call(self, method, path, body=None):
        if not self.admin:
            raise MinikoraError("this cluster has no admin API (--admin-port -1)")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.admin + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.admin_token:
            req.add_header("Authorization", "Bearer " + self.admin_token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            msg = body.get("message", text) if isinstance(body, dict) else text
            raise MinikoraError("%s %s: %d %s" % (method, path, e.code, msg), status=e.code, body=body) from None
        return json.loads(text) if text.startswith(("{", "[")) else text

    def reset(self):
        """Delete every topic, group and committed offset (tenants and keys stay): between tests."""
        return self._call("POST", "/v1/reset")

    def crash_broker(self, broker):
        """Stop broker `broker` (1-based id) abruptly; leaders are elected afterwards."""
        return self._call("POST", "/v1/brokers/%d/crash" % broker)["broker"]

    def stop_broker(self, broker):
        """Controlled shutdown of a broker: leadership moves first."""
        return self._call("POST", "/v1/brokers/%d/stop" % broker)["broker"]

    def start_broker(self, broker):
        return self._call("POST", "/v1/brokers/%d/start" % broker)["broker"]

    def restart_broker(self, broker):
        return self._call("POST", "/v1/brokers/%d/restart" % broker)["broker"]

    def az_down(self, az):
        """Crash every broker of an AZ ("az-1" or 1)."""
        return self._call("POST", "/v1/azs/%s/down" % _az(az))

    def az_up(self, az):
        return self._call("POST", "/v1/azs/%s/up" % _az(az))

    def create_topic(self, name, partitions=None, replication_factor=None, configs=None):
        """Create a topic; partitions and replication factor default to the cluster's settings."""
        body = {"name": name}
        if partitions is not None:
            body["partitions"] = partitions
        if replication_factor is not None:
            body["replication_factor"] = replication_factor
        if configs:
            body["configs"] = {k: str(v) for k, v in configs.items()}
        return self._call("POST", "/v1/topics", body)["topic"]

    def delete_topic(self, name):
        return self._call("DELETE", "/v1/topics/" + urllib.parse.quote(name, safe=""))

    def create_tenant(self, tenant_id):
        """A tenant (logical cluster); its clients authenticate with create_api_key()'s key."""
        return self._call("POST", "/v1/tenants", {"id": tenant_id})

    def create_api_key(self, tenant_id):
        """-> (key, secret) for SASL PLAIN or SCRAM-SHA-256/512 as the tenant."""
        j = self._call("POST", "/v1/tenants/%s/keys" % urllib.parse.quote(tenant_id, safe=""))
        return j["key"], j["secret"]

    def delete_tenant(self, tenant_id):
        return self._call("DELETE", "/v1/tenants/" + urllib.parse.quote(tenant_id, safe=""))

    def set_advertised(self, mapping):
        """Tell clients other addresses for brokers: {1: "host:port", 2: port, 3: None}."""
        return self._call("PUT", "/v1/advertised", {str(k): v for k, v in mapping.items()})

    def advertised(self):
        return self._call("GET", "/v1/advertised")

    def cluster(self):
        return self._call("GET", "/v1/cluster")

    def events(self, type=None, since=None):
        q = {k: v for k, v in (("type", type), ("since", since)) if v is not None}
        return self._call("GET", "/v1/events" + ("?" + urllib.parse.urlencode(q) if q else ""))["events"]


def _az(az):
    return "az-%d" % az if isinstance(az, int) else str(az)
