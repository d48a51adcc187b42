import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { NotificationChannel, NotificationDelivery } from '@/api/types'
import { jsonResponse } from '@/test/factories'

import NotificationsPage from './NotificationsPage.vue'

const CHANNEL: NotificationChannel = {
  id: 3,
  name: 'ops-mail',
  kind: 'email',
  config: { to: ['ops@example.com'] },
  secrets_set: [],
  events: ['backup.failed', 'restore.finished'],
  enabled: true,
  created_at: '2026-12-01T00:00:00Z',
  updated_at: '2026-12-01T00:00:00Z',
}

const DELIVERY: NotificationDelivery = {
  id: 11,
  channel_id: 3,
  event: 'backup.failed',
  status: 'pending',
  attempts: 2,
  max_attempts: 8,
  next_attempt_at: '2026-12-04T19:00:00Z',
  last_error: 'could not reach mail.example.com:587: ConnectError',
  attempt_log: [],
  payload: {},
  created_at: '2026-12-04T18:50:00Z',
  delivered_at: null,
}

describe('NotificationsPage', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    vi.stubGlobal('fetch', fetchMock)
    fetchMock.mockImplementation(async (input, init) => {
      const url = String(input)
      if (url.endsWith('/test') && init?.method === 'POST') {
        return jsonResponse({
          success: true,
          message: 'The test notification failed.',
          data: { delivery_id: 12, ok: false, status: 'failed', error: 'the mail server refused the login in DBKEEP_SMTP_URL', duration_ms: 40 },
        })
      }
      if (url.includes('/deliveries')) {
        return jsonResponse({ success: true, data: [DELIVERY], meta: { current_page: 1, per_page: 10, total: 1, last_page: 1 } })
      }
      return jsonResponse({ success: true, data: [CHANNEL] })
    })
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  it('lists the channels with where they send and their events', async () => {
    const wrapper = mount(NotificationsPage, { attachTo: document.body })
    await flushPromises()
    const card = wrapper.get('[data-testid="channel-ops-mail"]')
    expect(card.get('[data-testid="channel-destination"]').text()).toBe('ops@example.com')
    expect(card.get('[data-testid="channel-events"]').text()).toContain('Backup failed')
    expect(card.get('[data-testid="channel-events"]').text()).toContain('Restore finished')
    wrapper.unmount()
  })

  it('sends a test and shows why it failed', async () => {
    const wrapper = mount(NotificationsPage, { attachTo: document.body })
    await flushPromises()
    await wrapper.get('[data-testid="test-channel"]').trigger('click')
    await flushPromises()
    const call = fetchMock.mock.calls.find(([url]) => String(url).endsWith('/admin/api/notification-channels/3/test'))
    expect(call?.[1]?.method).toBe('POST')
    expect(wrapper.get('[data-testid="channel-test-result"]').text()).toBe('the mail server refused the login in DBKEEP_SMTP_URL')
    wrapper.unmount()
  })

  it('shows the recent deliveries with their status and tries', async () => {
    const wrapper = mount(NotificationsPage, { attachTo: document.body })
    await flushPromises()
    await wrapper.get('[data-testid="show-deliveries"]').trigger('click')
    await flushPromises()
    const row = wrapper.get('[data-testid="delivery-11"]')
    expect(row.get('[data-testid="delivery-status"]').text()).toBe('pending')
    expect(row.text()).toContain('2/8')
    expect(row.text()).toContain('could not reach mail.example.com')
    wrapper.unmount()
  })
})
