"""The arrows of docs/architecture.md that a refactor could quietly bend back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import app

APP = Path(app.__file__).parent
# The feature packages: the kit must work without any of them.
FEATURES = ("app.auth", "app.audit", "app.backups", "app.jobs", "app.system", "app.cli")


def test_the_db_kit_imports_no_feature_package() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, app.db\nprint('\\n'.join(m for m in sys.modules if m.startswith('app.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = probe.stdout.split()
    assert "app.db" in imported
    assert [m for m in imported if m.startswith(FEATURES)] == []


def _imported_names(path: Path) -> set[str]:
    """``module.name`` of every ``from module import name`` in ``path``, and every ``module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_router_queries_a_repository_itself() -> None:
    # A repository's record types may reach a router; its queries and the session may not.
    routers = sorted(APP.rglob("router.py"))
    assert len(routers) >= 4  # auth, audit, backups, system
    offenders = {
        str(router.relative_to(APP.parent)): sorted(
            name
            for name in _imported_names(router)
            if name.endswith(("Repository", ".SessionDep", ".AsyncSession", ".repository"))
        )
        for router in routers
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_no_router_handles_engine_storage_or_pipeline_errors_itself() -> None:
    # Their failures reach a router as AppErrors the services raised (app/errors.py).
    below = ("app.engines", "app.storage", "app.pipeline")
    offenders = {
        str(router.relative_to(APP.parent)): sorted(
            name for name in _imported_names(router) if name.startswith(below)
        )
        for router in sorted(APP.rglob("router.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}
