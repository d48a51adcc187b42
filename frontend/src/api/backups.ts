import { http } from './http'
import type { Backup, BulkResult, ListQuery, RestoreOperation, Statistics } from './types'

const BASE = '/admin/api/database-backups'

export const backupsApi = {
  list: (query: ListQuery, signal?: AbortSignal) =>
    http.get<Backup[]>(BASE, { query: { ...query }, signal }),
  statistics: (signal?: AbortSignal) => http.get<Statistics>(`${BASE}/statistics`, { signal }),
  get: (id: number) => http.get<Backup>(`${BASE}/${id}`),
  create: () => http.post<Backup>(BASE),
  restore: (id: number, useSafetyBackup: boolean) =>
    http.post<RestoreOperation | null>(`${BASE}/${id}/restore`, {
      body: { use_safety_backup: useSafetyBackup },
    }),
  restores: (id: number) => http.get<RestoreOperation[]>(`${BASE}/${id}/restores`),
  cancel: (id: number) => http.post<Backup | null>(`${BASE}/${id}/cancel`),
  trash: (id: number) => http.post<unknown>(`${BASE}/${id}/trash`),
  restoreFromTrash: (id: number) => http.post<unknown>(`${BASE}/${id}/restore-from-trash`),
  destroy: (id: number) => http.delete<unknown>(`${BASE}/${id}`),
  bulkTrash: (ids: number[]) => http.post<BulkResult>(`${BASE}/bulk-trash`, { body: { backup_ids: ids } }),
  bulkDelete: (ids: number[]) =>
    http.delete<BulkResult>(`${BASE}/bulk-delete`, { body: { backup_ids: ids } }),
}

/** The download is a plain cookie-authenticated GET, so a normal link does it. */
export function downloadUrl(id: number): string {
  return `/admin/database-backups/${id}/download`
}
