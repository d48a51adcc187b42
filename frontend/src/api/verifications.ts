import { http } from './http'
import type { Verification } from './types'

export const verificationsApi = {
  /** The source's newest verifications (test restores), newest first. */
  ofSource: (sourceId: number, signal?: AbortSignal) =>
    http.get<Verification[]>(`/admin/api/sources/${sourceId}/verifications`, { signal }),
  /** Queue a test restore of one of the source's backups. */
  request: (sourceId: number, backupId: number) =>
    http.post<Verification>(`/admin/api/sources/${sourceId}/verifications`, { body: { backup_id: backupId } }),
  get: (id: number) => http.get<Verification>(`/admin/api/verifications/${id}`),
}
