import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { backup, jsonResponse } from '@/test/factories'

import { startDownload, startExport } from './useDownload'
import { useToasts } from './useToasts'

describe('startDownload', () => {
  const clicked: string[] = []
  let answer: Response
  beforeEach(() => {
    clicked.length = 0
    vi.stubGlobal('fetch', async () => answer)
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.getAttribute('href') ?? '')
    })
    const { toasts, dismiss } = useToasts()
    toasts.value.forEach((t) => dismiss(t.id))
  })
  afterEach(() => {
    vi.restoreAllMocks()
    vi.unstubAllGlobals()
  })
  const messages = () => useToasts().toasts.value.map((t) => t.message)

  it('hands a usable backup to the browser, the .sql or the stored file', async () => {
    answer = jsonResponse({ success: true, data: backup({ id: 7 }) })
    expect(await startDownload(backup({ id: 7 }))).not.toBeNull()
    answer = jsonResponse({ success: true, data: backup({ id: 7 }) })
    await startDownload(backup({ id: 7 }), true)
    expect(clicked).toEqual(['/admin/database-backups/7/download', '/admin/database-backups/7/download?raw=1'])
    expect(messages()).toEqual([])
  })

  it('says why instead of starting a download that would fail silently', async () => {
    // The list still showed it as fine; a verification found it corrupt since.
    answer = jsonResponse({ success: true, data: backup({ id: 8, filename: 'b.sql.zst', integrity_status: 'corrupt' }) })
    expect(await startDownload(backup({ id: 8 }))).toBeNull()
    expect(clicked).toEqual([])
    expect(messages()[0]).toMatch(/^b\.sql\.zst can't be downloaded\. .*damaged/)
  })

  it("shows the server's own message when the backup can't be read", async () => {
    answer = jsonResponse({ success: false, message: 'Backup 9 not found.' }, 404)
    expect(await startDownload(backup({ id: 9 }))).toBeNull()
    expect(clicked).toEqual([])
    expect(messages()).toEqual(['Backup 9 not found.'])
  })
})

describe('startExport', () => {
  const clicked: string[] = []
  const asked: URL[] = []
  let answer: Response
  beforeEach(() => {
    clicked.length = 0
    asked.length = 0
    vi.stubGlobal('fetch', async (input: string) => {
      asked.push(new URL(input, 'http://test'))
      return answer
    })
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this.getAttribute('href') ?? '')
    })
    const { toasts, dismiss } = useToasts()
    toasts.value.forEach((t) => dismiss(t.id))
  })
  afterEach(() => {
    vi.restoreAllMocks()
    vi.unstubAllGlobals()
  })
  const messages = () => useToasts().toasts.value.map((t) => t.message)
  const listed = (total: number) =>
    jsonResponse({ success: true, data: [], meta: { current_page: 1, per_page: 1, total, last_page: total } })

  it('downloads every page with the filters in force, empty ones left out', async () => {
    answer = listed(1234)
    expect(await startExport({ search: 'shop & co', status: 'failed', sort: 'size_desc', view: 'trash' })).toBe(true)
    expect(clicked).toEqual([
      '/admin/api/database-backups/export.csv?search=shop+%26+co&status=failed&sort=size_desc&view=trash',
    ])
    // The filters were checked on the list first, one row.
    expect(Object.fromEntries(asked[0]!.searchParams)).toMatchObject({ status: 'failed', per_page: '1', view: 'trash' })
    expect(messages()).toEqual(['Exporting 1234 backups as CSV.'])

    answer = listed(1)
    await startExport({ search: undefined, status: undefined, sort: 'latest', view: 'active' })
    expect(clicked[1]).toBe('/admin/api/database-backups/export.csv?sort=latest&view=active')
    expect(messages()[1]).toBe('Exporting 1 backup as CSV.')
  })

  it("says why instead of a download the browser would fail silently", async () => {
    answer = jsonResponse({ success: false, message: 'Your session has expired; log in again.' }, 401)
    expect(await startExport({ sort: 'latest', view: 'active' })).toBe(false)
    expect(clicked).toEqual([])
    expect(messages()).toEqual(['Your session has expired; log in again.'])
  })
})
