import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { useConnection } from '@/composables/useConnection'
import { jsonResponse } from '@/test/factories'

import { ApiError, http, onUnauthorized } from './http'

describe('http client', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    vi.stubGlobal('fetch', fetchMock)
    document.cookie = 'csrf_token=tok%2Ben'
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  it('unwraps data, meta and message', async () => {
    fetchMock.mockResolvedValue(
      jsonResponse({ success: true, data: [1], meta: { current_page: 1, per_page: 10, total: 1, last_page: 1 }, message: 'ok' }),
    )
    const result = await http.get<number[]>('/x', { query: { page: 2, search: '', status: undefined } })
    expect(result).toEqual({ data: [1], meta: { current_page: 1, per_page: 10, total: 1, last_page: 1 }, message: 'ok' })
    expect(fetchMock.mock.calls[0]?.[0]).toBe('/x?page=2')
  })

  it('sends the CSRF cookie back as a header on unsafe requests only', async () => {
    fetchMock.mockImplementation(async () => jsonResponse({ success: true, data: null }))
    await http.post('/x', { body: { a: 1 } })
    await http.get('/x')
    const post = fetchMock.mock.calls[0]?.[1]
    const get = fetchMock.mock.calls[1]?.[1]
    expect((post?.headers as Record<string, string>)['X-CSRF-Token']).toBe('tok+en')
    expect(post?.body).toBe('{"a":1}')
    expect((get?.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined()
  })

  it("throws the server's own message, status and field errors", async () => {
    fetchMock.mockResolvedValue(
      jsonResponse({ success: false, message: 'Backup 7 is still running.', errors: { id: ['busy'] } }, 409),
    )
    const error = await http.post('/x').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect(error).toMatchObject({ status: 409, message: 'Backup 7 is still running.', errors: { id: ['busy'] } })
  })

  it('reads Retry-After on 429', async () => {
    fetchMock.mockResolvedValue(jsonResponse({ success: false, message: 'Too many attempts.' }, 429, { 'Retry-After': '60' }))
    await expect(http.post('/x')).rejects.toMatchObject({ status: 429, retryAfter: 60 })
  })

  it('tells listeners about a 401', async () => {
    const listener = vi.fn()
    const off = onUnauthorized(listener)
    fetchMock.mockResolvedValue(jsonResponse({ success: false, message: 'Unauthenticated.' }, 401))
    await expect(http.get('/x')).rejects.toMatchObject({ status: 401 })
    expect(listener).toHaveBeenCalledOnce()
    off()
  })

  it('reports a lost connection and its recovery', async () => {
    const { online } = useConnection()
    fetchMock.mockRejectedValueOnce(new TypeError('Failed to fetch'))
    const error = await http.get('/x').catch((e: unknown) => e)
    expect(error).toMatchObject({ status: 0, isNetworkError: true })
    expect(online.value).toBe(false)
    fetchMock.mockResolvedValueOnce(jsonResponse({ success: true, data: 1 }))
    await http.get('/x')
    expect(online.value).toBe(true)
  })

  it('gives a readable message when the body is not the envelope', async () => {
    fetchMock.mockResolvedValue(new Response('<html>oops</html>', { status: 500, headers: { 'Content-Type': 'text/html' } }))
    await expect(http.get('/x')).rejects.toMatchObject({ status: 500, message: 'The server could not complete the request (HTTP 500).' })
  })
})
