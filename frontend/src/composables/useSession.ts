// Who is signed in. Loaded once per page load (and after login); a 401 from any request
// clears it so the router sends the person back to the login page.
import { readonly, ref } from 'vue'

import { authApi } from '@/api/auth'
import { ApiError } from '@/api/http'
import type { User } from '@/api/types'

const user = ref<User | null>(null)
const checked = ref(false)
let pending: Promise<User | null> | null = null

export async function loadSession(force = false): Promise<User | null> {
  if (checked.value && !force) return user.value
  if (pending) return pending
  pending = (async () => {
    try {
      user.value = (await authApi.me()).data.user
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 401 || error.status === 403) {
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
