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
from app.encryption.models import EncryptionIdentity
from app.notifications.models import NotificationChannel, NotificationDelivery
from app.sources.health_models import SourceHealthState
from app.sources.models import Source
from app.verifications.models import BackupVerification

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BackupCopy",
    "BackupCounter",
    "BackupListVersion",
    "BackupStatus",
    "BackupTrigger",
    "BackupVerification",
    "Base",
    "DatabaseBackup",
    "Destination",
    "EncryptionIdentity",
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
