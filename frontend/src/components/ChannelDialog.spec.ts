import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { NotificationChannel } from '@/api/types'
import { jsonResponse } from '@/test/factories'

import ChannelDialog from './ChannelDialog.vue'

const STORED: NotificationChannel = {
  id: 5,
  name: 'ops-hook',
  kind: 'webhook',
  config: { url: 'https://hooks.example.com/in' },
  secrets_set: ['secret'],
  events: ['backup.failed'],
  enabled: true,
  created_at: '2026-12-01T00:00:00Z',
  updated_at: '2026-12-01T00:00:00Z',
}

describe('ChannelDialog', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  it('adds an email channel with the events ticked', async () => {
    fetchMock.mockResolvedValue(jsonResponse({ success: true, message: 'Notification channel added.', data: { ...STORED, kind: 'email' } }, 201))
    const wrapper = mount(ChannelDialog, { props: { open: true, channel: null }, attachTo: document.body })
    await wrapper.get('[data-testid="channel-name"]').setValue('ops-mail')
    await wrapper.get('[data-testid="channel-to"]').setValue('ops@example.com, dba@example.com')
    await wrapper.get('[data-testid="event-restore.finished"]').setValue(true)
    await wrapper.get('[data-testid="channel-form"]').trigger('submit')
    await flushPromises()
    const [url, init] = fetchMock.mock.calls[0]!
    expect(String(url)).toMatch(/\/admin\/api\/notification-channels$/)
    expect(JSON.parse(String(init?.body))).toEqual({
      name: 'ops-mail',
      kind: 'email',
      config: { to: ['ops@example.com', 'dba@example.com'] },
      events: ['backup.failed', 'restore.finished'],
      enabled: true,
    })
    expect(wrapper.emitted('saved')?.[0]?.[1]).toBe('Notification channel added.')
    wrapper.unmount()
  })

  it('keeps a stored secret when left blank and shows a refusal at its field', async () => {
    fetchMock.mockResolvedValue(
      jsonResponse(
        { success: false, message: "The channel's config is not valid.", errors: { 'config.url': ['must be an http:// or https:// URL'] } },
        422,
      ),
    )
    const wrapper = mount(ChannelDialog, { props: { open: true, channel: STORED }, attachTo: document.body })
    const secret = wrapper.get('[data-testid="channel-secret"]')
    expect((secret.element as HTMLInputElement).value).toBe('')
    expect(secret.attributes('placeholder')).toContain('Stored')
    await wrapper.get('[data-testid="channel-url"]').setValue('ftp://nowhere')
    await wrapper.get('[data-testid="channel-form"]').trigger('submit')
    await flushPromises()
    const [url, init] = fetchMock.mock.calls[0]!
    expect(String(url)).toMatch(/\/notification-channels\/5$/)
    expect(init?.method).toBe('PATCH')
    expect(JSON.parse(String(init?.body)).config).toEqual({ url: 'ftp://nowhere' })
    expect(wrapper.text()).toContain('must be an http:// or https:// URL')
    expect(wrapper.get('[data-testid="channel-url"]').attributes('aria-invalid')).toBe('true')
    wrapper.unmount()
  })
})
