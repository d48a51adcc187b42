import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { Source } from '@/api/types'
import { resetSources } from '@/composables/useSources'
import { jsonResponse, source } from '@/test/factories'

import SourceDialog from './SourceDialog.vue'

const RUNS = ['2026-02-01T01:30:00Z', '2026-02-02T01:30:00Z', '2026-02-03T01:30:00Z', '2026-02-04T01:30:00Z', '2026-02-05T01:30:00Z']

describe('SourceDialog', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    vi.useFakeTimers()
    resetSources()
    vi.stubGlobal('fetch', fetchMock)
    fetchMock.mockImplementation(async (input) => {
      if (String(input).endsWith('/schedule-preview')) return jsonResponse({ success: true, data: { runs: RUNS, interval_seconds: 86400 } })
      return jsonResponse({ success: true, data: source() })
    })
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
    vi.useRealTimers()
  })

  function open(stored: Source | null = null) {
    return mount(SourceDialog, { props: { open: true, source: stored }, attachTo: document.body })
  }
  function bodyOf(path: string): unknown {
    const call = fetchMock.mock.calls.find(([url]) => String(url).startsWith(path) && !String(url).endsWith('/schedule-preview'))
    return JSON.parse(String(call?.[1]?.body))
  }

  it('offers the three engines, each with its own URL shape', async () => {
    const wrapper = open()
    const options = wrapper.findAll('[data-testid="source-engine"] option')
    expect(options.map((o) => o.text())).toEqual(['MySQL / MariaDB', 'PostgreSQL', 'SQLite'])
    await wrapper.get('[data-testid="source-engine"]').setValue('postgresql')
    expect(wrapper.get('[data-testid="source-url"]').attributes('placeholder')).toBe('postgresql://user:password@host:5432/database')
    expect(wrapper.find('[data-testid="databases-group"]').exists()).toBe(true)
    wrapper.unmount()
  })

  it('asks a SQLite source for its file and no database names', async () => {
    const wrapper = open()
    await wrapper.get('[data-testid="source-name"]').setValue('app')
    await wrapper.get('[data-testid="source-engine"]').setValue('sqlite')
    expect(wrapper.get('[data-testid="source-url"]').attributes('placeholder')).toBe('sqlite:///absolute/path/to/app.db')
    expect(wrapper.find('[data-testid="databases-group"]').exists()).toBe(false)
    await wrapper.get('[data-testid="source-url"]').setValue('sqlite:///srv/app/app.db')
    await wrapper.get('[data-testid="source-dialog"]').trigger('submit')
    await flushPromises()
    const body = bodyOf('/admin/api/sources') as Record<string, unknown>
    expect(body).toMatchObject({ engine: 'sqlite', url: 'sqlite:///srv/app/app.db', databases: null, exclude: [] })
    wrapper.unmount()
  })

  it('shows the next five runs in the chosen zone as the schedule is typed', async () => {
    const wrapper = open()
    await wrapper.get('[data-testid="source-timezone"]').setValue('Europe/Berlin')
    await wrapper.get('[data-testid="source-schedule"]').setValue('30 2 * * *')
    await vi.advanceTimersByTimeAsync(500)
    await flushPromises()
    const runs = wrapper.findAll('[data-testid="next-run"]')
    expect(runs).toHaveLength(5)
    expect(runs[0]!.text()).toMatch(/02:30/)
    expect(runs[0]!.get('time').attributes('datetime')).toBe(RUNS[0])
    wrapper.unmount()
  })

  it('shows the server\'s 422 errors at their fields', async () => {
    fetchMock.mockImplementation(async () =>
      jsonResponse({ success: false, message: 'The request is not valid.', errors: { url: ["the scheme must be mysql, not 'ftp'"], name: ['bad name'] } }, 422),
    )
    const wrapper = open()
    await wrapper.get('[data-testid="source-name"]').setValue('shop')
    await wrapper.get('[data-testid="source-url"]').setValue('ftp://h/db')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[data-testid="error-url"]').text()).toBe("the scheme must be mysql, not 'ftp'")
    expect(wrapper.get('[data-testid="source-url"]').attributes('aria-invalid')).toBe('true')
    expect(wrapper.get('[data-testid="source-name"]').attributes('aria-describedby')).toContain('-name-error')
    expect(wrapper.get('[data-testid="source-form-error"]').text()).toBe('The request is not valid.')
    expect(wrapper.emitted('saved')).toBeUndefined()
    wrapper.unmount()
  })

  it('on edit keeps the stored URL when the field is left blank', async () => {
    const stored = source({ id: 9, name: 'shop', url: 'mysql://u:***@h/shop' })
    const wrapper = open(stored)
    const url = wrapper.get<HTMLInputElement>('[data-testid="source-url"]')
    expect(url.element.value).toBe('')
    expect(url.attributes('type')).toBe('password')
    expect(wrapper.text()).toContain('Leave blank to keep the stored URL (mysql://u:***@h/shop)')
    await wrapper.get('[data-testid="source-enabled"]').setValue(false)
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(bodyOf('/admin/api/sources/9')).toEqual({ enabled: false })
    expect(wrapper.emitted('saved')).toHaveLength(1)
    wrapper.unmount()
  })
})
