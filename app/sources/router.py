"""The sources API (contract part 2, admins only): list, create, read, change, delete, test the
connection, back up now. Routes parse, call one service method and wrap the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.backups.router import AUTH_ERRORS, _read
from app.backups.schemas import BackupRead
from app.deps import BackupServiceDep, SourceServiceDep
from app.http.envelope import DataEnvelope, MessageEnvelope, error_responses
from app.http.params import SourceId, flag
from app.sources.schemas import (
    ConnectionTest,
    ConnectionTestEnvelope,
    SourceBackupRequest,
    SourceCreate,
    SourceEnvelope,
    SourceListEnvelope,
    SourceRead,
    SourceUpdate,
)
from app.sources.service import SourceView

router = APIRouter(prefix="/admin/api/sources", tags=["sources"])


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
    return ConnectionTestEnvelope(
        data=ConnectionTest(
            ok=report.ok and tools.ok,
            message=report.message if not report.ok or tools.ok else tools.message,
            server_version=report.server_version,
            databases=list(report.databases),
            required_privileges=list(report.required_privileges),
            missing_privileges=list(report.missing_privileges),
            dump_tool=tools.dump_tool,
            dump_tool_version=tools.dump_version,
            client_tool=tools.client_tool,
            client_tool_version=tools.client_version,
        )
    )


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
