// The one HTTP client: sends the session cookie and the CSRF header, unwraps the
// contract's envelope, and turns every failure into an ApiError carrying the server's
// own message, so views can show it exactly as written.
import { reportOffline, reportOnline } from '@/composables/useConnection'

import type { PageMeta } from './types'

export type FieldErrors = Record<string, string[]>

export class ApiError extends Error {
  readonly status: number
  readonly errors: FieldErrors | null
  readonly retryAfter: number | null

  constructor(
    status: number,
    message: string,
    errors: FieldErrors | null = null,
    retryAfter: number | null = null,
  ) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.errors = errors
    this.retryAfter = retryAfter
  }

  /** True when the request never reached the server (no status at all). */
  get isNetworkError(): boolean {
    return this.status === 0
  }
}

export type { PageMeta }

export interface Envelope<T> {
  data: T
  meta?: PageMeta
  message?: string
}

export type Query = Record<string, string | number | boolean | null | undefined>

export interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export const NETWORK_MESSAGE = 'Cannot reach the server. Check your connection; the page will retry.'

type UnauthorizedListener = () => void
const unauthorizedListeners = new Set<UnauthorizedListener>()

/** Called when any request answers 401 (session expired or logged out elsewhere). */
export function onUnauthorized(listener: UnauthorizedListener): () => void {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

export function readCookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=')
    if (key === name) return decodeURIComponent(rest.join('='))
  }
  return null
}

export function buildUrl(path: string, query?: Query): string {
  if (!query) return path
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue
    params.set(key, String(value))
  }
  const text = params.toString()
  return text ? `${path}?${text}` : path
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function fallbackMessage(status: number): string {
  if (status === 401) return 'Please sign in.'
  if (status === 403) return 'You are not allowed to do this.'
  if (status === 404) return 'Not found.'
  if (status === 429) return 'Too many requests. Please wait and try again.'
  if (status >= 500) return `The server could not complete the request (HTTP ${status}).`
  return `The request failed (HTTP ${status}).`
}

export async function request<T>(
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Envelope<T>> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (options.body !== undefined) headers['Content-Type'] = 'application/json'
  if (UNSAFE.has(method)) {
    const csrf = readCookie('csrf_token')
    if (csrf) headers['X-CSRF-Token'] = csrf
  }

  let response: Response
  try {
    response = await fetch(buildUrl(path, options.query), {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    })
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error
    reportOffline()
    throw new ApiError(0, NETWORK_MESSAGE)
  }

  let payload: unknown = null
  const type = response.headers.get('Content-Type') ?? ''
  if (type.includes('json')) {
    try {
      payload = await response.json()
    } catch {
      payload = null
    }
  }

  // A gateway answering 502/504 without our envelope means the app itself is unreachable.
  if (!isRecord(payload) && (response.status === 502 || response.status === 504)) {
    reportOffline()
    throw new ApiError(0, NETWORK_MESSAGE)
  }
  reportOnline()

  if (!response.ok || !isRecord(payload) || payload.success !== true) {
    const body = isRecord(payload) ? payload : {}
    const message =
      typeof body.message === 'string' && body.message ? body.message : fallbackMessage(response.status)
    const errors = isRecord(body.errors) ? (body.errors as FieldErrors) : null
    const retry = Number(response.headers.get('Retry-After'))
    const status = response.ok ? 500 : response.status
    if (status === 401) unauthorizedListeners.forEach((listener) => listener())
    throw new ApiError(status, message, errors, Number.isFinite(retry) && retry > 0 ? retry : null)
  }

  return {
    data: payload.data as T,
    meta: isRecord(payload.meta) ? (payload.meta as unknown as PageMeta) : undefined,
    message: typeof payload.message === 'string' ? payload.message : undefined,
  }
}

export const http = {
  get: <T>(path: string, options?: RequestOptions) => request<T>('GET', path, options),
  post: <T>(path: string, options?: RequestOptions) => request<T>('POST', path, options),
  patch: <T>(path: string, options?: RequestOptions) => request<T>('PATCH', path, options),
  delete: <T>(path: string, options?: RequestOptions) => request<T>('DELETE', path, options),
}
