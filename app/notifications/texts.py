"""What a notification says: the webhook's JSON body and the text of a mail or chat message,
both made from a delivery's stored payload. Nothing here sees a secret: payloads are built
from rows without credentials and scrubbed (``scrub``) before they are stored."""

from __future__ import annotations

import re
from typing import Any

from app.notifications.channels.base import Message

_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]*@")

_TITLES = {
    "backup.failed": "Backup failed",
    "backup.completed": "Backup completed",
    "backup.degraded": "Backup degraded",
    "restore.finished": "Restore finished",
    "verification.failed": "Verification failed",
    "health.changed": "Health changed",
    "test": "Test notification",
}


def scrub(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """``value`` with every URL password masked and each of ``secrets`` replaced by ``***``."""
    if isinstance(value, str):
        text = _USERINFO.sub(r"\1:***@", value)
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    return value


def backup_link(base_url: str, backup_id: int) -> str:
    return f"{base_url}/admin/database-backups?selected={backup_id}"


def with_links(payload: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The webhook's body: the payload, with the dashboard's link to the backup."""
    body = dict(payload)
    backup = body.get("backup")
    if isinstance(backup, dict) and isinstance(backup.get("id"), int):
        body["backup"] = {**backup, "url": backup_link(base_url, backup["id"])}
    return body


def _where(payload: dict[str, Any]) -> str:
    source = payload.get("source") or {}
    backup = payload.get("backup") or {}
    database = backup.get("database") or (payload.get("restore") or {}).get("database")
    name = source.get("name") if isinstance(source, dict) else None
    parts = [part for part in (name, database) if part]
    return "/".join(parts) if parts else "dbkeep"


def render(payload: dict[str, Any], base_url: str) -> Message:
    """The message a channel sends for a stored payload."""
    event = str(payload.get("event", ""))
    body = with_links(payload, base_url)
    title = _TITLES.get(event, event)
    where = _where(payload)
    lines = [f"{title}: {where}", ""]
    source = payload.get("source")
    if isinstance(source, dict):
        lines.append(f"Source: {source.get('name')} ({source.get('engine')})")
    backup = body.get("backup")
    if isinstance(backup, dict):
        if backup.get("database"):
            lines.append(f"Database: {backup['database']}")
        lines.append(f"Backup: #{backup.get('id')} {backup.get('filename') or ''}".rstrip())
        lines.append(f"Status: {backup.get('status')}")
        if backup.get("file_size"):
            lines.append(f"Size: {backup['file_size']} bytes")
        if backup.get("error_message"):
            label = "Reason" if event != "backup.completed" else "Note"
            lines.append(f"{label}: {backup['error_message']}")
    restore = payload.get("restore")
    if isinstance(restore, dict):
        lines.append(f"Restore: #{restore.get('id')} {restore.get('status')}")
        if restore.get("database"):
            lines.append(f"Into database: {restore['database']}")
        if restore.get("error_message"):
            lines.append(f"Reason: {restore['error_message']}")
    verification = payload.get("verification")
    if isinstance(verification, dict):
        lines.append(f"Verification: #{verification.get('id')} {verification.get('status')}")
        if verification.get("error_message"):
            lines.append(f"Reason: {verification['error_message']}")
    health = payload.get("health")
    if isinstance(health, dict):
        lines.append(f"Health: {health.get('previous')} -> {health.get('status')}")
        for reason in health.get("reasons") or []:
            lines.append(f"- {reason}")
    if event == "test":
        lines.append("This is a test sent from the dbkeep dashboard: the channel works.")
    lines.append(f"When: {payload.get('occurred_at')}")
    if isinstance(backup, dict) and backup.get("url"):
        lines += ["", f"Open the backup: {backup['url']}"]
    subject = f"[dbkeep] {title}: {where}"
    return Message(event=event, subject=subject[:200], text="\n".join(lines) + "\n", body=body)
