// Whether the server answered the last request. The banner reads it; polling speeds up
// its retries while it is false, so the page recovers on its own once the server is back.
import { readonly, ref } from 'vue'

const online = ref(true)
const listeners = new Set<() => void>()

export function reportOffline(): void {
  online.value = false
}

export function reportOnline(): void {
  if (online.value) return
  online.value = true
  listeners.forEach((listener) => listener())
}

/** Runs the callback each time the connection comes back. */
export function onReconnect(listener: () => void): () => void {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

export function useConnection() {
  return { online: readonly(online) }
}

/** Follows the browser's own online/offline events as well as request failures. */
export function watchBrowserConnectivity(): void {
  window.addEventListener('offline', reportOffline)
  window.addEventListener('online', () => listeners.forEach((listener) => listener()))
}
