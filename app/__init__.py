"""dbkeep: self-hosted database backup manager."""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def _import_structlog_without_rich() -> None:
    """Import structlog before anything else does, hiding rich from it.

    structlog imports rich (and pygments, through ``rich.traceback``) whenever rich is installed,
    for pretty tracebacks dbkeep never uses: its logs format tracebacks plainly, because rich's can
    print local variables, which may hold passwords (``app.logs``). Those imports cost every dbkeep
    process 3.3 MiB and ~60 ms before it does anything; for a backup command that is the
    difference between meeting and missing its memory target (docs/benchmarks.md). structlog's own
    fallback for a missing rich is what runs; rich stays importable for the CLI's progress bar.
    """
    if "structlog" in sys.modules:
        return
    already_imported = "rich" in sys.modules
    hidden = sys.modules.get("rich")
    sys.modules["rich"] = None  # type: ignore[assignment]  # makes "import rich" raise ImportError
    try:
        import structlog  # noqa: F401
    finally:
        if already_imported:
            sys.modules["rich"] = hidden  # type: ignore[assignment]
        else:
            del sys.modules["rich"]


_import_structlog_without_rich()
