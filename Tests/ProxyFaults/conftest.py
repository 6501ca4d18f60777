"""Fixtures of the proxy fault suite: a real auth-gateway process (the binary `swift build` made) in front of the
fault upstream, on loopback, against the PostgreSQL and Redis that `deploy/local.sh test` started."""

import base64
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import pytest

from fault_upstream import FaultUpstream

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(statement):
    """Runs one statement on the test server as the platform's role (which may create databases)."""
    subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-qAt", "-h", os.environ["POSTGRES_HOST"], "-p", os.environ["POSTGRES_PORT"],
         "-U", os.environ["POSTGRES_USER"], "-d", os.environ["POSTGRES_DATABASE"], "-c", statement],
        env={**os.environ, "PGPASSWORD": os.environ["POSTGRES_PASSWORD"]}, check=True, capture_output=True)


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Gateway:
    """The gateway process: where it listens, its PID, and its log for failure messages."""

    def __init__(self, tmp):
        self.port = free_port()
        self.log_path = tmp / "auth-gateway.log"
        # A database of its own, so the gateway creates its first admin (with our password) there.
        self.database = f"proxy_faults_{os.urandom(4).hex()}"
        psql(f'CREATE DATABASE "{self.database}"')
        self.username = "fault-admin"
        # The gateway asks for a letter and a digit; random base64 alone lacks a digit one time in fifteen.
        self.password = base64.b64encode(os.urandom(12)).decode() + "-a1"
        binary = pathlib.Path(os.environ.get("PLATFORM_BIN_DIR", ROOT / ".build" / "debug")) / "auth-gateway"
        if not binary.exists():
            raise RuntimeError(f"{binary} does not exist: build first (swift build)")
        self.upstream = FaultUpstream()
        closed = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "POSTGRES_DATABASE": self.database,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "AUTH_JWT_PRIVATE_KEY": base64.b64encode(os.urandom(32)).decode(),
            "AUTH_BCRYPT_COST": "4",
            "ADMIN_USERNAME": self.username,
            "ADMIN_PASSWORD": self.password,
            "ADMIN_EMAIL": f"{self.username}@example.com",
            "RATELIMIT_ADMIN": "1000000",
            "RATELIMIT_ANONYMOUS": "1000000",
            "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "2",
            "LOG_LEVEL": "warning",
            "SERVICE_URL_PIPELINE_RUNNER": f"http://127.0.0.1:{self.upstream.port}",
            "SERVICE_URL_CONNECTIONS_VAULT": closed,
            "SERVICE_URL_SCHEDULER": closed,
            "SERVICE_URL_FILE_STORAGE": closed,
            "SERVICE_URL_OBSERVABILITY": closed,
        }
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(binary)], env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.process.pid
        try:
            wait_until(lambda: self.health() == 200 or self.process.poll() is not None, 60, "the gateway's /health")
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited at start:\n{self.log_tail()}")
            self.token = self.login()
        except BaseException:
            self.stop()
            raise

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def health(self):
        try:
            with urllib.request.urlopen(self.url("/health"), timeout=2) as r:
                return r.status
        except Exception:
            return None

    def login(self):
        request = urllib.request.Request(
            self.url("/api/v1/auth/login"), method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": self.username, "password": self.password}).encode())
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)["access_token"]

    def rss_kib(self):
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS for the gateway")

    def log_tail(self, lines=40):
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def assert_alive(self):
        """Same process, still answering /health."""
        if self.process.poll() is not None:
            pytest.fail(f"the gateway (PID {self.pid}) died with status {self.process.returncode}:\n{self.log_tail()}")
        wait_until(lambda: self.health() == 200, 10, "the gateway's /health after the case")
        assert self.process.pid == self.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.upstream.close()
        self.log.close()
        psql(f'DROP DATABASE IF EXISTS "{self.database}"')


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    g = Gateway(tmp_path_factory.mktemp("gateway"))
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def stays_up(gateway):
    """Every case ends with the same gateway process answering /health."""
    yield
    gateway.assert_alive()
