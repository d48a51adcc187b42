import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, reactive } from 'vue'

import type { Backup } from '@/api/types'
import { backup, jsonResponse, restoreOp, statistics } from '@/test/factories'

import { DEFAULT_STATE, type ListState } from './listQuery'
import { useBackups } from './useBackups'
import { useToasts } from './useToasts'

type Handler = (url: URL, init: RequestInit | undefined) => Response | Promise<Response>

function page(items: Backup[], total = items.length) {
  return { success: true, data: items, meta: { current_page: 1, per_page: 10, total, last_page: Math.max(1, Math.ceil(total / 10)) } }
}

describe('useBackups', () => {
  const calls: { method: string; url: URL; body: unknown }[] = []
  let handler: Handler
  let scope: ReturnType<typeof effectScope>

  beforeEach(() => {
    vi.useFakeTimers()
    calls.length = 0
    vi.stubGlobal('fetch', async (input: string, init?: RequestInit) => {
      const url = new URL(input, 'http://test')
      calls.push({ method: init?.method ?? 'GET', url, body: init?.body ? JSON.parse(String(init.body)) : undefined })
      return handler(url, init)
    })
    const { toasts, dismiss } = useToasts()
    toasts.value.forEach((t) => dismiss(t.id))
  })
  afterEach(() => {
    scope?.stop()
    vi.unstubAllGlobals()
    vi.useRealTimers()
  })

  function start(overrides: Partial<ListState> = {}) {
    const state = reactive<ListState>({ ...DEFAULT_STATE, selected: [], ...overrides })
    scope = effectScope()
    const store = scope.run(() => useBackups(state))!
    return { state, store }
  }

  const lists = () => calls.filter((c) => c.url.pathname === '/admin/api/database-backups' && c.url.searchParams.get('per_page') === null)

  it("asks for the person's query and keeps their place on refresh", async () => {
    const rows = [backup({ id: 1 }), backup({ id: 2 })]
    handler = (url) => (url.pathname.endsWith('/statistics') ? jsonResponse({ success: true, data: statistics({ total_backups: 2 }) }) : jsonResponse(page(rows, 25)))
    const { state, store } = start({ page: 3, search: 'shop', sort: 'size_desc', status: 'completed', view: 'trash', selected: [2] })
    await vi.advanceTimersByTimeAsync(0)
    const query = Object.fromEntries(lists()[0]!.url.searchParams)
    expect(query).toEqual({ page: '3', search: 'shop', sort: 'size_desc', status: 'completed', view: 'trash' })
    expect(store.items.value.map((b) => b.id)).toEqual([1, 2])
    expect(store.stats.value?.total_backups).toBe(2)
    await vi.advanceTimersByTimeAsync(30_000)
    expect(lists()).toHaveLength(2)
    expect(state).toMatchObject({ page: 3, search: 'shop', selected: [2] })
  })

  it('polls every 3 s while a backup runs, shows its progress, and announces the outcome', async () => {
    let current = backup({ id: 5, filename: 'run.sql.zst', status: 'in_progress', bytes_processed: 0, estimated_bytes: 10_000_000 })
    handler = (url) => (url.pathname.endsWith('/statistics') ? jsonResponse({ success: true, data: statistics() }) : jsonResponse(page([current])))
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(store.running.value).toHaveLength(1)
    current = { ...current, bytes_processed: 3_000_000 }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(lists()).toHaveLength(2)
    const job = store.running.value[0]!
    expect(job.estimate.fraction).toBeCloseTo(0.3)
    expect(job.estimate.rate).toBeCloseTo(1_000_000, -4)
    expect(job.estimate.secondsLeft).toBeCloseTo(7, 0)
    current = { ...current, status: 'completed', file_size: 1234 }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value).toHaveLength(0)
    expect(useToasts().toasts.value.map((t) => t.message)).toContain('Backup run.sql.zst completed.')
    await vi.advanceTimersByTimeAsync(3_000)
    expect(lists()).toHaveLength(3) // back to 30 s
  })

  it("shows a failed backup's reason as the server wrote it", async () => {
    let current = backup({ id: 6, status: 'pending' })
    handler = (url) => (url.pathname.endsWith('/statistics') ? jsonResponse({ success: true, data: statistics() }) : jsonResponse(page([current])))
    start()
    await vi.advanceTimersByTimeAsync(0)
    current = { ...current, status: 'failed', error_message: "Access denied for user 'backup'@'localhost'." }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(useToasts().toasts.value.at(-1)).toMatchObject({ kind: 'error', message: "Access denied for user 'backup'@'localhost'." })
  })

  it("shows the server's message for an action, success or failure", async () => {
    handler = (url, init) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (init?.method === 'POST' && url.pathname.endsWith('/trash')) return jsonResponse({ success: true, message: 'Backup moved to trash.', data: backup({ id: 7 }) })
      if (init?.method === 'DELETE') return jsonResponse({ success: false, message: 'Backup 7 is running; it cannot be deleted.' }, 409)
      return jsonResponse(page([]))
    }
    const { store, state } = start({ selected: [7, 8] })
    await vi.advanceTimersByTimeAsync(0)
    expect(await store.trash(backup({ id: 7 }))).toBe(true)
    expect(state.selected).toEqual([8])
    expect(await store.destroy(backup({ id: 8 }))).toBe(false)
    const messages = useToasts().toasts.value.map((t) => [t.kind, t.message])
    expect(messages).toContainEqual(['success', 'Backup moved to trash.'])
    expect(messages).toContainEqual(['error', 'Backup 7 is running; it cannot be deleted.'])
  })

  it('returns per-id bulk results and deselects only what succeeded', async () => {
    handler = (url) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (url.pathname.endsWith('/bulk-trash')) {
        return jsonResponse({
          success: true,
          message: '1 of 2 backups moved to trash.',
          data: {
            results: [
              { id: 1, success: true, status: 200, message: 'Backup moved to trash.' },
              { id: 2, success: false, status: 409, message: 'Backup 2 is still running.' },
            ],
            succeeded: 1,
            failed: 1,
          },
        })
      }
      return jsonResponse(page([]))
    }
    const { store, state } = start({ selected: [1, 2] })
    await vi.advanceTimersByTimeAsync(0)
    const result = await store.bulkTrash([1, 2])
    expect(result?.message).toBe('1 of 2 backups moved to trash.')
    expect(result?.results).toHaveLength(2)
    expect(state.selected).toEqual([2])
    expect(calls.find((c) => c.url.pathname.endsWith('/bulk-trash'))?.body).toEqual({ backup_ids: [1, 2] })
  })

  it('follows a restore it started until it finishes', async () => {
    let op = restoreOp({ id: 40, backup_id: 9, status: 'in_progress', bytes_processed: 0, total_bytes: 1000 })
    handler = (url, init) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (init?.method === 'POST' && url.pathname.endsWith('/9/restore')) {
        return jsonResponse({ success: true, message: 'Database restore queued; it runs in the background.', data: op }, 202)
      }
      if (url.pathname.endsWith('/9/restores')) return jsonResponse({ success: true, data: [op] })
      return jsonResponse(page([backup({ id: 9 })]))
    }
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(await store.restore(backup({ id: 9 }), false)).toBe(true)
    expect(calls.find((c) => c.url.pathname.endsWith('/9/restore'))?.body).toEqual({ use_safety_backup: false, keep_existing_objects: false })
    await vi.advanceTimersByTimeAsync(0)
    expect(store.running.value.map((j) => j.kind)).toEqual(['restore'])
    op = { ...op, status: 'rolled_back', error_message: 'The dump broke at line 12.' }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value).toHaveLength(0)
    expect(useToasts().toasts.value.at(-1)?.message).toBe(
      'Restore failed and the database was rolled back: The dump broke at line 12.',
    )
  })

  it('cancels a running restore and follows it until it is rolled back', async () => {
    let op = restoreOp({ id: 41, backup_id: 9, status: 'in_progress', total_bytes: 1000 })
    handler = (url, init) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (init?.method === 'POST' && url.pathname.endsWith('/9/restores/41/cancel')) {
        op = { ...op, cancel_requested_at: '2026-01-31T00:01:00Z' }
        return jsonResponse({ success: true, message: 'Cancellation requested; the restore stops and the database is put back shortly.', data: op })
      }
      if (url.pathname.endsWith('/9/restores')) return jsonResponse({ success: true, data: [op] })
      return jsonResponse(page([backup({ id: 9 })]))
    }
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(await store.cancelRestore(9, op)).toBe(true)
    expect(useToasts().toasts.value.at(-1)?.message).toMatch(/^Cancellation requested/)
    expect(store.running.value.map((j) => j.restore?.cancel_requested_at)).toEqual(['2026-01-31T00:01:00Z'])
    op = { ...op, status: 'rolled_back', error_message: 'The restore failed: it was cancelled. The database was put back as it was before (from safety backup 12).' }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value).toHaveLength(0)
    expect(useToasts().toasts.value.at(-1)?.message).toContain('it was cancelled')
  })

  it('flags a refusal (403) so the page can say "not allowed"', async () => {
    handler = () => jsonResponse({ success: false, message: 'Only administrators can manage backups.' }, 403)
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(store.forbidden.value).toBe(true)
    expect(store.listError.value).toBe('Only administrators can manage backups.')
  })

  it('goes back to the last page that exists when the list shrank', async () => {
    handler = (url) => (url.pathname.endsWith('/statistics') ? jsonResponse({ success: true, data: statistics() }) : jsonResponse(page([], 15)))
    const { state } = start({ page: 4 })
    await vi.advanceTimersByTimeAsync(0)
    expect(state.page).toBe(2)
  })

  const toastsNow = () => useToasts().toasts.value.map((t) => [t.kind, t.message])

  it('announces a cancelled backup neutrally, not as a failure', async () => {
    let current = backup({ id: 60, filename: 'c.sql.zst', status: 'in_progress' })
    handler = (url) => (url.pathname.endsWith('/statistics') ? jsonResponse({ success: true, data: statistics() }) : jsonResponse(page([current])))
    start()
    await vi.advanceTimersByTimeAsync(0)
    current = { ...current, status: 'failed', cancelled: true, error_message: 'Cancelled by admin@example.com.' }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(toastsNow()).toContainEqual(['info', 'Cancelled by admin@example.com.'])
    expect(toastsNow().filter(([kind]) => kind === 'error')).toEqual([])
  })

  it('announces a cancelled restore neutrally', async () => {
    let op = restoreOp({ id: 61, backup_id: 9, status: 'in_progress', phase: 'loading', total_bytes: 1000 })
    handler = (url, init) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (init?.method === 'POST' && url.pathname.endsWith('/9/restore')) return jsonResponse({ success: true, message: 'Queued.', data: op }, 202)
      if (url.pathname.endsWith('/9/restores')) return jsonResponse({ success: true, data: [op] })
      return jsonResponse(page([backup({ id: 9 })]))
    }
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    await store.restore(backup({ id: 9 }), true)
    op = { ...op, status: 'rolled_back', cancelled: true, phase: 'finished', error_message: null }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(toastsNow().at(-1)).toEqual(['info', 'Restore cancelled; the database was put back from the safety backup.'])
  })

  it('makes no estimate for a restore outside its load phase', async () => {
    // A safety backup with no estimate of its own (the restore's total is null then).
    let op = restoreOp({ id: 62, backup_id: 9, status: 'in_progress', phase: 'safety_backup', bytes_processed: 0, total_bytes: null })
    handler = (url, init) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (init?.method === 'POST' && url.pathname.endsWith('/9/restore')) return jsonResponse({ success: true, message: 'Queued.', data: op }, 202)
      if (url.pathname.endsWith('/9/restores')) return jsonResponse({ success: true, data: [op] })
      return jsonResponse(page([backup({ id: 9 })]))
    }
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    await store.restore(backup({ id: 9 }), true)
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value[0]).toMatchObject({ phase: 'safety_backup', estimate: { fraction: null, secondsLeft: null } })
    op = { ...op, bytes_processed: 50_000 }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value[0]?.estimate).toEqual({ fraction: null, rate: null, secondsLeft: null })
    op = { ...op, phase: 'loading', bytes_processed: 100_000, total_bytes: 1_000_000 }
    await vi.advanceTimersByTimeAsync(3_000)
    op = { ...op, bytes_processed: 400_000 }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value[0]?.estimate.fraction).toBeCloseTo(0.4)
    expect(store.running.value[0]?.estimate.secondsLeft).not.toBeNull()
    // The load broke: the rollback reloads the safety backup, and the old rate means nothing.
    op = { ...op, phase: 'rolling_back' }
    await vi.advanceTimersByTimeAsync(3_000)
    expect(store.running.value[0]).toMatchObject({ phase: 'rolling_back', estimate: { fraction: null, rate: null, secondsLeft: null } })
  })

  it('restores from the trash one by one, with a result per backup', async () => {
    handler = (url, init) => {
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      if (init?.method === 'POST' && url.pathname.endsWith('/71/restore-from-trash')) {
        return jsonResponse({ success: true, message: 'Backup restored from trash.', data: backup({ id: 71 }) })
      }
      if (init?.method === 'POST' && url.pathname.endsWith('/72/restore-from-trash')) {
        return jsonResponse({ success: false, message: 'Backup 72 is not in the trash.' }, 409)
      }
      return jsonResponse(page([]))
    }
    const { state, store } = start({ view: 'trash', selected: [71, 72] })
    await vi.advanceTimersByTimeAsync(0)
    const result = await store.bulkUntrash([71, 72])
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.url.pathname)).toEqual([
      '/admin/api/database-backups/71/restore-from-trash',
      '/admin/api/database-backups/72/restore-from-trash',
    ])
    expect(result).toMatchObject({
      partial: true,
      message: '1 of 2 backups restored from trash.',
      results: [
        { id: 71, success: true },
        { id: 72, success: false, status: 409, message: 'Backup 72 is not in the trash.' },
      ],
    })
    expect(state.selected).toEqual([72])
  })

  it('asks /health for the target and the schedule, less often than the list', async () => {
    handler = (url) => {
      if (url.pathname === '/health') {
        return jsonResponse({ success: false, data: { status: 'unhealthy', checks: { target: { status: 'fail', critical: true, message: 'Access denied.', details: {} } }, next_backup_at: null } }, 503)
      }
      if (url.pathname.endsWith('/statistics')) return jsonResponse({ success: true, data: statistics() })
      return jsonResponse(page([]))
    }
    const { store } = start()
    await vi.advanceTimersByTimeAsync(0)
    expect(store.health.value?.checks.target?.message).toBe('Access denied.')
    await vi.advanceTimersByTimeAsync(30_000)
    expect(calls.filter((c) => c.url.pathname === '/health')).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(30_000)
    expect(calls.filter((c) => c.url.pathname === '/health')).toHaveLength(2)
  })
})
