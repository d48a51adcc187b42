import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { resetSources } from '@/composables/useSources'
import { backup, jsonResponse, source } from '@/test/factories'

import ImportDropZone from './ImportDropZone.vue'

// A stand-in XMLHttpRequest: the test drives its upload progress and its answer.
class FakeXhr {
  static last: FakeXhr | null = null
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null }
  onload: (() => void) | null = null
  onerror: (() => void) | null = null
  onabort: (() => void) | null = null
  status = 0
  responseText = ''
  withCredentials = false
  url = ''
  headers: Record<string, string> = {}
  body: unknown = null
  constructor() {
    FakeXhr.last = this
  }
  open(_method: string, url: string) {
    this.url = url
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value
  }
  send(body: unknown) {
    this.body = body
  }
  abort() {
    this.onabort?.()
  }
  answer(status: number, body: unknown) {
    this.status = status
    this.responseText = JSON.stringify(body)
    this.onload?.()
  }
}

function dump(name = 'shop.sql.gz', size = 1000): File {
  return new File([new Uint8Array(size)], name)
}

describe('ImportDropZone', () => {
  beforeEach(() => {
    resetSources()
    FakeXhr.last = null
    vi.stubGlobal('XMLHttpRequest', FakeXhr)
    vi.stubGlobal('fetch', async () => jsonResponse({ success: true, data: [source({ id: 3, name: 'shop', databases: ['shop'] })] }))
  })
  afterEach(() => vi.unstubAllGlobals())

  async function mounted() {
    const wrapper = mount(ImportDropZone, { attachTo: document.body })
    await flushPromises()
    return wrapper
  }
  async function drop(wrapper: Awaited<ReturnType<typeof mounted>>, files: File[]) {
    await wrapper.get('[data-testid="import-drop"]').trigger('drop', { dataTransfer: { files } })
  }

  it('uploads a dropped dump as raw bytes, shows its progress, then says it is done', async () => {
    const wrapper = await mounted()
    await drop(wrapper, [dump()])
    expect(wrapper.get('[data-testid="import-file"]').text()).toContain('shop.sql.gz')
    expect(wrapper.get<HTMLInputElement>('[data-testid="import-database"]').element.value).toBe('shop')
    await wrapper.get('[data-testid="import-submit"]').trigger('click')
    const xhr = FakeXhr.last!
    expect(xhr.url).toBe('/admin/api/sources/3/imports?filename=shop.sql.gz&database=shop')
    expect(xhr.headers['Content-Type']).toBe('application/octet-stream')
    expect(xhr.body).toBeInstanceOf(File)

    xhr.upload.onprogress!({ loaded: 400, total: 1000, lengthComputable: true })
    await flushPromises()
    expect(wrapper.get('[role="progressbar"]').attributes('aria-valuenow')).toBe('40')
    expect(wrapper.get('[data-testid="import-progress"]').text()).toContain('40 %')

    xhr.answer(201, { success: true, data: backup({ id: 77 }), message: 'Imported.' })
    await flushPromises()
    expect(wrapper.emitted('imported')![0]![0]).toMatchObject({ id: 77 })
    expect(wrapper.find('[data-testid="import-progress"]').exists()).toBe(false)
    wrapper.unmount()
  })

  it('refuses a file it can not import before sending anything', async () => {
    const wrapper = await mounted()
    await drop(wrapper, [dump('notes.txt')])
    expect(wrapper.get('[data-testid="import-error"]').text()).toContain('use a .sql, .sql.gz or .sql.zst file')
    await drop(wrapper, [dump(), dump('b.sql')])
    expect(wrapper.get('[data-testid="import-error"]').text()).toBe('Drop one file at a time.')
    expect(wrapper.get('[data-testid="import-submit"]').attributes('disabled')).toBeDefined()
    expect(FakeXhr.last).toBeNull()
    wrapper.unmount()
  })

  it('shows the server\'s reason when it refuses the upload', async () => {
    const wrapper = await mounted()
    await drop(wrapper, [dump('shop.sql')])
    await wrapper.get('[data-testid="import-submit"]').trigger('click')
    FakeXhr.last!.answer(422, { success: false, message: 'The file is not a SQL dump.', errors: { body: ['no CREATE or INSERT statement found'] } })
    await flushPromises()
    expect(wrapper.get('[data-testid="import-error"]').text()).toBe('The file is not a SQL dump. no CREATE or INSERT statement found')
    FakeXhr.last = null
    await wrapper.get('[data-testid="import-submit"]').trigger('click')
    FakeXhr.last!.answer(413, {})
    await flushPromises()
    expect(wrapper.get('[data-testid="import-error"]').text()).toBe('The file is larger than the server accepts.')
    wrapper.unmount()
  })
})
