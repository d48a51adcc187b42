"""The sources API (contract part 2, admins only): list, create, read, change, delete, test the
connection, back up now. Routes parse, call one service method and wrap the result."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.requests import ClientDisconnect

from app.backups.imports import ACCEPTED_MEDIA_TYPES, upload_compression
from app.backups.router import AUTH_ERRORS, _read
from app.backups.schemas import BackupMessageEnvelope, BackupRead
from app.deps import BackupServiceDep, SourceServiceDep
from app.errors import BadRequest
from app.http.envelope import DataEnvelope, MessageEnvelope, error_responses
from app.http.methods import refuse_other_methods
from app.http.params import SourceId, flag
from app.sources.envelopes import (
    ConnectionTestEnvelope,
    RetentionPreviewEnvelope,
    SourceEnvelope,
    SourceListEnvelope,
)
from app.sources.schemas import (
    RetentionDecisionRead,
    RetentionPreview,
    SourceBackupRequest,
    SourceCreate,
    SourceRead,
    SourceUpdate,
    connection_test,
)
from app.sources.service import SourceView

router = APIRouter(prefix="/admin/api/sources", tags=["sources"])

# The one route whose body is streamed under DBKEEP_MAX_UPLOAD_BYTES rather than buffered under
# DBKEEP_MAX_REQUEST_BODY_BYTES (app/main.py hands it to BodySizeLimitMiddleware).
IMPORTS_PATH = re.compile(r"^/admin/api/sources/[^/]+/imports$")
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The dump file itself, as the raw body (not a form).",
        "content": {
            media_type: {"schema": {"type": "string", "format": "binary"}}
            for media_type in ACCEPTED_MEDIA_TYPES
        },
    }
}


# Actions that report say what they did in ``message`` (DataEnvelope has no such field, so a
# message given to it was silently dropped and the dashboard showed its own words instead).
class BackupListEnvelope(MessageEnvelope[list[BackupRead]]):
    pass


class SourceMessageEnvelope(MessageEnvelope[SourceRead]):
    pass


class DeletedEnvelope(MessageEnvelope[dict[str, int]]):
    pass


class SchedulePreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    schedule: str = Field(max_length=200, examples=["30 2 * * *"])
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])


class SchedulePreview(BaseModel):
    runs: list[datetime] = Field(description="The next five fire times, UTC.")
    interval_seconds: int = Field(description="The longest gap between two runs over a year.")


class SchedulePreviewEnvelope(DataEnvelope[SchedulePreview]):
    pass


def _source(view: SourceView) -> SourceRead:
    return SourceRead.model_validate(view, from_attributes=True)


@router.get(
    "",
    operation_id="list_sources",
    response_model=SourceListEnvelope,
    responses=error_responses(*AUTH_ERRORS),
)
async def list_sources(sources: SourceServiceDep) -> SourceListEnvelope:
    """Every source, by name, with its next scheduled run and its newest backup."""
    return SourceListEnvelope(data=[_source(view) for view in await sources.overview()])


@router.post(
    "",
    operation_id="create_source",
    status_code=status.HTTP_201_CREATED,
    response_model=SourceMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 409, 422),
)
async def create_source(body: SourceCreate, sources: SourceServiceDep) -> SourceMessageEnvelope:
    """Add a source. Its URL is stored encrypted and answered with the password as ``***``."""
    source = await sources.create(body)
    return SourceMessageEnvelope(data=_source(await sources.view(source)), message="Source added.")


# Declared before the ``/{source_id}`` routes: a fixed path segment must win over the parameter.
@router.post(
    "/schedule-preview",
    operation_id="preview_source_schedule",
    response_model=SchedulePreviewEnvelope,
    responses=error_responses(*AUTH_ERRORS, 422),
)
async def preview_schedule(
    body: SchedulePreviewRequest, sources: SourceServiceDep
) -> SchedulePreviewEnvelope:
    """The next five runs of a cron expression in a time zone, without saving anything: the
    dashboard shows them while a schedule is typed. A bad expression or zone is a 422."""
    runs, interval = sources.preview_schedule(body.schedule, body.timezone)
    return SchedulePreviewEnvelope(
        data=SchedulePreview(runs=runs, interval_seconds=int(interval.total_seconds()))
    )


refuse_other_methods(router, "/schedule-preview", {"POST"})


@router.get(
    "/{source_id}",
    operation_id="get_source",
    response_model=SourceEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def get_source(source_id: SourceId, sources: SourceServiceDep) -> SourceEnvelope:
    """One source (its URL with the password as ``***``)."""
    return SourceEnvelope(data=_source(await sources.view(await sources.get(source_id))))


@router.patch(
    "/{source_id}",
    operation_id="update_source",
    response_model=SourceMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def update_source(
    source_id: SourceId, body: SourceUpdate, sources: SourceServiceDep
) -> SourceMessageEnvelope:
    """Change the fields sent. The ``default`` source's URL and databases follow
    DBKEEP_TARGET_URL (409)."""
    source = await sources.update(source_id, body)
    return SourceMessageEnvelope(data=_source(await sources.view(source)), message="Source saved.")


@router.delete(
    "/{source_id}",
    operation_id="delete_source",
    response_model=DeletedEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def delete_source(
    source_id: SourceId,
    sources: SourceServiceDep,
    backups: BackupServiceDep,
    delete_backups: Annotated[
        bool,
        Query(
            description="Also delete its backups and their files: true/false or 1/0 "
            "(default: keep them, without a source).",
        ),
        BeforeValidator(flag),
    ] = False,
) -> DeletedEnvelope:
    """Delete a source (409 while one of its backups is pending or running). With
    ``delete_backups``, every one of its backups goes too, or (if one can't) nothing does."""
    source = await sources.deletable(source_id)
    deleted: int | None = None
    if delete_backups:
        deleted = await backups.delete_all_or_none(await sources.backup_ids(source))
    await sources.delete(source, backups_deleted=deleted)
    if deleted is None:
        return DeletedEnvelope(
            data={"deleted_backups": 0}, message="Source deleted; its backups were kept."
        )
    return DeletedEnvelope(
        data={"deleted_backups": deleted},
        message=f"Source deleted with its {deleted} backup(s).",
    )


@router.post(
    "/{source_id}/test",
    operation_id="test_source",
    response_model=ConnectionTestEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def test_source(source_id: SourceId, sources: SourceServiceDep) -> ConnectionTestEnvelope:
    """Connect as the source's account: server version, the privileges a dump needs that it
    lacks, the databases found, and the dump tools installed here. ``ok`` false says why."""
    report, tools = await sources.test(source_id)
    return ConnectionTestEnvelope(data=connection_test(report, tools))


@router.post(
    "/{source_id}/backups",
    operation_id="back_up_source",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BackupListEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422, 503),
)
async def back_up_source(
    source_id: SourceId,
    sources: SourceServiceDep,
    backups: BackupServiceDep,
    body: SourceBackupRequest | None = None,
) -> BackupListEnvelope:
    """Back up now: one backup of ``database``, or one per database of the source."""
    source = await sources.get(source_id)
    names = await sources.databases_to_back_up(source, body.database if body else None)
    queued = await backups.create_for_source(source, names)
    return BackupListEnvelope(
        data=[_read(backup) for backup in queued], message=f"{len(queued)} backup(s) queued."
    )


@router.get(
    "/{source_id}/retention-preview",
    operation_id="preview_source_retention",
    response_model=RetentionPreviewEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def preview_source_retention(
    source_id: SourceId, sources: SourceServiceDep, backups: BackupServiceDep
) -> RetentionPreviewEnvelope:
    """Which of the source's backups its retention rule would move to the trash now, and why
    each one is kept or trashed; nothing is changed."""
    source = await sources.get(source_id)
    decisions = await backups.retention_preview(source)
    return RetentionPreviewEnvelope(
        data=RetentionPreview(
            source_id=source.id,
            rule=dict(source.retention),
            trash=[d.backup_id for d in decisions if d.action == "trash"],
            decisions=[
                RetentionDecisionRead(
                    backup_id=d.backup_id,
                    database_name=d.database_name,
                    backup_date=d.created_at,
                    action=d.action,
                    reasons=list(d.reasons),
                )
                for d in decisions
            ],
        )
    )


@router.post(
    "/{source_id}/imports",
    operation_id="import_backup",
    status_code=status.HTTP_201_CREATED,
    response_model=BackupMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 413, 415, 422, 503),
    openapi_extra=_UPLOAD_BODY,
)
async def import_backup(
    request: Request,
    source_id: SourceId,
    sources: SourceServiceDep,
    backups: BackupServiceDep,
    database: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Which of the source's databases the dump is of (default: the "
            "source's only one).",
        ),
    ] = None,
    filename: Annotated[
        str | None,
        Query(
            max_length=255,
            description="Only with Content-Type application/octet-stream: the file's name, "
            "whose suffix (.sql, .sql.gz, .sql.zst) says how it is compressed.",
        ),
    ] = None,
) -> BackupMessageEnvelope:
    """Upload an existing dump (the raw body, streamed) as a completed backup of the source
    (trigger ``upload``). Content-Type says how it is compressed: application/sql, application/
    gzip or application/zstd, or application/octet-stream with ``filename``. It is checked like
    a dump dbkeep takes: the format by its first bytes, the whole compressed stream, SQL text,
    and (MySQL/MariaDB) the dump tool's completion line last. It is stored recompressed with
    the configured compression. Anything else is refused (413, 415, 422) and nothing is kept."""
    source = await sources.get(source_id)
    name = sources.database_for_import(source, database)
    engine = sources.engine_of(source)
    declared = upload_compression(request.headers.get("content-type"), filename)
    try:
        backup = await backups.import_upload(
            source=source,
            database=name,
            engine=engine,
            chunks=request.stream(),
            declared=declared,
            original_name=filename,
        )
    except ClientDisconnect:
        # Nobody reads this answer; it keeps a dropped upload out of the error log.
        raise BadRequest("The upload was interrupted; nothing was kept.") from None
    return BackupMessageEnvelope(data=_read(backup), message="Dump imported as a completed backup.")
