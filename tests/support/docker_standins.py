"""Images for the compose check that cannot be pulled here (tests/test_docker_stack.py).

- The Python base of the six Dockerfile.<role> (their FROM, e.g.
  python:3.11.10-slim-bookworm): pulled when the registry answers; otherwise a
  stand-in made with `debootstrap --variant=minbase <suite>` (Debian's python3 with pip,
  `python` on PATH, pip allowed to install system-wide as in the official image, and the
  machine's own extra CA certificates so that pip reaches the index the way the host's
  pip does) and `docker import`. The root file system is cached as a tar keyed by its
  recipe, so a second run on the same machine skips debootstrap.
- The infrastructure stand-ins named in tests/docker/compose.standins.yml, built from
  tests/docker/<service>/Dockerfile with the PyPI pins of requirements-dev.txt as
  `<PACKAGE>_VERSION` build arguments.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.support.docker_engine import DockerEngine

ROOT = Path(__file__).resolve().parents[2]
STANDIN_DIR = ROOT / "tests" / "docker"
OVERRIDE = STANDIN_DIR / "compose.standins.yml"
# Build context per stand-in when not tests/docker: the feeds serve tests/fixtures/news.
CONTEXTS = {"feeds": ROOT / "tests"}
STANDIN_LABEL = "org.stock-analysis.standin"
# What the official python:<version>-slim-<suite> gives a Dockerfile: python and pip.
BASE_PACKAGES = ["python3", "python3-pip", "python-is-python3", "ca-certificates"]
RECIPE_VERSION = "1"  # bump when the bootstrap steps below change
EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")


def role_base_image() -> str:
    """The one FROM image of the Dockerfile.<role> files."""
    bases = {m.group(1) for path in ROOT.glob("Dockerfile.*")
             for m in re.finditer(r"^FROM\s+(\S+)", path.read_text(), flags=re.M)}
    if len(bases) != 1:
        raise RuntimeError(f"expected one base image in Dockerfile.*, found {sorted(bases)}")
    return bases.pop()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stock-analysis-docker-check"


def _debian_mirror(suite: str) -> str | None:
    """The machine's own Debian mirror for `suite` (deb822 or one-line apt sources)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, flags=re.M))
            if suite in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return fields.get("URIs", "").split()[0]
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if path.is_file():
            for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", path.read_text(), flags=re.M):
                if m.group(2) == suite:
                    return m.group(1)
    return None  # debootstrap's default mirror


def _extra_ca_files() -> list[Path]:
    return sorted(EXTRA_CA_DIR.glob("*.crt")) if EXTRA_CA_DIR.is_dir() else []


def _recipe_key(tag: str, suite: str) -> str:
    h = hashlib.sha256(f"{RECIPE_VERSION}|{tag}|{suite}|{','.join(BASE_PACKAGES)}".encode())
    for ca in _extra_ca_files():
        h.update(ca.read_bytes())
    return h.hexdigest()[:16]


def _bootstrap_rootfs_tar(tag: str, suite: str, tar_path: Path, log: Path) -> None:
    if shutil.which("debootstrap") is None:
        if os.geteuid() != 0:
            raise RuntimeError("debootstrap is missing and this is not root")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], env=env, check=True, capture_output=True,
                       timeout=600)
    work = Path(tempfile.mkdtemp(prefix="sas-rootfs-", dir=str(tar_path.parent)))
    rootfs = work / "rootfs"
    try:
        mirror = _debian_mirror(suite)
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", suite, str(rootfs)]
        with open(log, "ab") as out:
            subprocess.run(cmd + ([mirror] if mirror else []), stdout=out, stderr=subprocess.STDOUT, check=True,
                           timeout=900)
            # pip installs system-wide, as in the official image (PEP 668 marker removed).
            for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
                marker.unlink()
            # Trust what this machine trusts: its pip reaches the index through these.
            for ca in _extra_ca_files():
                shutil.copy(ca, rootfs / "usr/local/share/ca-certificates" / ca.name)
            subprocess.run(["chroot", str(rootfs), "update-ca-certificates"], stdout=out, stderr=subprocess.STDOUT,
                           check=True, timeout=120)
        for junk in ["var/cache/apt/archives", "var/lib/apt/lists"]:
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tar_path.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=600)
        partial.rename(tar_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_python_base(engine: DockerEngine, log: Path) -> str:
    """Make the roles' base image available in `engine`; returns how it was had."""
    tag = role_base_image()
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        label = engine.docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{STANDIN_LABEL}"}}}}',
                              tag).stdout.strip()
        stand_in = " (a debootstrap stand-in)" if label and label != "<no value>" else ""
        return f"{tag}: already in the engine{stand_in}"
    pull = engine.docker("pull", tag, check=False, timeout=300)
    if pull.returncode == 0:
        return f"{tag}: pulled from the registry"
    suite = tag.rsplit("-", 1)[-1]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tar_path = folder / f"python-base-{suite}-{_recipe_key(tag, suite)}.tar"
    started = time.monotonic()
    how = "cached root file system"
    if not tar_path.exists():
        _bootstrap_rootfs_tar(tag, suite, tar_path, log)
        how = f"debootstrap --variant=minbase {suite} in {time.monotonic() - started:.0f} s"
    changes = ["ENV LANG=C.UTF-8", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               f"LABEL {STANDIN_LABEL}=debootstrap", 'CMD ["python3"]']
    args = ["import"] + [a for c in changes for a in ("--change", c)] + [str(tar_path), tag]
    engine.docker(*args, timeout=600)
    with open(log, "a") as out:
        out.write(f"docker pull {tag} failed:\n{pull.stderr}\n")
    return f"{tag}: pull failed (reason in {log.name}); stand-in from {how}"


def standin_images() -> dict[str, str]:
    """service -> stand-in image tag, as the override names them."""
    services = yaml.safe_load(OVERRIDE.read_text())["services"]
    return {name: svc["image"] for name, svc in services.items()
            if "image" in svc and (STANDIN_DIR / name / "Dockerfile").exists()}


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for req in (ROOT / "requirements.txt", ROOT / "requirements-dev.txt"):
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", req.read_text(), flags=re.M):
            pins[re.sub(r"[^A-Z0-9]", "_", m.group(1).upper())] = m.group(2)
    return pins


def build_args(dockerfile: Path) -> list[str]:
    """`--build-arg NAME=version` for each `ARG <PACKAGE>_VERSION`, from the requirements pins."""
    pins = _pins()
    args: list[str] = []
    for name in re.findall(r"^ARG\s+([A-Z0-9_]+)_VERSION\b", dockerfile.read_text(), flags=re.M):
        if name not in pins:
            raise RuntimeError(f"{dockerfile}: ARG {name}_VERSION has no pin in requirements(-dev).txt")
        args += ["--build-arg", f"{name}_VERSION={pins[name]}"]
    return args


def build_standins(engine: DockerEngine, log_dir: Path) -> dict[str, float]:
    """Build every stand-in image (classic builder); returns seconds per service."""
    def build(item: tuple[str, str]) -> tuple[str, float]:
        service, tag = item
        dockerfile = STANDIN_DIR / service / "Dockerfile"
        started = time.monotonic()
        context = CONTEXTS.get(service, STANDIN_DIR)
        proc = engine.docker("build", "-f", str(dockerfile), "-t", tag, *build_args(dockerfile), str(context),
                             check=False, timeout=900)
        (log_dir / f"build-standin-{service}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"building the {service} stand-in failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        return service, time.monotonic() - started

    log_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(build, standin_images().items()))
