import { http } from './http'
import type {
  NotificationChannel,
  NotificationChannelCreate,
  NotificationChannelUpdate,
  NotificationDelivery,
  NotificationTestResult,
} from './types'

const BASE = '/admin/api/notification-channels'

export const notificationsApi = {
  list: (signal?: AbortSignal) => http.get<NotificationChannel[]>(BASE, { signal }),
  create: (body: NotificationChannelCreate) => http.post<NotificationChannel>(BASE, { body }),
  update: (id: number, body: NotificationChannelUpdate) =>
    http.patch<NotificationChannel>(`${BASE}/${id}`, { body }),
  remove: (id: number) => http.delete<{ id: number }>(`${BASE}/${id}`),
  /** Sends a test now and answers how the attempt went. */
  test: (id: number) => http.post<NotificationTestResult>(`${BASE}/${id}/test`),
  deliveries: (id: number, page = 1, perPage = 10) =>
    http.get<NotificationDelivery[]>(`${BASE}/${id}/deliveries`, { query: { page, per_page: perPage } }),
}
