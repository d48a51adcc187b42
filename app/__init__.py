"""dbkeep: self-hosted database backup manager."""

__version__ = "0.1.0"
