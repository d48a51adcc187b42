import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { ApiError } from '@/api/http'
import { jsonResponse, source } from '@/test/factories'

import { resetSources, useSources } from './useSources'

describe('useSources', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    resetSources()
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  it('loads once for every page that asks, and shares the list', async () => {
    fetchMock.mockResolvedValue(jsonResponse({ success: true, data: [source({ name: 'b' }), source({ name: 'a' })] }))
    const first = useSources()
    const second = useSources()
    await Promise.all([first.ensureLoaded(), second.ensureLoaded()])
    await first.ensureLoaded()
    expect(fetchMock).toHaveBeenCalledTimes(1)
    expect(second.sources.value.map((s) => s.name)).toEqual(['b', 'a'])
    expect(second.loaded.value).toBe(true)
  })

  it('keeps the list sorted by name after a create and an update', async () => {
    const store = useSources()
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: [source({ id: 1, name: 'm' })] }))
    await store.refresh()
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: source({ id: 2, name: 'c' }), message: 'Source added.' }, 201))
    const created = await store.create({ name: 'c', engine: 'mysql', url: 'mysql://h/c', timezone: 'UTC', enabled: true })
    expect(created.message).toBe('Source added.')
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: source({ id: 1, name: 'z' }) }))
    await store.update(1, { name: 'z' })
    expect(store.sources.value.map((s) => s.name)).toEqual(['c', 'z'])
    const [, init] = fetchMock.mock.calls[2]!
    expect(init?.method).toBe('PATCH')
    expect(JSON.parse(String(init?.body))).toEqual({ name: 'z' })
  })

  it('deletes with or without the backups, as asked', async () => {
    const store = useSources()
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: [source({ id: 7 })] }))
    await store.refresh()
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: { deleted_backups: 3 }, message: 'Source deleted with its 3 backup(s).' }))
    expect(await store.remove(7, true)).toBe('Source deleted with its 3 backup(s).')
    expect(String(fetchMock.mock.calls[1]![0])).toBe('/admin/api/sources/7?delete_backups=true')
    expect(store.sources.value).toEqual([])
  })

  it('hands a refused save back with the field errors, and keeps the list', async () => {
    const store = useSources()
    fetchMock.mockResolvedValueOnce(
      jsonResponse({ success: false, message: 'The request is not valid.', errors: { schedule: ['minute field (1st) \'61\''] } }, 422),
    )
    const failure = await store.create({ name: 'x', engine: 'mysql', url: 'mysql://h/x', timezone: 'UTC', enabled: true, schedule: '61 * * * *' }).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(ApiError)
    expect((failure as ApiError).errors).toEqual({ schedule: ["minute field (1st) '61'"] })
    expect(store.sources.value).toEqual([])
  })

  it('says why the list could not be loaded', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: false, message: 'Only administrators can manage sources.' }, 403))
    const store = useSources()
    await store.refresh()
    expect(store.error.value).toBe('Only administrators can manage sources.')
  })
})
