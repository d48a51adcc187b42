// Page-wide notices. Messages are shown exactly as given (the server's own words).
import { readonly, ref } from 'vue'

export type ToastKind = 'success' | 'error' | 'info'

export interface Toast {
  id: number
  kind: ToastKind
  message: string
}

const toasts = ref<Toast[]>([])
let nextId = 1

export function dismissToast(id: number): void {
  toasts.value = toasts.value.filter((toast) => toast.id !== id)
}

export function pushToast(kind: ToastKind, message: string, timeoutMs?: number): number {
  const id = nextId++
  toasts.value = [...toasts.value.slice(-4), { id, kind, message }]
  const ttl = timeoutMs ?? (kind === 'error' ? 10000 : 5000)
  if (ttl > 0) setTimeout(() => dismissToast(id), ttl)
  return id
}

export function useToasts() {
  return {
    toasts: readonly(toasts),
    success: (message: string) => pushToast('success', message),
    error: (message: string) => pushToast('error', message),
    info: (message: string) => pushToast('info', message),
    dismiss: dismissToast,
  }
}
