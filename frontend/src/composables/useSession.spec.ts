import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { admin, jsonResponse } from '@/test/factories'

import { loadSession } from './useSession'

function clearCookies(): void {
  for (const part of document.cookie.split(';')) {
    const name = part.split('=')[0]?.trim()
    if (name) document.cookie = `${name}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/`
  }
}

describe('loadSession', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    clearCookies()
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
    clearCookies()
  })

  it('does not ask /api/auth/me without a login cookie (no 401 in the console on every visit)', async () => {
    expect(await loadSession(true)).toBeNull()
    expect(fetchMock).not.toHaveBeenCalled()
  })

  it('asks when the login cookie is there', async () => {
    document.cookie = 'csrf_token=abc; path=/'
    fetchMock.mockResolvedValue(jsonResponse({ success: true, data: { user: admin(), auth: 'session' } }))
    const who = await loadSession(true)
    expect(who?.email).toBe('admin@example.com')
    expect(String(fetchMock.mock.calls[0]?.[0])).toBe('/api/auth/me')
  })

  it('forgets the login cookie once the server says the session is over, so it asks only once', async () => {
    document.cookie = 'csrf_token=stale; path=/'
    fetchMock.mockResolvedValue(jsonResponse({ success: false, message: 'Unauthenticated.' }, 401))
    expect(await loadSession(true)).toBeNull()
    expect(document.cookie).not.toContain('csrf_token=stale')
    expect(await loadSession(true)).toBeNull()
    expect(fetchMock).toHaveBeenCalledTimes(1)
  })
})
