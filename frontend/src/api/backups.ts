import { http } from './http'
import type {
  Backup,
  BulkRequest,
  BulkResult,
  ExportQuery,
  ListQuery,
  RestoreOperation,
  RestoreRequest,
  Statistics,
  StatisticsQuery,
} from './types'

/** Where a restore goes when not back where the backup came from. */
export interface RestoreTarget {
  sourceId?: number
  database?: string
}

const BASE = '/admin/api/database-backups'

export const backupsApi = {
  list: (query: ListQuery, signal?: AbortSignal) =>
    http.get<Backup[]>(BASE, { query: { ...query }, signal }),
  statistics: (query: StatisticsQuery = {}, signal?: AbortSignal) =>
    http.get<Statistics>(`${BASE}/statistics`, { query: { ...query }, signal }),
  get: (id: number) => http.get<Backup>(`${BASE}/${id}`),
  create: () => http.post<Backup>(BASE),
  restore: (id: number, useSafetyBackup: boolean, keepExistingObjects = false, target: RestoreTarget = {}) => {
    const body: RestoreRequest = { use_safety_backup: useSafetyBackup, keep_existing_objects: keepExistingObjects }
    // Sent only when chosen: without them the backend restores where the backup came from.
    if (target.sourceId) body.target_source_id = target.sourceId
    if (target.database) body.database = target.database
    return http.post<RestoreOperation>(`${BASE}/${id}/restore`, { body })
  },
  restores: (id: number) => http.get<RestoreOperation[]>(`${BASE}/${id}/restores`),
  cancel: (id: number) => http.post<Backup>(`${BASE}/${id}/cancel`),
  cancelRestore: (backupId: number, restoreId: number) =>
    http.post<RestoreOperation>(`${BASE}/${backupId}/restores/${restoreId}/cancel`),
  trash: (id: number) => http.post<Backup>(`${BASE}/${id}/trash`),
  restoreFromTrash: (id: number) => http.post<Backup>(`${BASE}/${id}/restore-from-trash`),
  destroy: (id: number) => http.delete<null>(`${BASE}/${id}`),
  bulkTrash: (ids: number[]) =>
    http.post<BulkResult>(`${BASE}/bulk-trash`, { body: { backup_ids: ids } satisfies BulkRequest }),
  bulkDelete: (ids: number[]) =>
    http.delete<BulkResult>(`${BASE}/bulk-delete`, { body: { backup_ids: ids } satisfies BulkRequest }),
}

/**
 * The download is a plain cookie-authenticated GET, so the browser's own download does it (files
 * can be far too large for memory). `raw` asks for the stored (compressed) file instead of the .sql.
 */
export function downloadUrl(id: number, raw = false): string {
  return `/admin/database-backups/${id}/download${raw ? '?raw=1' : ''}`
}

/**
 * The CSV export of every backup the list's filters match (all pages), for the browser's own
 * download: it streams, so it never passes through memory here. Empty filters are left out.
 */
export function exportCsvUrl(query: ExportQuery): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value))
  }
  const search = params.toString()
  return `${BASE}/export.csv${search ? `?${search}` : ''}`
}
