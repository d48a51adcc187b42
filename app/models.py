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
from app.notifications.models import NotificationChannel, NotificationDelivery
from app.sources.health_models import SourceHealthState
from app.sources.models import Source

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BackupCounter",
    "BackupListVersion",
    "BackupStatus",
    "BackupTrigger",
    "Base",
    "DatabaseBackup",
    "IntegrityStatus",
    "LoginCounter",
    "NotificationChannel",
    "NotificationDelivery",
    "RestoreOperation",
    "RestoreStatus",
    "Role",
    "Source",
    "SourceHealthState",
    "User",
    "UserSession",
]
