"""Which manifest stage a backup's dump gets: its engine's, when the engine offers one."""

from __future__ import annotations

from app.engines.base import DatabaseEngine, ManifestObserver


def manifest_observer_of(engine: DatabaseEngine) -> ManifestObserver | None:
    """A fresh observer from ``engine.manifest_observer()``, or None for an engine without."""
    make = getattr(engine, "manifest_observer", None)
    return make() if callable(make) else None
