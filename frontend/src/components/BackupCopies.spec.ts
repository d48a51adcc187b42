import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { BackupCopy } from '@/api/types'
import { backup, jsonResponse } from '@/test/factories'

import BackupCopies from './BackupCopies.vue'

function copy(overrides: Partial<BackupCopy> = {}): BackupCopy {
  return {
    destination_id: 1,
    destination_name: 'local',
    status: 'stored',
    size: 1024,
    checksum_sha256: 'a'.repeat(64),
    verified_at: '2026-01-31T00:00:05Z',
    error_message: null,
    ...overrides,
  }
}

describe('BackupCopies', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => vi.stubGlobal('fetch', fetchMock))
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  it('shows each copy, marks a degraded backup, and retries a failed copy', async () => {
    const failed = copy({ destination_id: 2, destination_name: 'offsite', status: 'failed', size: null, error_message: 'Bucket unreachable.' })
    const b = backup({ id: 7, degraded: true, copies: [copy(), failed] })
    const wrapper = mount(BackupCopies, { props: { backup: b } })
    expect(wrapper.get('[data-testid="degraded"]').text()).toBe('Degraded')
    expect(wrapper.get('[data-testid="copy-offsite"]').text()).toContain('Bucket unreachable.')
    expect(wrapper.get('[data-testid="copy-local"]').find('[data-testid="retry-copy"]').exists()).toBe(false)

    fetchMock.mockResolvedValueOnce(
      jsonResponse({ success: true, data: [copy(), { ...failed, status: 'pending', error_message: null }], message: 'Copy queued for another try.' }, 202),
    )
    await wrapper.get('[data-testid="copy-offsite"] [data-testid="retry-copy"]').trigger('click')
    await flushPromises()
    const [url, init] = fetchMock.mock.calls[0]!
    expect(url).toBe('/admin/api/database-backups/7/copies/2/retry')
    expect(init?.method).toBe('POST')
    expect(wrapper.get('[data-testid="copy-offsite"]').text()).toContain('pending')
    expect(wrapper.emitted('retried')).toHaveLength(1)
  })
})
