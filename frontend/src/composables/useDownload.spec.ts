import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { backup, jsonResponse } from '@/test/factories'

import { startDownload } from './useDownload'
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
