"""The arrows of docs/architecture.md that a refactor could quietly bend back."""

from __future__ import annotations

import subprocess
import sys

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
