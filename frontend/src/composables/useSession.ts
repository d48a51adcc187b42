// Who is signed in. Loaded once per page load (and after login); a 401 from any request
// clears it so the router sends the person back to the login page.
import { readonly, ref } from 'vue'

import { authApi } from '@/api/auth'
import { ApiError, readCookie } from '@/api/http'
import type { User } from '@/api/types'

const user = ref<User | null>(null)
const checked = ref(false)
let pending: Promise<User | null> | null = null

// The CSRF cookie is set with the session cookie at login and cleared with it at logout (both
// browser-session cookies): without it there is no session to ask about. Asking anyway would
// answer 401, which the browser logs as an error on every visit to the login page.
const CSRF_COOKIE = 'csrf_token'

/** Forgets the script-readable login cookie once the server said the session is over. */
export function forgetSessionHint(): void {
  document.cookie = `${CSRF_COOKIE}=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/; SameSite=Lax`
}

export async function loadSession(force = false): Promise<User | null> {
  if (checked.value && !force) return user.value
  if (pending) return pending
  if (!readCookie(CSRF_COOKIE)) {
    setSessionUser(null)
    return null
  }
  pending = (async () => {
    try {
      user.value = (await authApi.me()).data.user
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 401 || error.status === 403) {
        // An ended session (expired, logged out elsewhere): the next visit does not ask again.
        if (error instanceof ApiError && error.status === 401) forgetSessionHint()
        user.value = null
      } else {
        throw error
      }
    } finally {
      pending = null
    }
    checked.value = true
    return user.value
  })()
  return pending
}

export function setSessionUser(value: User | null): void {
  user.value = value
  checked.value = true
}

export async function logout(): Promise<void> {
  try {
    await authApi.logout()
  } finally {
    setSessionUser(null)
  }
}

export function useSession() {
  return { user: readonly(user), checked: readonly(checked) }
}
