"""Every ORM model, imported in one place for Alembic and for mapper configuration."""

from app.audit.models import AuditEvent
from app.auth.models import ApiToken, LoginCounter, Role, User, UserSession
from app.backups.models import (
    BackupCounter,
    BackupListVersion,
    BackupStatus,
    BackupTrigger,
    DatabaseBackup,
    IntegrityStatus,
    RestoreOperation,
    RestoreStatus,
)
from app.db import Base
from app.destinations.models import BackupCopy, Destination
from app.sources.models import Source

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BackupCopy",
    "BackupCounter",
    "BackupListVersion",
    "BackupStatus",
    "BackupTrigger",
    "Base",
    "DatabaseBackup",
    "Destination",
    "IntegrityStatus",
    "LoginCounter",
    "RestoreOperation",
    "RestoreStatus",
    "Role",
    "Source",
    "User",
    "UserSession",
]
