// A raw-body upload through XMLHttpRequest, because fetch() reports no upload progress. Same
// rules as http.ts: the session cookie, the CSRF header, the envelope, ApiError with the
// server's own message (and field errors).
import { reportOffline, reportOnline } from '@/composables/useConnection'

import { ApiError, type FieldErrors, NETWORK_MESSAGE, type Query, buildUrl, readCookie } from './http'

export interface UploadProgress {
  loaded: number
  total: number | null
}

export interface UploadOptions {
  query?: Query
  onProgress?: (progress: UploadProgress) => void
  signal?: AbortSignal
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function failureMessage(status: number): string {
  if (status === 413) return 'The file is larger than the server accepts.'
  if (status === 415) return 'The server does not accept this kind of file.'
  if (status === 401) return 'Please sign in.'
  if (status === 403) return 'You are not allowed to do this.'
  return `The upload failed (HTTP ${status}).`
}

export function uploadFile<T>(path: string, file: Blob, options: UploadOptions = {}): Promise<{ data: T; message?: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', buildUrl(path, options.query))
    xhr.withCredentials = true
    xhr.setRequestHeader('Accept', 'application/json')
    xhr.setRequestHeader('Content-Type', 'application/octet-stream')
    const csrf = readCookie('csrf_token')
    if (csrf) xhr.setRequestHeader('X-CSRF-Token', csrf)

    xhr.upload.onprogress = (event) => {
      options.onProgress?.({ loaded: event.loaded, total: event.lengthComputable ? event.total : null })
    }
    xhr.onerror = () => {
      reportOffline()
      reject(new ApiError(0, NETWORK_MESSAGE))
    }
    xhr.onabort = () => reject(new DOMException('The upload was cancelled.', 'AbortError'))
    xhr.onload = () => {
      reportOnline()
      let payload: unknown = null
      try {
        payload = JSON.parse(xhr.responseText)
      } catch {
        payload = null
      }
      const ok = xhr.status >= 200 && xhr.status < 300
      if (ok && isRecord(payload) && payload.success === true) {
        resolve({ data: payload.data as T, message: typeof payload.message === 'string' ? payload.message : undefined })
        return
      }
      const body = isRecord(payload) ? payload : {}
      const message = typeof body.message === 'string' && body.message ? body.message : failureMessage(xhr.status)
      const errors = isRecord(body.errors) ? (body.errors as FieldErrors) : null
      reject(new ApiError(ok ? 500 : xhr.status, message, errors))
    }
    options.signal?.addEventListener('abort', () => xhr.abort(), { once: true })
    xhr.send(file)
  })
}
