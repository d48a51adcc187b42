import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'

import type { Verification } from '@/api/types'
import { backup, jsonResponse } from '@/test/factories'

import BackupVerifications from './BackupVerifications.vue'

function verification(overrides: Partial<Verification> = {}): Verification {
  return {
    id: 7,
    backup_id: 40,
    source_id: 3,
    status: 'passed',
    tables: [{ name: 'items', expected_rows: 300, restored_rows: 300 }],
    duration_ms: 1200,
    error_message: null,
    started_at: '2026-02-01T00:00:00Z',
    finished_at: '2026-02-01T00:00:01Z',
    trigger: 'api',
    created_at: '2026-02-01T00:00:00Z',
    ...overrides,
  }
}

const MANIFEST = {
  format: 1,
  engine: 'mysql',
  server_version: '10.11.19-MariaDB',
  tables: [
    { name: 'items', rows: 300 },
    { name: 'tags', rows: 2 },
  ],
  objects: { view: 1, trigger: 2, event: 0 },
}

describe('BackupVerifications', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows the manifest and the verdicts of this backup only, a mismatch marked', async () => {
    vi.stubGlobal('fetch', async () =>
      jsonResponse({
        success: true,
        data: [
          verification({
            id: 8,
            status: 'failed',
            error_message: 'table `tags` has 1 rows, the dump held 2',
            tables: [{ name: 'tags', expected_rows: 2, restored_rows: 1 }],
          }),
          verification({ id: 7 }),
          verification({ id: 6, backup_id: 99 }),
        ],
      }),
    )
    const wrapper = mount(BackupVerifications, {
      props: { backup: backup({ id: 40, source_id: 3, manifest: MANIFEST }), sourceId: 3 },
    })
    await flushPromises()
    expect(wrapper.get('[data-testid="manifest-summary"]').text()).toMatch(
      /2 tables with 302 rows; objects: 1 view, 2 triggers;\s+server 10\.11\.19-MariaDB/,
    )
    expect(wrapper.findAll('[data-testid="verification-list"] > li')).toHaveLength(2)
    expect(wrapper.find('[data-testid="verification-6"]').exists()).toBe(false)
    const failed = wrapper.get('[data-testid="verification-8"]')
    expect(failed.get('[data-testid="verification-status"]').text()).toBe('Failed')
    expect(failed.get('[data-testid="verification-error"]').text()).toContain('tags')
    expect(failed.find('tr.mismatch').text()).toContain('tags')
    expect(wrapper.get('[data-testid="verification-7"] [data-testid="verification-status"]').text()).toBe('Passed')
    wrapper.unmount()
  })

  it('"Verify (test restore)" queues one, then follows it until it has a verdict', async () => {
    vi.useFakeTimers()
    const calls: string[] = []
    let polls = 0
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      calls.push(`${init.method} ${url}`)
      if (init.method === 'POST') {
        return jsonResponse({ success: true, message: 'Verification queued.', data: verification({ id: 9, status: 'pending', tables: [], finished_at: null, duration_ms: null }) }, 202)
      }
      if (url.startsWith('/admin/api/verifications/9')) {
        polls += 1
        return jsonResponse({ success: true, data: verification({ id: 9, status: polls > 1 ? 'passed' : 'running' }) })
      }
      return jsonResponse({ success: true, data: [] })
    })
    const wrapper = mount(BackupVerifications, { props: { backup: backup({ id: 40, source_id: 3 }), sourceId: 3 } })
    await flushPromises()
    expect(wrapper.find('[data-testid="no-verifications"]').exists()).toBe(true)
    expect(wrapper.find('[data-testid="no-manifest"]').exists()).toBe(true)
    await wrapper.get('[data-testid="verify-restore"]').trigger('click')
    await flushPromises()
    expect(calls).toContain('POST /admin/api/sources/3/verifications')
    expect(wrapper.get('[data-testid="verify-restore"]').attributes('disabled')).toBeDefined()
    expect(wrapper.get('[data-testid="verification-status"]').text()).toBe('Queued')
    await vi.advanceTimersByTimeAsync(2100)
    await flushPromises()
    expect(wrapper.get('[data-testid="verification-status"]').text()).toBe('Restoring…')
    await vi.advanceTimersByTimeAsync(2100)
    await flushPromises()
    expect(wrapper.get('[data-testid="verification-status"]').text()).toBe('Passed')
    expect(wrapper.get('[data-testid="verify-restore"]').attributes('disabled')).toBeUndefined()
    vi.useRealTimers()
    wrapper.unmount()
  })

  it('says why a verification could not be queued', async () => {
    vi.stubGlobal('fetch', async (_url: string, init: RequestInit) =>
      init.method === 'POST'
        ? jsonResponse({ success: false, message: "Source 'shop' has no verify_url: set a server." }, 409)
        : jsonResponse({ success: true, data: [] }),
    )
    const wrapper = mount(BackupVerifications, { props: { backup: backup({ id: 41, source_id: 3 }), sourceId: 3 } })
    await flushPromises()
    await wrapper.get('[data-testid="verify-restore"]').trigger('click')
    await flushPromises()
    expect(wrapper.get('[data-testid="verify-error"]').text()).toContain('no verify_url')
    wrapper.unmount()
  })
})
