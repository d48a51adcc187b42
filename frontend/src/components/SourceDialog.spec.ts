import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { Source } from '@/api/types'
import { resetSources } from '@/composables/useSources'
import { destination, jsonResponse, source } from '@/test/factories'

import SourceDialog from './SourceDialog.vue'

const LOCAL = destination({ id: 1, name: 'local', from_environment: true, config: { path: '/var/backups' } })
const OFFSITE = destination({ id: 2, name: 'offsite', kind: 's3', config: { bucket: 'backups', prefix: 'prod' } })
const NAS = destination({ id: 3, name: 'nas', config: { path: '/mnt/nas' } })
const AGE_A = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'
const AGE_B = 'age1lggyhqrw2nlhcxprm67z43rta597azn8gknawjehu9d9dl0jq3yqqvfafg'

const RUNS = ['2026-02-01T01:30:00Z', '2026-02-02T01:30:00Z', '2026-02-03T01:30:00Z', '2026-02-04T01:30:00Z', '2026-02-05T01:30:00Z']

describe('SourceDialog', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    vi.useFakeTimers()
    resetSources()
    vi.stubGlobal('fetch', fetchMock)
    fetchMock.mockImplementation(async (input) => {
      if (String(input).endsWith('/schedule-preview')) return jsonResponse({ success: true, data: { runs: RUNS, interval_seconds: 86400 } })
      if (String(input).startsWith('/admin/api/destinations')) return jsonResponse({ success: true, data: [LOCAL, OFFSITE, NAS] })
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
  function saves(): number {
    return fetchMock.mock.calls.filter(([url, init]) => String(url).startsWith('/admin/api/sources') && init?.method && init.method !== 'GET').length
  }
  /** The destination rows' names, as listed. */
  function listed(wrapper: ReturnType<typeof open>): string[] {
    return wrapper.findAll('[data-testid="destinations-group"] li strong').map((s) => s.text())
  }
  function checked(wrapper: ReturnType<typeof open>, name: string): boolean {
    return wrapper.get<HTMLInputElement>(`[data-testid="destination-check-${name}"]`).element.checked
  }
  async function fillNew(wrapper: ReturnType<typeof open>) {
    await wrapper.get('[data-testid="source-name"]').setValue('shop')
    await wrapper.get('[data-testid="source-url"]').setValue('mysql://u:p@h/shop')
  }
  async function submit(wrapper: ReturnType<typeof open>) {
    await wrapper.get('[data-testid="source-dialog"]').trigger('submit')
    await flushPromises()
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

  it('lists the destinations, starts a new source on local, and sends the chosen ones in order after reordering', async () => {
    const wrapper = open()
    await flushPromises()
    expect(fetchMock.mock.calls.some(([url]) => String(url) === '/admin/api/destinations')).toBe(true)
    expect(listed(wrapper)).toEqual(['local', 'offsite', 'nas'])
    expect(checked(wrapper, 'local')).toBe(true)
    expect(checked(wrapper, 'offsite')).toBe(false)
    expect(wrapper.text()).toContain('read the first copy first')
    // One chosen: nothing to reorder.
    expect(wrapper.find('[data-testid="destination-up-local"]').exists()).toBe(false)

    await wrapper.get('[data-testid="destination-check-nas"]').setValue(true)
    await wrapper.get('[data-testid="destination-check-offsite"]').setValue(true)
    expect(listed(wrapper)).toEqual(['local', 'nas', 'offsite'])
    expect(wrapper.get('[data-testid="destination-up-local"]').attributes('disabled')).toBeDefined()
    expect(wrapper.get('[data-testid="destination-down-offsite"]').attributes('disabled')).toBeDefined()

    const up = wrapper.get('[data-testid="destination-up-offsite"]')
    expect(up.attributes('aria-label')).toBe('Move offsite up')
    await up.trigger('click')
    await flushPromises()
    expect(listed(wrapper)).toEqual(['local', 'offsite', 'nas'])
    await wrapper.get('[data-testid="destination-up-offsite"]').trigger('click')
    await flushPromises()
    expect(listed(wrapper)).toEqual(['offsite', 'local', 'nas'])
    // At the top its "up" is disabled, so the focus moves to its "down".
    expect(document.activeElement).toBe(wrapper.get('[data-testid="destination-down-offsite"]').element)
    await wrapper.get('[data-testid="destination-down-local"]').trigger('click')
    await flushPromises()
    expect(listed(wrapper)).toEqual(['offsite', 'nas', 'local'])

    await fillNew(wrapper)
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources')).toMatchObject({ name: 'shop', destination_ids: [2, 3, 1] })
    wrapper.unmount()
  })

  it('refuses to leave no destination chosen', async () => {
    const wrapper = open()
    await flushPromises()
    const local = wrapper.get<HTMLInputElement>('[data-testid="destination-check-local"]')
    await local.setValue(false)
    expect(local.element.checked).toBe(true)
    expect(wrapper.get('[data-testid="error-destination_ids"]').text()).toContain('at least one destination')
    expect(wrapper.get('[data-testid="destinations-group"]').attributes('aria-describedby')).toContain('-destination_ids-error')

    // Another chosen first, then the first may go.
    await wrapper.get('[data-testid="destination-check-offsite"]').setValue(true)
    expect(wrapper.find('[data-testid="error-destination_ids"]').exists()).toBe(false)
    await local.setValue(false)
    expect(checked(wrapper, 'local')).toBe(false)
    await wrapper.get<HTMLInputElement>('[data-testid="destination-check-offsite"]').setValue(false)
    expect(checked(wrapper, 'offsite')).toBe(true)

    await fillNew(wrapper)
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources')).toMatchObject({ destination_ids: [2] })
    wrapper.unmount()
  })

  it('sends encryption with the recipients one a line, trimmed', async () => {
    const wrapper = open()
    await flushPromises()
    expect(wrapper.find('[data-testid="source-recipients"]').exists()).toBe(false)
    expect(wrapper.text()).toContain('age -d -i key.txt FILE | zstd -d')
    await wrapper.get('[data-testid="source-encrypt"]').setValue(true)
    const recipients = wrapper.get('[data-testid="source-recipients"]')
    expect(wrapper.get(`label[for="${recipients.attributes('id')}"]`).text()).toContain('Recipients')
    await recipients.setValue(`  ${AGE_A}  \n\n\t${AGE_B} \r\n`)
    await fillNew(wrapper)
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources')).toMatchObject({ encryption: { enabled: true, recipients: [AGE_A, AGE_B] } })
    wrapper.unmount()
  })

  it('sends a new source without encryption as disabled', async () => {
    const wrapper = open()
    await flushPromises()
    await fillNew(wrapper)
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources')).toMatchObject({ encryption: { enabled: false, recipients: [] }, destination_ids: [1] })
    wrapper.unmount()
  })

  it('on edit lists the source\'s destinations in its order and sends only what changed', async () => {
    const stored = source({ id: 9, destination_ids: [3, 1], encryption: { enabled: true, recipients: [AGE_A] } })
    const wrapper = open(stored)
    await flushPromises()
    expect(listed(wrapper)).toEqual(['nas', 'local', 'offsite'])
    expect(wrapper.get<HTMLInputElement>('[data-testid="source-encrypt"]').element.checked).toBe(true)
    expect(wrapper.get<HTMLTextAreaElement>('[data-testid="source-recipients"]').element.value).toBe(AGE_A)

    await wrapper.get('[data-testid="destination-down-nas"]').trigger('click')
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources/9')).toEqual({ destination_ids: [1, 3] })
    wrapper.unmount()
  })

  it('on edit sends encryption only when it changed', async () => {
    const stored = source({ id: 9, destination_ids: [1], encryption: { enabled: true, recipients: [AGE_A] } })
    const wrapper = open(stored)
    await flushPromises()
    await wrapper.get('[data-testid="source-recipients"]').setValue(`${AGE_A}\n${AGE_B}`)
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources/9')).toEqual({ encryption: { enabled: true, recipients: [AGE_A, AGE_B] } })
    wrapper.unmount()
  })

  it('keeps the stored destinations when the list cannot be loaded', async () => {
    fetchMock.mockImplementation(async (input) => {
      if (String(input).startsWith('/admin/api/destinations')) return jsonResponse({ success: false, message: 'The server is busy.' }, 503)
      return jsonResponse({ success: true, data: source() })
    })
    const stored = source({ id: 9, destination_ids: [3, 1] })
    const wrapper = open(stored)
    await flushPromises()
    expect(wrapper.get('[data-testid="destinations-load-error"]').text()).toContain('The destinations could not be loaded')
    expect(wrapper.get('[data-testid="destinations-kept"]').text()).toContain('3, 1')
    expect(wrapper.find('[data-testid="destination-check-local"]').exists()).toBe(false)
    await wrapper.get('[data-testid="source-enabled"]').setValue(false)
    await submit(wrapper)
    expect(bodyOf('/admin/api/sources/9')).toEqual({ enabled: false })
    wrapper.unmount()
  })

  it('a new source saved while the list cannot be loaded goes to the server\'s default', async () => {
    fetchMock.mockImplementation(async (input) => {
      if (String(input).startsWith('/admin/api/destinations')) throw new TypeError('Failed to fetch')
      return jsonResponse({ success: true, data: source() })
    })
    const wrapper = open()
    await flushPromises()
    expect(wrapper.find('[data-testid="destinations-load-error"]').exists()).toBe(true)
    await fillNew(wrapper)
    await submit(wrapper)
    expect(saves()).toBe(1)
    expect(bodyOf('/admin/api/sources')).not.toHaveProperty('destination_ids')
    wrapper.unmount()
  })

  it('shows the server\'s 422 errors for destinations and encryption at their fields', async () => {
    const wrapper = open()
    await flushPromises()
    fetchMock.mockImplementation(async () =>
      jsonResponse(
        {
          success: false,
          message: 'Invalid encryption.recipients.0: not an age public key.',
          errors: { 'encryption.recipients.0': ['not an age public key'], destination_ids: ['unknown destination: 7'] },
        },
        422,
      ),
    )
    await wrapper.get('[data-testid="source-encrypt"]').setValue(true)
    await wrapper.get('[data-testid="source-recipients"]').setValue('age1nope')
    await fillNew(wrapper)
    await submit(wrapper)
    expect(wrapper.get('[data-testid="error-recipients"]').text()).toBe('not an age public key')
    expect(wrapper.get('[data-testid="source-recipients"]').attributes('aria-invalid')).toBe('true')
    expect(wrapper.get('[data-testid="source-recipients"]').attributes('aria-describedby')).toContain('-recipients-error')
    expect(wrapper.find('[data-testid="error-encryption"]').exists()).toBe(false)
    expect(wrapper.get('[data-testid="error-destination_ids"]').text()).toBe('unknown destination: 7')
    expect(wrapper.emitted('saved')).toBeUndefined()

    // An error about encryption as a whole shows at its checkbox.
    fetchMock.mockImplementation(async () =>
      jsonResponse({ success: false, message: 'Invalid.', errors: { encryption: ['encryption needs the key'] } }, 422),
    )
    await submit(wrapper)
    expect(wrapper.get('[data-testid="error-encryption"]').text()).toBe('encryption needs the key')
    expect(wrapper.get('[data-testid="source-encrypt"]').attributes('aria-describedby')).toContain('-encryption-error')
    wrapper.unmount()
  })
})
