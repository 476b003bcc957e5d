"""pytest plugin: a minikora cluster for the whole session, reset between tests.

Registered through the `pytest11` entry point when the package is installed
(`pip install ./clients/python`), so a test suite needs no conftest at all:

    def test_orders(minikora, kafka_reset):
        p = Producer({"bootstrap.servers": minikora.bootstrap})
        ...
        minikora.crash_broker(2)

Fixtures:
  minikora     (session) a started minikora.Minikora: .bootstrap, .admin, .admin_token, .s3, and
               the admin actions (reset, crash_broker, az_down, create_tenant, ...)
  kafka_reset  (function) POST /v1/reset before the test: it starts with no topics, groups or
               offsets (tenants and their keys stay)

Settings (command line, else ini file, else environment):
  --minikora-args "ARGS"   extra `minikora serve` flags (ini: minikora_args; env: MINIKORA_ARGS),
                           e.g. "--brokers 3 --set num.partitions=3"
  MINIKORA_BIN, MINIKORA_SRC, MINIKORA_IMAGE choose the binary or Docker image (see cluster.py).
Also exported for the test's own code: KAFKA_BOOTSTRAP, MINIKORA_ADMIN, MINIKORA_ADMIN_TOKEN.
"""

import os
import shlex

import pytest

from minikora.cluster import Minikora


def pytest_addoption(parser):
    parser.addoption("--minikora-args", default=None,
                     help="extra `minikora serve` flags for the session cluster (env MINIKORA_ARGS)")
    parser.addini("minikora_args", "extra `minikora serve` flags for the session cluster", default="")


def _serve_args(config):
    text = config.getoption("--minikora-args")
    if text is None:
        text = config.getini("minikora_args") or os.environ.get("MINIKORA_ARGS", "")
    return shlex.split(text)


@pytest.fixture(scope="session")
def minikora(request):
    """A minikora cluster for the session, stopped at its end."""
    mk = Minikora(*_serve_args(request.config))
    mk.start()
    saved = {k: os.environ.get(k) for k in ("KAFKA_BOOTSTRAP", "MINIKORA_ADMIN", "MINIKORA_ADMIN_TOKEN")}
    os.environ["KAFKA_BOOTSTRAP"] = mk.bootstrap
    if mk.admin:
        os.environ["MINIKORA_ADMIN"] = mk.admin
    if mk.admin_token:
        os.environ["MINIKORA_ADMIN_TOKEN"] = mk.admin_token
    try:
        yield mk
    finally:
        rc = mk.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if rc not in (0, None):
            pytest.fail("minikora exited %s at the end of the session:\n%s" % (rc, mk.log_tail()))


@pytest.fixture
def kafka_reset(minikora):
    """Empty the session cluster before the test (POST /v1/reset); yields the cluster."""
    minikora.reset()
    yield minikora
