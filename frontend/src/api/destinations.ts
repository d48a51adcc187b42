import { http } from './http'
import type { BackupCopy, Destination, DestinationCreate, DestinationTest, DestinationUpdate } from './types'

const BASE = '/admin/api/destinations'

export const destinationsApi = {
  list: (signal?: AbortSignal) => http.get<Destination[]>(BASE, { signal }),
  create: (body: DestinationCreate) => http.post<Destination>(BASE, { body }),
  update: (id: number, body: DestinationUpdate) => http.patch<Destination>(`${BASE}/${id}`, { body }),
  remove: (id: number) => http.delete<{ id: number }>(`${BASE}/${id}`),
  test: (id: number) => http.post<DestinationTest>(`${BASE}/${id}/test`),
  /** Stores a failed copy again from an intact one (a job; 202). */
  retryCopy: (backupId: number, destinationId: number) =>
    http.post<BackupCopy[]>(`/admin/api/database-backups/${backupId}/copies/${destinationId}/retry`),
}
