"""minikora.Minikora without pytest fixtures: a context manager, the binary search, Docker."""

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from minikora import Minikora, MinikoraError, find_binary


def test_context_manager_round_trip_with_kafka_python():
    from kafka import KafkaConsumer, KafkaProducer
    with Minikora(brokers=1, azs=1) as mk:
        assert mk.alive() and len(mk.bootstrap.split(",")) == 1
        assert mk.ready["brokers"][0]["az"] == "az-1"
        data_dir = Path(mk.ready["data_dir"])
        assert data_dir.is_dir()
        p = KafkaProducer(bootstrap_servers=mk.bootstrap)
        p.send("cm", b"hello").get(timeout=30)
        p.close()
        c = KafkaConsumer("cm", bootstrap_servers=mk.bootstrap, auto_offset_reset="earliest",
                          consumer_timeout_ms=10000)
        assert [m.value for m in c] == [b"hello"]
        c.close()
        proc = mk.proc
    assert proc.returncode == 0  # a clean stop
    assert not mk.alive() and not data_dir.exists()
    assert mk.stop() is None  # twice is harmless


def test_extra_args_and_start_failure(tmp_path):
    with Minikora("--set", "num.partitions=4", brokers=1, azs=1) as mk:
        mk.create_topic("four")
        assert mk.cluster()["partitions"] == 4
    with pytest.raises(MinikoraError) as e:
        Minikora("--no-such-flag").start()
    assert "exited (2)" in str(e.value) and "unknown option" in str(e.value)


def test_find_binary_order(tmp_path, monkeypatch):
    real = find_binary()
    assert os.access(real, os.X_OK)
    monkeypatch.setenv("MINIKORA_BIN", str(tmp_path / "nope"))
    with pytest.raises(MinikoraError):
        find_binary()
    monkeypatch.setenv("MINIKORA_BIN", real)
    assert find_binary() == str(Path(real).resolve())
    assert find_binary(binary=real) == str(Path(real).resolve())
    # No binary anywhere: a clear error that names the ways out.
    monkeypatch.delenv("MINIKORA_BIN")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("MINIKORA_SRC", raising=False)
    monkeypatch.chdir(tmp_path)
    import minikora.cluster as mc
    monkeypatch.setattr(mc, "__file__", str(tmp_path / "x.py"))
    with pytest.raises(MinikoraError) as e:
        find_binary()
    assert "MINIKORA_BIN" in str(e.value) and "MINIKORA_IMAGE" in str(e.value)


def test_find_binary_builds_in_a_source_tree(tmp_path, monkeypatch):
    """A checkout without ./minikora gets `make minikora`; a fake tree with a Makefile that
    writes a script proves the call without a real build."""
    tree = tmp_path / "minikora-src"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (tree / "Makefile").write_text("minikora:\n\tprintf '#!/bin/sh\\necho minikora 0\\n' > minikora && chmod +x minikora\n")
    monkeypatch.delenv("MINIKORA_BIN", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("MINIKORA_SRC", str(tree / "src"))
    exe = find_binary()
    assert exe == str(tree / "minikora")
    assert subprocess.run([exe], capture_output=True, text=True).stdout == "minikora 0\n"


def _docker_engine():
    if not shutil.which("docker"):
        return "no docker command"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "no Docker engine reachable (`docker info` failed)"
    return None


def test_docker_image_with_random_host_ports():
    image = os.environ.get("MINIKORA_IMAGE")
    if not image:
        pytest.skip("MINIKORA_IMAGE is not set (the Docker path runs an image you built)")
    why = _docker_engine()
    if why:
        pytest.skip(why)
    with Minikora(brokers=2, image=image) as mk:
        assert mk.container and all(int(hp.rsplit(":", 1)[1]) not in (9092, 9093)
                                    for hp in mk.bootstrap.split(","))
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=mk.bootstrap)
        p.send("docker-" + uuid.uuid4().hex[:6], b"x").get(timeout=30)
        p.close()
