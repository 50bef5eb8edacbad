"""Test-only servers: S3 (moto) for the archive and a private MariaDB a fault test
can stop and restart. The stand-ins the local stack also uses are in scripts/servers.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from scripts.servers import ServerProcess
from scripts.waiting import port_open


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
        return (bool(shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists())
                and bool(shutil.which("mariadb-install-db")))

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
