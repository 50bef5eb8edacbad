"""A Docker engine for the compose check (tests/test_docker_stack.py).

Uses the engine DOCKER_HOST names or the system's socket when one answers;
otherwise, as root, installs Debian's docker.io if `dockerd` is missing and starts a
private `dockerd` with its own data root, exec root, pid file and socket under a temp
folder, which `stop()` shuts down and deletes. Not root and no engine: `EngineUnavailableError`
with the reason (the test skips loudly with it).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from scripts.waiting import wait_for

SYSTEM_SOCKET = "unix:///var/run/docker.sock"


class EngineUnavailableError(RuntimeError):
    pass


def _docker_client() -> str:
    client = shutil.which("docker")
    if client is None:
        raise EngineUnavailableError("no `docker` client on PATH")
    return client


def _answers(host: str) -> bool:
    try:
        proc = subprocess.run([_docker_client(), "version", "--format", "{{.Server.Version}}"],
                              env={**os.environ, "DOCKER_HOST": host}, capture_output=True, text=True, timeout=20)
    except (subprocess.TimeoutExpired, EngineUnavailableError):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True, timeout=300)
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise EngineUnavailableError(f"apt-get install {' '.join(packages)} failed:\n{proc.stderr[-2000:]}")


class DockerEngine:
    def __init__(self, host: str, description: str, proc: subprocess.Popen[bytes] | None = None,
                 base: Path | None = None, made_bridge: bool = False) -> None:
        self.host = host
        self.description = description
        self.proc = proc
        self.base = base
        self._made_bridge = made_bridge
        self._rules_before: dict[str, list[str]] | None = None
        self._forwarding_before: str | None = None
        self.client = _docker_client()

    @classmethod
    def obtain(cls, log_dir: Path) -> DockerEngine:
        given = os.environ.get("DOCKER_HOST")
        if given and _answers(given):
            return cls(given, f"the engine at DOCKER_HOST={given}")
        if not given and _answers(SYSTEM_SOCKET):
            return cls(SYSTEM_SOCKET, "the system engine (/var/run/docker.sock)")
        if os.geteuid() != 0:
            raise EngineUnavailableError("no Docker engine answers and this is not root, so none can be installed or "
                                    "started (start one, or set DOCKER_HOST)")
        if shutil.which("dockerd") is None or shutil.which("docker") is None:
            _apt_install("docker.io")
        return cls._start_private(log_dir)

    @classmethod
    def _start_private(cls, log_dir: Path) -> DockerEngine:
        # Short path: the socket's path must fit a sockaddr_un (108 bytes).
        base = Path(tempfile.mkdtemp(prefix="sas-dockerd-", dir="/tmp"))
        host = f"unix://{base}/docker.sock"
        had_bridge = Path("/sys/class/net/docker0").exists()
        rules_before = _firewall_rules()
        forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "dockerd.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
                 "--pidfile", str(base / "dockerd.pid"), "--host", host],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        engine = cls(host, f"a private dockerd (Debian docker.io) under {base}", proc, base,
                     made_bridge=not had_bridge)
        engine._rules_before = rules_before
        engine._forwarding_before = forwarding

        try:
            # Ends early when dockerd exits (e.g. another engine holds docker0).
            wait_for(lambda: proc.poll() is not None or _answers(host), timeout=90, interval=0.5,
                     what=f"dockerd on {host} (log: {log_path})")
        except TimeoutError:
            engine.stop()
            raise EngineUnavailableError(f"dockerd did not answer within 90 s; see {log_path}") from None
        if proc.poll() is not None:
            engine.stop()
            raise EngineUnavailableError(f"dockerd exited with {proc.returncode}; see {log_path}")
        return engine

    @property
    def env(self) -> dict[str, str]:
        # The classic builder: BuildKit would want a frontend image from a registry.
        return {"DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}

    def docker(self, *args: str, timeout: float = 600, check: bool = True,
               input_bytes: bytes | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.client, *args], env={**os.environ, **self.env}, capture_output=True,
                              text=input_bytes is None, input=input_bytes, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def version(self) -> str:
        return self.docker("version", "--format", "{{.Server.Version}}").stdout.strip()

    def stop(self) -> None:
        """Shut a private dockerd down (its containers stop with it) and delete its folder."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None
        if self.base is not None:
            _unmount_below(self.base)
            shutil.rmtree(self.base, ignore_errors=True)
        if self._made_bridge and Path("/sys/class/net/docker0").exists():
            subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, timeout=30)
        if self._rules_before is not None:
            _remove_added_rules(self._rules_before)
        if self._forwarding_before is not None:  # dockerd turns IPv4 forwarding on
            with contextlib.suppress(OSError):
                Path("/proc/sys/net/ipv4/ip_forward").write_text(self._forwarding_before + "\n")


def _unmount_below(base: Path) -> None:
    """dockerd leaves its overlay and netns mounts when it dies hard; rmtree cannot cross them."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(base) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def _firewall_rules() -> dict[str, list[str]]:
    """`iptables-save` lines per table (nat, filter); empty when iptables is absent."""
    rules: dict[str, list[str]] = {}
    for table in ("nat", "filter"):
        try:
            out = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            return {}
        rules[table] = [line for line in out.splitlines() if line.startswith(("-A ", ":"))]
    return rules


def _remove_added_rules(before: dict[str, list[str]]) -> None:
    """dockerd leaves its NAT and forwarding rules and DOCKER* chains behind: remove the
    rules and chains that were not there before it started, nothing else."""
    for table, now in _firewall_rules().items():
        old = set(before.get(table, []))
        for rule in [r for r in now if r.startswith("-A ") and r not in old]:
            subprocess.run(["iptables", "-t", table, "-D", *shlex.split(rule)[1:]], capture_output=True, timeout=30)
        # Built-in chains' policies (dockerd sets FORWARD to DROP).
        policies = {r.split()[0]: r.split()[1] for r in old if r.startswith(":") and r.split()[1] != "-"}
        for chain, policy in policies.items():
            if f"{chain} {policy}" not in {" ".join(r.split()[:2]) for r in now}:
                subprocess.run(["iptables", "-t", table, "-P", chain[1:], policy], capture_output=True, timeout=30)
        old_chains = {r.split()[0] for r in old if r.startswith(":")}
        for chain in [r.split()[0] for r in now if r.startswith(":") and r.split()[0] not in old_chains]:
            subprocess.run(["iptables", "-t", table, "-X", chain[1:]], capture_output=True, timeout=30)
