import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'

import type { Backup } from '@/api/types'
import { resetSources } from '@/composables/useSources'
import { backup, jsonResponse, source, statistics } from '@/test/factories'

import BackupsDashboard from './BackupsDashboard.vue'

function page(items: Backup[], total: number) {
  return { success: true, data: items, meta: { current_page: 2, per_page: 10, total, last_page: Math.ceil(total / 10) } }
}

describe('BackupsDashboard', () => {
  let listCalls: URL[] = []
  let rows: Backup[] = []
  let statisticsCalls: URL[] = []

  beforeEach(() => {
    vi.useFakeTimers()
    resetSources()
    listCalls = []
    statisticsCalls = []
    rows = [backup({ id: 11, filename: 'eleven.sql.zst' }), backup({ id: 12, filename: 'twelve.sql.zst' })]
    vi.stubGlobal('fetch', async (input: string) => {
      const url = new URL(input, 'http://test')
      if (url.pathname === '/health') return jsonResponse({ success: true, data: { status: 'ok', checks: {} } })
      if (url.pathname === '/admin/api/sources') {
        return jsonResponse({ success: true, data: [source({ id: 4, name: 'crm', databases: ['crm', 'billing'] }), source({ id: 5, name: 'shop' })] })
      }
      if (url.pathname.endsWith('/statistics')) {
        statisticsCalls.push(url)
        return jsonResponse({ success: true, data: statistics({ trashed_backups: 3 }) })
      }
      if (url.searchParams.get('per_page') === null) listCalls.push(url)
      return jsonResponse(page(rows, 25))
    })
  })
  afterEach(() => {
    vi.unstubAllGlobals()
    vi.useRealTimers()
  })

  async function mountAt(path: string) {
    const router = createRouter({
      history: createMemoryHistory(),
      routes: [{ path: '/admin/database-backups', component: BackupsDashboard }],
    })
    await router.push(path)
    const wrapper = mount({ template: '<RouterView />' }, { global: { plugins: [router] }, attachTo: document.body })
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    return { wrapper, router }
  }

  it('starts from the URL and keeps page, filters and selection across refreshes', async () => {
    const { wrapper, router } = await mountAt('/admin/database-backups?page=2&sort=oldest&status=completed&selected=12')
    expect(Object.fromEntries(listCalls[0]!.searchParams)).toMatchObject({ page: '2', sort: 'oldest', status: 'completed' })
    expect(wrapper.get<HTMLInputElement>('[data-testid="row-12"] input').element.checked).toBe(true)
    expect(wrapper.get('[data-testid="bulk-bar"]').text()).toContain('1 selected')

    rows = [...rows, backup({ id: 13 })]
    await vi.advanceTimersByTimeAsync(30_000)
    await flushPromises()
    expect(listCalls).toHaveLength(2)
    expect(wrapper.find('[data-testid="row-13"]').exists()).toBe(true)
    expect(wrapper.get<HTMLInputElement>('[data-testid="row-12"] input').element.checked).toBe(true)
    expect(router.currentRoute.value.query).toEqual({ page: '2', sort: 'oldest', status: 'completed', selected: '12' })
    wrapper.unmount()
  })

  it('writes changes to the URL and goes back to page 1 when a filter changes', async () => {
    const { wrapper, router } = await mountAt('/admin/database-backups?page=3')
    await wrapper.get('[data-testid="row-11"] input').setValue(true)
    await wrapper.get('[data-testid="sort"]').setValue('size_desc')
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ sort: 'size_desc', selected: '11' })
    expect(Object.fromEntries(listCalls.at(-1)!.searchParams)).toMatchObject({ page: '1', sort: 'size_desc' })
    wrapper.unmount()
  })

  it('debounces the search', async () => {
    const { wrapper, router } = await mountAt('/admin/database-backups')
    const before = listCalls.length
    const input = wrapper.get('[data-testid="search"]')
    await input.setValue('sh')
    await vi.advanceTimersByTimeAsync(100)
    await input.setValue('shop')
    await vi.advanceTimersByTimeAsync(100)
    expect(listCalls.length).toBe(before)
    await vi.advanceTimersByTimeAsync(400)
    await flushPromises()
    expect(listCalls.length).toBe(before + 1)
    expect(listCalls.at(-1)!.searchParams.get('search')).toBe('shop')
    expect(router.currentRoute.value.query).toEqual({ search: 'shop' })
    wrapper.unmount()
  })

  it('exports the filters the list shows, not the page', async () => {
    const clicked: string[] = []
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.getAttribute('href') ?? '')
    })
    const { wrapper } = await mountAt('/admin/database-backups?page=2&sort=oldest&status=completed&search=shop&view=trash')
    await wrapper.get('[data-testid="export-csv"]').trigger('click')
    await flushPromises()
    expect(clicked).toHaveLength(1)
    const url = new URL(clicked[0]!, 'http://test')
    expect(url.pathname).toBe('/admin/api/database-backups/export.csv')
    expect(Object.fromEntries(url.searchParams)).toEqual({ search: 'shop', status: 'completed', sort: 'oldest', view: 'trash' })
    vi.restoreAllMocks()
    wrapper.unmount()
  })

  it('switching to the trash clears the selection and shows the trash count', async () => {
    const { wrapper, router } = await mountAt('/admin/database-backups?selected=11')
    expect(wrapper.get('[data-testid="tab-trash"]').text()).toContain('3')
    await wrapper.get('[data-testid="tab-trash"]').trigger('click')
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ view: 'trash' })
    expect(listCalls.at(-1)!.searchParams.get('view')).toBe('trash')
    wrapper.unmount()
  })

  it('filters by source and database through the URL, and shows where each backup came from', async () => {
    rows = [backup({ id: 21, source_id: 4, source_name: 'crm', database_name: 'billing' })]
    const { wrapper, router } = await mountAt('/admin/database-backups?source_id=4')
    expect(Object.fromEntries(listCalls.at(-1)!.searchParams)).toMatchObject({ source_id: '4' })
    expect(Object.fromEntries(statisticsCalls.at(-1)!.searchParams)).toMatchObject({ source_id: '4' })
    expect(wrapper.get<HTMLSelectElement>('[data-testid="source-filter"]').element.value).toBe('4')
    expect(wrapper.get('[data-testid="row-21"] [data-testid="backup-origin"]').text()).toBe('crm / billing')
    const databases = wrapper.findAll('[data-testid="database-filter"] option').map((o) => o.text())
    expect(databases).toEqual(['All', 'billing', 'crm'])

    await wrapper.get('[data-testid="database-filter"]').setValue('billing')
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ source_id: '4', database: 'billing' })
    expect(Object.fromEntries(listCalls.at(-1)!.searchParams)).toMatchObject({ source_id: '4', database: 'billing', page: '1' })

    // Another source: its database filter no longer applies.
    await wrapper.get('[data-testid="source-filter"]').setValue('5')
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    expect(router.currentRoute.value.query).toEqual({ source_id: '5' })
    wrapper.unmount()
  })
})

describe('BackupsDashboard: bulk results and dialogs', () => {
  let bulkAnswer: unknown
  beforeEach(() => {
    vi.useFakeTimers()
    vi.stubGlobal('fetch', async (input: string, init?: RequestInit) => {
      const url = new URL(input, 'http://test')
      if (url.pathname === '/health') return jsonResponse({ success: true, data: { status: 'ok', checks: {} } })
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics({ purge_after_days: 3 }) })
      if (init?.method === 'POST' && url.pathname.endsWith('/bulk-trash')) return jsonResponse(bulkAnswer)
      return jsonResponse(page([backup({ id: 11, filename: 'eleven.sql.zst' }), backup({ id: 12, filename: 'twelve.sql.zst' })], 2))
    })
  })
  afterEach(() => {
    document.body.innerHTML = ''
    vi.unstubAllGlobals()
    vi.useRealTimers()
  })

  async function mountAt(path: string) {
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/admin/database-backups', component: BackupsDashboard }] })
    await router.push(path)
    const wrapper = mount({ template: '<RouterView />' }, { global: { plugins: [router] }, attachTo: document.body })
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
    return wrapper
  }

  async function bulkTrash(wrapper: Awaited<ReturnType<typeof mountAt>>) {
    await wrapper.get('[data-testid="bulk-trash"]').trigger('click')
    await flushPromises()
    await wrapper.get('[data-testid="confirm-button"]').trigger('submit')
    await vi.advanceTimersByTimeAsync(0)
    await flushPromises()
  }

  it('a bulk action that fully succeeded gives only a toast, no results dialog', async () => {
    bulkAnswer = { success: true, message: '2 of 2 backups moved to trash.', data: { results: [
      { id: 11, success: true, status: 200, message: 'Moved.' },
      { id: 12, success: true, status: 200, message: 'Moved.' },
    ] } }
    const wrapper = await mountAt('/admin/database-backups?selected=11,12')
    await bulkTrash(wrapper)
    expect(document.querySelector('[data-testid="bulk-result"]')).toBeNull()
    wrapper.unmount()
  })

  it('a partial result opens the dialog with each item', async () => {
    bulkAnswer = { success: true, message: '1 of 2 backups moved to trash.', data: { results: [
      { id: 11, success: true, status: 200, message: 'Moved.' },
      { id: 12, success: false, status: 409, message: 'Backup 12 is in progress.' },
    ] } }
    const wrapper = await mountAt('/admin/database-backups?selected=11,12')
    await bulkTrash(wrapper)
    const dialog = document.querySelector('[data-testid="bulk-result"]')
    expect(dialog?.textContent).toContain('Backup 12 is in progress.')
    wrapper.unmount()
  })

  it('states the purge age the API gives in the trash confirmation', async () => {
    const wrapper = await mountAt('/admin/database-backups?selected=11')
    await wrapper.get('[data-testid="bulk-trash"]').trigger('click')
    await flushPromises()
    expect(document.body.textContent).toContain('deleted for good after 3 days')
    wrapper.unmount()
  })

  it('offers bulk restore in the trash, and focuses "Cancel" in the permanent delete', async () => {
    const wrapper = await mountAt('/admin/database-backups?view=trash&selected=11')
    expect(wrapper.find('[data-testid="bulk-trash"]').exists()).toBe(false)
    expect(wrapper.get('[data-testid="bulk-untrash"]').text()).toContain('Restore from trash')
    await wrapper.get('[data-testid="bulk-delete"]').trigger('click')
    await flushPromises()
    expect(document.activeElement?.getAttribute('data-testid')).toBe('confirm-cancel')
    wrapper.unmount()
  })

  it('folds the statistics and the chart behind a toggle (shown on small screens)', async () => {
    const wrapper = await mountAt('/admin/database-backups')
    const toggle = wrapper.get('[data-testid="overview-toggle"]')
    expect(toggle.attributes('aria-expanded')).toBe('false')
    expect(wrapper.get('.overview').classes()).not.toContain('open')
    await toggle.trigger('click')
    expect(toggle.attributes('aria-expanded')).toBe('true')
    expect(wrapper.get('.overview').classes()).toContain('open')
    expect(toggle.text()).toBe('Hide statistics and chart')
    wrapper.unmount()
  })
})
