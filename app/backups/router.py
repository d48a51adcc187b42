"""The original module's backup API, plus cancel and restore history. Routes stay thin: they
parse, authorise (via dependencies), call one service method and wrap the result."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, Request, status
from starlette.responses import StreamingResponse

from app.backups.export import MEDIA_TYPE
from app.backups.models import BackupStatus, DatabaseBackup, RestoreStatus
from app.backups.params import (
    DatabaseQuery,
    SearchQuery,
    StatusQuery,
    ViewQuery,
    search_term,
    status_value,
)
from app.backups.repository import BackupRecord
from app.backups.schemas import (
    DEFAULT_PER_PAGE,
    BackupEnvelope,
    BackupMessageEnvelope,
    BackupPage,
    BackupRead,
    BackupUpdate,
    BulkEnvelope,
    BulkItem,
    BulkRequest,
    BulkResult,
    DeletedEnvelope,
    RestoreListEnvelope,
    RestoreMessageEnvelope,
    RestoreRead,
    RestoreRequest,
    Statistics,
    StatisticsEnvelope,
)
from app.backups.service import BulkItemResult, SortKey, View
from app.deps import BackupServiceDep
from app.http.content import JsonBody
from app.http.envelope import PageMeta, error_responses
from app.http.methods import refuse_other_methods
from app.http.params import BackupId, PageNumber, PerPage, RawFlag, RestoreId, SourceIdFilter

router = APIRouter(prefix="/admin/api/database-backups", tags=["backups"])
download_router = APIRouter(prefix="/admin/database-backups", tags=["backups"])

AUTH_ERRORS = (401, 403)


def _read(backup: DatabaseBackup | BackupRecord) -> BackupRead:
    return BackupRead.model_validate(backup)


# ---- collection routes (before "/{backup_id}" so their paths are never read as ids) ------------


@router.get(
    "",
    operation_id="list_backups",
    response_model=BackupPage,
    responses=error_responses(*AUTH_ERRORS, 422),
)
async def list_backups(
    service: BackupServiceDep,
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
    search: SearchQuery = None,
    sort: SortKey = SortKey.latest,
    status: StatusQuery = None,
    view: ViewQuery = View.active,
    source_id: SourceIdFilter = None,
    database: DatabaseQuery = None,
) -> BackupPage:
    """List backups: 10 per page by default, newest first; of one source and/or database when
    asked (an unknown source id is an empty page, as for any filter)."""
    result = await service.list_backups(
        page=page,
        per_page=per_page,
        search=search_term(search),
        sort=sort,
        status=status_value(status),
        view=view,
        source_id=source_id,
        database=database,
    )
    rows = [_read(b) for b in result.items]
    copies = await service.copies_of([row.id for row in rows])
    return BackupPage(
        data=[row.with_copies(copies[row.id]) for row in rows],
        meta=PageMeta(
            current_page=result.page,
            per_page=result.per_page,
            total=result.total,
            last_page=result.last_page,
        ),
    )


@router.post(
    "",
    operation_id="create_backup",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BackupMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 409, 503),
)
async def create_backup(service: BackupServiceDep) -> BackupMessageEnvelope:
    """Queue a backup of the target database; answers at once with the pending backup."""
    backup = await service.create()
    return BackupMessageEnvelope(message="Backup queued.", data=_read(backup))


@router.get(
    "/statistics",
    operation_id="backup_statistics",
    response_model=StatisticsEnvelope,
    responses=error_responses(*AUTH_ERRORS, 422),
)
async def backup_statistics(
    service: BackupServiceDep,
    source_id: SourceIdFilter = None,
    database: DatabaseQuery = None,
) -> StatisticsEnvelope:
    """Counts and sizes: total, completed, failed, trashed, total and average size, newest and
    oldest completed backup; of one source and/or database when asked."""
    stats = await service.statistics(source_id=source_id, database=database)
    return StatisticsEnvelope(
        data=Statistics(
            total_backups=stats.total_backups,
            completed_backups=stats.completed_backups,
            failed_backups=stats.failed_backups,
            cancelled_backups=stats.cancelled_backups,
            trashed_backups=stats.trashed_backups,
            total_size=stats.total_size,
            average_size=stats.average_size,
            latest_backup=_read(stats.latest_backup) if stats.latest_backup else None,
            oldest_backup=_read(stats.oldest_backup) if stats.oldest_backup else None,
            trash_after_days=stats.trash_after_days,
            purge_after_days=stats.purge_after_days,
        )
    )


@router.get(
    "/export.csv",
    operation_id="export_backups_csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Every backup the filters match, in the list's order, as CSV "
            "(RFC 4180, UTF-8, a header row; columns in docs/export.md).",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="dbkeep-backups-YYYYMMDD-HHMMSS.csv"',
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(*AUTH_ERRORS, 422),
    },
)
async def export_backups_csv(
    service: BackupServiceDep,
    search: SearchQuery = None,
    sort: SortKey = SortKey.latest,
    status: StatusQuery = None,
    view: ViewQuery = View.active,
    source_id: SourceIdFilter = None,
    database: DatabaseQuery = None,
) -> StreamingResponse:
    """Export the backup history: every backup the list's filters match, streamed as CSV."""
    export = await service.export_csv(
        search=search_term(search),
        sort=sort,
        status=status_value(status),
        view=view,
        source_id=source_id,
        database=database,
    )
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(export.chunks, media_type=MEDIA_TYPE, headers=headers)


def _bulk(results: list[BulkItemResult], verb: str) -> BulkEnvelope:
    items = [
        BulkItem(id=r.id, success=r.success, status=r.status, message=r.message) for r in results
    ]
    ok = sum(1 for r in results if r.success)
    return BulkEnvelope(
        message=f"{ok} of {len(results)} backups {verb}.",
        data=BulkResult(results=items, succeeded=ok, failed=len(results) - ok),
    )


@router.delete(
    "/bulk-delete",
    operation_id="bulk_delete_backups",
    response_model=BulkEnvelope,
    responses=error_responses(*AUTH_ERRORS, 413, 415, 422),
)
async def bulk_delete_backups(
    service: BackupServiceDep, _json: JsonBody, body: BulkRequest
) -> BulkEnvelope:
    """Delete several backups for good; each id gets its own result (running ones are refused)."""
    return _bulk(await service.bulk_delete(body.backup_ids), "deleted permanently")


@router.post(
    "/bulk-trash",
    operation_id="bulk_trash_backups",
    response_model=BulkEnvelope,
    responses=error_responses(*AUTH_ERRORS, 413, 415, 422),
)
async def bulk_trash_backups(
    service: BackupServiceDep, _json: JsonBody, body: BulkRequest
) -> BulkEnvelope:
    """Move several backups to the trash; each id gets its own result."""
    return _bulk(await service.bulk_trash(body.backup_ids), "moved to trash")


# ---- 405 for wrong methods on the fixed paths --------------------------------------------------

refuse_other_methods(router, "/statistics", {"GET"})
refuse_other_methods(router, "/export.csv", {"GET"})
refuse_other_methods(router, "/bulk-delete", {"DELETE"})
refuse_other_methods(router, "/bulk-trash", {"POST"})


# ---- one backup ------------------------------------------------------------------------------


@router.get(
    "/{backup_id}",
    operation_id="get_backup",
    response_model=BackupEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def get_backup(backup_id: BackupId, service: BackupServiceDep) -> BackupEnvelope:
    """One backup's details."""
    copies = await service.copies_of([backup_id])
    return BackupEnvelope(data=_read(await service.get(backup_id)).with_copies(copies[backup_id]))


@router.patch(
    "/{backup_id}",
    operation_id="update_backup",
    response_model=BackupMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 413, 415, 422),
)
async def update_backup(
    backup_id: BackupId, body: BackupUpdate, service: BackupServiceDep, _json: JsonBody
) -> BackupMessageEnvelope:
    """Pin a backup (retention never trashes or purges it) or unpin it."""
    backup = await service.set_pinned(backup_id, pinned=body.pinned)
    message = "Backup pinned." if backup.pinned else "Backup unpinned."
    return BackupMessageEnvelope(message=message, data=_read(backup))


@router.delete(
    "/{backup_id}",
    operation_id="delete_backup",
    response_model=DeletedEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def delete_backup(backup_id: BackupId, service: BackupServiceDep) -> DeletedEnvelope:
    """Delete a backup's record and file permanently (not while it is pending or running)."""
    await service.delete(backup_id)
    return DeletedEnvelope(message="Backup deleted permanently.", data=None)


@router.post(
    "/{backup_id}/restore",
    operation_id="restore_backup",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RestoreMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 413, 415, 422, 503),
)
async def restore_backup(
    backup_id: BackupId,
    service: BackupServiceDep,
    _json: JsonBody,
    body: RestoreRequest | None = None,
) -> RestoreMessageEnvelope:
    """Queue a restore of a completed, intact backup into the database it came from, or into
    ``database`` of source ``target_source_id`` (404 unknown source, 409 another engine; 409
    too for a backup not completed or intact, or while another backup or restore of the
    target runs)."""
    options = body or RestoreRequest()
    operation = await service.request_restore(
        backup_id,
        use_safety_backup=options.use_safety_backup,
        keep_existing_objects=options.keep_existing_objects,
        target_source_id=options.target_source_id,
        database=options.database,
    )
    return RestoreMessageEnvelope(
        message="Database restore queued; it runs in the background.",
        data=RestoreRead.model_validate(operation),
    )


@router.get(
    "/{backup_id}/restores",
    operation_id="list_backup_restores",
    response_model=RestoreListEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 422),
)
async def list_backup_restores(
    backup_id: BackupId, service: BackupServiceDep
) -> RestoreListEnvelope:
    """The restores of one backup, newest first."""
    operations = await service.list_restores(backup_id)
    return RestoreListEnvelope(data=[RestoreRead.model_validate(o) for o in operations])


@router.post(
    "/{backup_id}/restores/{restore_id}/cancel",
    operation_id="cancel_backup_restore",
    response_model=RestoreMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def cancel_backup_restore(
    backup_id: BackupId, restore_id: RestoreId, service: BackupServiceDep
) -> RestoreMessageEnvelope:
    """Cancel a pending restore, or ask the worker to stop a running one: it stops the load and
    puts the database back from the safety backup."""
    operation = await service.cancel_restore(backup_id, restore_id)
    message = (
        "Restore cancelled; the database was not changed."
        if operation.status is not RestoreStatus.in_progress
        else "Cancellation requested; the restore stops and the database is put back shortly."
    )
    return RestoreMessageEnvelope(message=message, data=RestoreRead.model_validate(operation))


@router.post(
    "/{backup_id}/cancel",
    operation_id="cancel_backup",
    response_model=BackupMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def cancel_backup(backup_id: BackupId, service: BackupServiceDep) -> BackupMessageEnvelope:
    """Cancel a pending backup, or ask the worker to stop a running one."""
    backup = await service.cancel(backup_id)
    message = (
        "Backup cancelled."
        if backup.status is not BackupStatus.in_progress
        else "Cancellation requested; the backup stops shortly."
    )
    return BackupMessageEnvelope(message=message, data=_read(backup))


@router.post(
    "/{backup_id}/trash",
    operation_id="trash_backup",
    response_model=BackupMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def trash_backup(backup_id: BackupId, service: BackupServiceDep) -> BackupMessageEnvelope:
    """Move a completed or failed backup to the trash."""
    backup = await service.trash(backup_id)
    return BackupMessageEnvelope(message="Backup moved to trash.", data=_read(backup))


@router.post(
    "/{backup_id}/restore-from-trash",
    operation_id="restore_backup_from_trash",
    response_model=BackupMessageEnvelope,
    responses=error_responses(*AUTH_ERRORS, 404, 409, 422),
)
async def restore_backup_from_trash(
    backup_id: BackupId, service: BackupServiceDep
) -> BackupMessageEnvelope:
    """Bring a backup back from the trash with the status it had."""
    backup = await service.restore_from_trash(backup_id)
    return BackupMessageEnvelope(message="Backup restored from trash.", data=_read(backup))


# ---- download --------------------------------------------------------------------------------

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name in RFC 5987 form."""
    fallback = _UNSAFE_FILENAME.sub("_", filename) or "backup.sql"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@download_router.get(
    "/{backup_id}/download",
    operation_id="download_backup",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The dump as SQL, decompressed while it streams; with raw=1 the "
            "stored (compressed) file. An encrypted backup is always the stored age file "
            "(`age -d -i key.txt FILE | zstd -d`).",
            "content": {
                "application/sql": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **error_responses(*AUTH_ERRORS, 404, 409, 422),
    },
)
async def download_backup(
    backup_id: BackupId,
    service: BackupServiceDep,
    request: Request,
    raw: RawFlag = False,
) -> StreamingResponse:
    """Download a completed backup (409 if it is not completed, 404 if its file is gone)."""
    download = await service.open_download(backup_id, raw=raw)
    headers = {
        "Content-Disposition": content_disposition(download.filename),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if download.size is not None:
        headers["Content-Length"] = str(download.size)
    return StreamingResponse(download.chunks, media_type=download.media_type, headers=headers)
