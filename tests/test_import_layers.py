"""Which folder may import which (docs/CONTRIBUTING.md, "Who imports whom").

Reads every module's imports (top-level and inside functions) with ast, so a
role that reaches into another role's folder, an arrow that runs both ways
between config/ and logs/, or product code importing tests/ fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The four roles: none imports another (each image copies only its own folder
# and the shared ones below).
ROLES = {"streaming", "batch", "articles", "flask_web_app"}
# Everything below the roles, and what each may import. The arrows run one way:
# config <- logs <- database <- common <- market_data <- roles.
BELOW = {
    "config": set(),
    "logs": {"config"},
    "database": {"config", "logs"},
    "common": {"config", "logs", "database"},
    "market_data": {"config", "logs", "database", "common"},
}
SHARED = set(BELOW)
OURS = ROLES | SHARED | {"scripts", "tests", "bench"}
# Allowed role -> role imports, with the reason. Empty on purpose: keep it that way.
ALLOWED_EXCEPTIONS: set[tuple[str, str]] = set()


# Leaf modules: they import nothing of ours, so every folder may use them whatever its
# layer (test_leaves_import_nothing_of_ours keeps them leaves).
LEAVES = {"common.retry"}


def _imported_modules(path: Path) -> set[str]:
    """The dotted names of our modules that `path` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in OURS}


def _top_level_imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)
            if not any(name == leaf or name.startswith(f"{leaf}.") for leaf in LEAVES)}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _edges() -> list[tuple[str, str, str]]:
    """(importing folder, imported folder, file) for every import of one of our folders."""
    edges = []
    for folder in sorted(OURS):
        for path in _modules(folder):
            for imported in _top_level_imports(path):
                if imported != folder:
                    edges.append((folder, imported, str(path.relative_to(ROOT))))
    return edges


def test_the_walk_sees_the_known_imports() -> None:
    # Guards the checks below against reading nothing: these imports exist on purpose.
    edges = {(a, b) for a, b, _ in _edges()}
    assert ("streaming", "config") in edges
    assert ("articles", "common") in edges
    assert ("batch", "market_data") in edges
    assert ("logs", "config") in edges
    assert ("tests", "scripts") in edges


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_role_imports_another_role(role: str) -> None:
    bad = [f"{path} imports {imported}/" for folder, imported, path in _edges()
           if folder == role and imported in ROLES and (folder, imported) not in ALLOWED_EXCEPTIONS]
    assert not bad, "a role imports another role; move the shared piece to common/ or market_data/:\n" + "\n".join(bad)


@pytest.mark.parametrize("folder", sorted(SHARED))
def test_shared_folders_import_only_what_is_below_them(folder: str) -> None:
    bad = [f"{path} imports {imported}/" for f, imported, path in _edges()
           if f == folder and imported not in BELOW[folder]]
    assert not bad, f"{folder}/ may import only {sorted(BELOW[folder]) or 'nothing of ours'}:\n" + "\n".join(bad)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaves_import_nothing_of_ours(leaf: str) -> None:
    path = ROOT.joinpath(*leaf.split(".")).with_suffix(".py")
    assert not _imported_modules(path), f"{leaf} is a leaf every layer may import: it must import nothing of ours"


def test_nothing_outside_tests_imports_tests() -> None:
    bad = [f"{path} imports tests/" for folder, imported, path in _edges() if imported == "tests" and folder != "tests"]
    assert not bad, "\n".join(bad)


def test_the_local_stack_is_product_code() -> None:
    # The runner people start lives in scripts/ and says what it needs; tests only reuse it.
    source = (ROOT / "scripts" / "local_stack.py").read_text()
    assert "class LocalStack" in source and "def main" in source
    assert "requirements-dev.txt" in source
