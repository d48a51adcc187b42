import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { Destination } from '@/api/types'
import { jsonResponse } from '@/test/factories'

import DestinationsPage from './DestinationsPage.vue'

function destination(overrides: Partial<Destination> = {}): Destination {
  return {
    id: 1,
    name: 'local',
    kind: 'local',
    config: { path: '/var/backups' },
    has_secret: false,
    from_environment: true,
    objects_stored: 3,
    bytes_stored: 3 * 1024 * 1024,
    free_bytes: 10 * 1024 * 1024 * 1024,
    created_at: '2026-01-31T00:00:00Z',
    updated_at: '2026-01-31T00:00:00Z',
    ...overrides,
  }
}

describe('DestinationsPage', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => vi.stubGlobal('fetch', fetchMock))
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  it('lists each destination with where it is, what it stores and its free space', async () => {
    const offsite = destination({
      id: 2,
      name: 'offsite',
      kind: 's3',
      config: { endpoint_url: 'https://s3.example.com', bucket: 'backups', prefix: 'prod' },
      has_secret: true,
      from_environment: false,
      free_bytes: null,
    })
    fetchMock.mockResolvedValue(jsonResponse({ success: true, data: [destination(), offsite] }))
    const wrapper = mount(DestinationsPage)
    await flushPromises()
    const local = wrapper.get('[data-testid="destination-local"]')
    expect(local.get('[data-testid="destination-where"]').text()).toBe('/var/backups')
    expect(local.get('[data-testid="destination-stored"]').text()).toContain('3 object(s)')
    expect(local.find('[data-testid="delete-destination"]').exists()).toBe(false)
    const s3 = wrapper.get('[data-testid="destination-offsite"]')
    expect(s3.get('[data-testid="destination-where"]').text()).toBe('https://s3.example.com/backups/prod')
    expect(s3.get('[data-testid="destination-free"]').text()).toBe('Unknown')
  })

  it('runs the test and shows each step', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: [destination()] }))
    const wrapper = mount(DestinationsPage)
    await flushPromises()
    fetchMock.mockResolvedValueOnce(
      jsonResponse({
        success: true,
        data: {
          ok: false,
          message: 'The write step failed: disk full.',
          steps: [{ name: 'write', ok: false, message: 'disk full' }],
          free_bytes: null,
        },
      }),
    )
    await wrapper.get('[data-testid="test-destination"]').trigger('click')
    await flushPromises()
    const [url, init] = fetchMock.mock.calls[1]!
    expect(url).toBe('/admin/api/destinations/1/test')
    expect(init?.method).toBe('POST')
    const result = wrapper.get('[data-testid="destination-test-result"]')
    expect(result.text()).toContain('The write step failed: disk full.')
    expect(result.text()).toContain('write: failed')
  })

  it('an edit that leaves the secret empty does not send it (the stored one is kept)', async () => {
    const offsite = destination({
      id: 2,
      name: 'offsite',
      kind: 's3',
      config: { bucket: 'backups', prefix: '', access_key_id: 'AKID' },
      has_secret: true,
      from_environment: false,
    })
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: [offsite] }))
    const wrapper = mount(DestinationsPage)
    await flushPromises()
    await wrapper.get('[data-testid="edit-destination"]').trigger('click')
    expect((wrapper.get('[data-testid="destination-secret"]').element as HTMLInputElement).value).toBe('')
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: offsite }))
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: [offsite] }))
    await wrapper.get('[data-testid="destination-form"]').trigger('submit')
    await flushPromises()
    const [url, init] = fetchMock.mock.calls[1]!
    expect(url).toBe('/admin/api/destinations/2')
    expect(init?.method).toBe('PATCH')
    const body = JSON.parse(String(init?.body)) as { config: Record<string, unknown> }
    expect(body.config.bucket).toBe('backups')
    expect('secret_access_key' in body.config).toBe(false)
  })
})
