import { http } from './http'
import type { Backup, ConnectionTest, SchedulePreview, Source, SourceCreate, SourceUpdate } from './types'
import { uploadFile, type UploadProgress } from './upload'

const BASE = '/admin/api/sources'

export const sourcesApi = {
  list: (signal?: AbortSignal) => http.get<Source[]>(BASE, { signal }),
  get: (id: number) => http.get<Source>(`${BASE}/${id}`),
  create: (body: SourceCreate) => http.post<Source>(BASE, { body }),
  update: (id: number, body: SourceUpdate) => http.patch<Source>(`${BASE}/${id}`, { body }),
  remove: (id: number, deleteBackups: boolean) =>
    http.delete<{ deleted_backups: number }>(`${BASE}/${id}`, { query: { delete_backups: deleteBackups } }),
  test: (id: number) => http.post<ConnectionTest>(`${BASE}/${id}/test`),
  backUp: (id: number, database?: string) =>
    http.post<Backup[]>(`${BASE}/${id}/backups`, { body: database ? { database } : {} }),
  previewSchedule: (schedule: string, timezone: string, signal?: AbortSignal) =>
    http.post<SchedulePreview>(`${BASE}/schedule-preview`, { body: { schedule, timezone }, signal }),
  /** Uploads an existing dump (.sql, .sql.gz, .sql.zst) as a backup of `database`. */
  importFile: (
    id: number,
    database: string,
    file: File,
    onProgress?: (p: UploadProgress) => void,
    signal?: AbortSignal,
  ) =>
    uploadFile<Backup>(`${BASE}/${id}/imports`, file, {
      query: { filename: file.name, database },
      onProgress,
      signal,
    }),
}
