// Everything the backups page shows, kept fresh: the list for the person's current
// query, the statistics, the recent history for the chart, and the running jobs with
// their progress. Refreshes every 30 s, every 3 s while something runs, pauses while
// the tab is hidden, and never touches the person's query or selection.
import { computed, reactive, ref, shallowRef, watch } from 'vue'

import { type RestoreTarget, backupsApi } from '@/api/backups'
import { ApiError, type PageMeta } from '@/api/http'
import { healthApi } from '@/api/health'
import type { Backup, BulkItemResult, HealthReport, RestoreOperation, Statistics } from '@/api/types'
import { onReconnect, useConnection } from '@/composables/useConnection'
import { startDownload } from '@/composables/useDownload'
import { usePolling } from '@/composables/usePolling'
import { pushToast } from '@/composables/useToasts'
import type { ListState } from '@/composables/listQuery'
import {
  addSample,
  estimate,
  type ProgressEstimate,
  type ProgressState,
} from '@/utils/progress'

export const IDLE_INTERVAL_MS = 30_000
export const BUSY_INTERVAL_MS = 3_000
export const OFFLINE_INTERVAL_MS = 5_000
const HISTORY_SIZE = 50
// /health runs every check (the target's included): asked for less often than the list.
export const HEALTH_INTERVAL_MS = 60_000

export function isRunning(status: string): boolean {
  return status === 'pending' || status === 'in_progress'
}

export interface RunningJob {
  key: string
  kind: 'backup' | 'restore'
  backup: Backup | null
  restore: RestoreOperation | null
  label: string
  status: string
  /** A restore's phase (queued, safety_backup, loading, rolling_back), when the API says it. */
  phase: string | null
  processed: number
  total: number | null
  estimate: ProgressEstimate
}

/**
 * Whether a restore's byte counts may be turned into a rate and a time left: its bytes and
 * total are those of the current phase, so the load can be estimated, the safety backup only
 * when it has an estimate of its own, and a rollback never (it follows a load that broke).
 */
export function estimable(op: RestoreOperation): boolean {
  if (op.phase === 'loading') return true
  return op.phase === 'safety_backup' && typeof op.total_bytes === 'number' && op.total_bytes > 0
}

export function useBackups(state: ListState) {
  const { online } = useConnection()

  const items = shallowRef<Backup[]>([])
  const meta = shallowRef<PageMeta | null>(null)
  const stats = shallowRef<Statistics | null>(null)
  const recent = shallowRef<Backup[]>([])
  const loaded = ref(false)
  const listError = ref<string | null>(null)
  const forbidden = ref(false)
  const lastUpdated = ref<Date | null>(null)
  const health = shallowRef<HealthReport | null>(null)
  let healthAt = 0

  // Backups this page started or saw running: followed until they finish, even when the
  // current filter or page hides them, so their progress and outcome are always shown.
  const watched = reactive(new Map<number, Backup>())
  // Restores this page started, keyed by backup id.
  const restores = reactive(new Map<number, RestoreOperation>())
  const progress = new Map<string, ProgressState>()
  const estimates = reactive(new Map<string, ProgressEstimate>())

  let listAbort: AbortController | null = null

  const listQuery = () => ({
    page: state.page,
    search: state.search || undefined,
    sort: state.sort,
    status: state.status || undefined,
    source_id: state.sourceId || undefined,
    database: state.database || undefined,
    view: state.view,
  })

  function track(key: string, processed: number, total: number | null, at: number): void {
    const next = addSample(progress.get(key) ?? { last: null, rate: null }, { bytes: processed, at })
    progress.set(key, next)
    estimates.set(key, estimate(next, processed, total))
  }

  function noteBackup(backup: Backup, at: number): void {
    const previous = watched.get(backup.id)
    if (isRunning(backup.status)) {
      watched.set(backup.id, backup)
      track(`backup:${backup.id}`, backup.bytes_processed ?? 0, backup.estimated_bytes ?? null, at)
      return
    }
    if (!previous) return
    watched.delete(backup.id)
    progress.delete(`backup:${backup.id}`)
    estimates.delete(`backup:${backup.id}`)
    if (backup.status === 'completed') {
      pushToast('success', `Backup ${backup.filename} completed.`)
    } else if (backup.status === 'failed' && backup.cancelled === true) {
      // The person's own choice: said plainly, not as an error.
      pushToast('info', backup.error_message || `Backup ${backup.filename} cancelled.`)
    } else if (backup.status === 'failed') {
      pushToast('error', backup.error_message || `Backup ${backup.filename} failed.`)
    }
  }

  function noteRestore(backupId: number, op: RestoreOperation, at: number): void {
    const key = `restore:${op.id}`
    if (isRunning(op.status)) {
      const previous = restores.get(backupId)
      restores.set(backupId, op)
      // A new phase counts other bytes: its rate starts afresh.
      if (previous && previous.phase !== op.phase) progress.delete(key)
      if (estimable(op)) track(key, op.bytes_processed ?? 0, op.total_bytes ?? null, at)
      else estimates.set(key, { fraction: null, rate: null, secondsLeft: null })
      return
    }
    restores.delete(backupId)
    progress.delete(key)
    estimates.delete(key)
    if (op.cancelled === true) {
      pushToast(
        'info',
        op.error_message ||
          (op.status === 'rolled_back'
            ? 'Restore cancelled; the database was put back from the safety backup.'
            : 'Restore cancelled.'),
      )
    } else if (op.status === 'completed') {
      pushToast('success', `Restore into ${op.target_database ?? 'the database'} completed.`)
    } else if (op.status === 'rolled_back') {
      pushToast(
        'error',
        op.error_message
          ? `Restore failed and the database was rolled back: ${op.error_message}`
          : 'Restore failed and the database was rolled back.',
      )
    } else if (op.status === 'failed') {
      pushToast('error', op.error_message || 'Restore failed.')
    }
  }

  async function refreshRestores(at: number): Promise<void> {
    await Promise.all(
      [...restores.entries()].map(async ([backupId, op]) => {
        try {
          const { data } = await backupsApi.restores(backupId)
          const current = data.find((item) => item.id === op.id) ?? data[0]
          if (current) noteRestore(backupId, current, at)
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) restores.delete(backupId)
        }
      }),
    )
  }

  async function load(): Promise<void> {
    listAbort?.abort()
    const controller = new AbortController()
    listAbort = controller
    const [list, statistics, history] = await Promise.allSettled([
      backupsApi.list(listQuery(), controller.signal),
      backupsApi.statistics(
        { source_id: state.sourceId || undefined, database: state.database || undefined },
        controller.signal,
      ),
      backupsApi.list(
        { page: 1, per_page: HISTORY_SIZE, sort: 'latest', view: 'active' },
        controller.signal,
      ),
    ])
    if (controller.signal.aborted) return
    const at = Date.now()

    if (list.status === 'fulfilled') {
      items.value = list.value.data
      meta.value = list.value.meta ?? null
      listError.value = null
      forbidden.value = false
      loaded.value = true
      lastUpdated.value = new Date(at)
      const last = meta.value?.last_page ?? 1
      if (state.page > Math.max(1, last)) state.page = Math.max(1, last)
    } else {
      const error = list.reason
      if (error instanceof ApiError) {
        if (error.status === 403) forbidden.value = true
        listError.value = error.message
      } else if (!(error instanceof DOMException)) {
        listError.value = 'The list could not be loaded.'
      }
    }
    if (statistics.status === 'fulfilled') stats.value = statistics.value.data
    if (at - healthAt >= HEALTH_INTERVAL_MS) {
      healthAt = at
      void healthApi.report().then((report) => {
        if (report) health.value = report
      })
    }
    if (history.status === 'fulfilled') recent.value = history.value.data

    const seen = new Map<number, Backup>()
    for (const backup of [...recent.value, ...items.value]) seen.set(backup.id, backup)
    for (const backup of seen.values()) noteBackup(backup, at)
    // Followed backups the current view does not show: ask for each one directly.
    const missing = [...watched.keys()].filter((id) => !seen.has(id))
    await Promise.all(
      missing.map(async (id) => {
        try {
          noteBackup((await backupsApi.get(id)).data, Date.now())
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) watched.delete(id)
        }
      }),
    )
    await refreshRestores(at)
  }

  const running = computed<RunningJob[]>(() => {
    const jobs: RunningJob[] = []
    for (const backup of watched.values()) {
      const key = `backup:${backup.id}`
      jobs.push({
        key,
        kind: 'backup',
        backup,
        restore: null,
        label: backup.filename,
        status: backup.status,
        phase: null,
        processed: backup.bytes_processed ?? 0,
        total: backup.estimated_bytes ?? null,
        estimate: estimates.get(key) ?? { fraction: null, rate: null, secondsLeft: null },
      })
    }
    for (const [backupId, op] of restores.entries()) {
      const key = `restore:${op.id}`
      const source = recent.value.find((b) => b.id === backupId) ?? items.value.find((b) => b.id === backupId)
      jobs.push({
        key,
        kind: 'restore',
        backup: source ?? null,
        restore: op,
        label: source ? source.filename : `backup #${backupId}`,
        status: op.status,
        phase: op.phase,
        processed: op.bytes_processed ?? 0,
        total: op.total_bytes ?? null,
        estimate: estimates.get(key) ?? { fraction: null, rate: null, secondsLeft: null },
      })
    }
    return jobs
  })

  const polling = usePolling(load, () => {
    if (!online.value) return OFFLINE_INTERVAL_MS
    return running.value.length ? BUSY_INTERVAL_MS : IDLE_INTERVAL_MS
  })
  watch(() => running.value.length > 0, () => polling.reschedule())
  onReconnect(() => void polling.refresh())

  watch(
    () => [state.view, state.page, state.search, state.sort, state.status, state.sourceId, state.database],
    () => void polling.refresh(),
  )

  // ---- actions: each shows the server's message, then refreshes --------------------

  async function act(call: () => Promise<{ message?: string }>, fallback: string): Promise<boolean> {
    try {
      const result = await call()
      pushToast('success', result.message || fallback)
      return true
    } catch (error) {
      pushToast('error', error instanceof ApiError ? error.message : 'Something went wrong.')
      return false
    } finally {
      void polling.refresh()
    }
  }

  function deselect(ids: number[]): void {
    if (!ids.length) return
    const gone = new Set(ids)
    state.selected = state.selected.filter((id) => !gone.has(id))
  }

  async function create(): Promise<boolean> {
    return act(async () => {
      const result = await backupsApi.create()
      if (result.data && typeof result.data.id === 'number') noteBackup(result.data, Date.now())
      return result
    }, 'Backup queued.')
  }

  const cancel = (backup: Backup) => act(() => backupsApi.cancel(backup.id), 'Cancellation requested.')

  async function cancelRestore(backupId: number, op: RestoreOperation): Promise<boolean> {
    return act(async () => {
      const result = await backupsApi.cancelRestore(backupId, op.id)
      // Followed until it ends: its outcome (failed or rolled back) comes as a toast.
      if (result.data) noteRestore(backupId, result.data, Date.now())
      return result
    }, 'Cancellation requested.')
  }

  async function trash(backup: Backup): Promise<boolean> {
    const ok = await act(() => backupsApi.trash(backup.id), 'Backup moved to trash.')
    if (ok) deselect([backup.id])
    return ok
  }

  async function restoreFromTrash(backup: Backup): Promise<boolean> {
    const ok = await act(() => backupsApi.restoreFromTrash(backup.id), 'Backup restored from trash.')
    if (ok) deselect([backup.id])
    return ok
  }

  async function destroy(backup: Backup): Promise<boolean> {
    const ok = await act(() => backupsApi.destroy(backup.id), 'Backup deleted permanently.')
    if (ok) deselect([backup.id])
    return ok
  }

  async function restore(
    backup: Backup,
    useSafetyBackup: boolean,
    keepExistingObjects = false,
    target: RestoreTarget = {},
  ): Promise<boolean> {
    return act(async () => {
      const result = await backupsApi.restore(backup.id, useSafetyBackup, keepExistingObjects, target)
      const op = result.data
      if (op && typeof op === 'object' && 'id' in op && 'status' in op) {
        noteRestore(backup.id, op, Date.now())
      }
      return result
    }, 'Database restore queued.')
  }

  async function download(backup: Backup, raw = false): Promise<boolean> {
    const started = await startDownload(backup, raw)
    // Whatever the check found (gone, found corrupt meanwhile) is shown at once in the list.
    if (!started) void polling.refresh()
    return started !== null
  }

  /** Restore from the trash one by one (there is no bulk endpoint), a result per backup. */
  async function untrashEach(ids: number[]): Promise<{ data: { results: BulkItemResult[] }; message: string }> {
    const results: BulkItemResult[] = []
    for (const id of ids) {
      try {
        const result = await backupsApi.restoreFromTrash(id)
        results.push({ id, success: true, status: 200, message: result.message || 'Restored from trash.' })
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 0)) throw error
        results.push({
          id,
          success: false,
          status: error instanceof ApiError ? error.status : 500,
          message: error instanceof ApiError ? error.message : 'Something went wrong.',
        })
      }
    }
    const done = results.filter((item) => item.success).length
    return { data: { results }, message: `${done} of ${ids.length} backups restored from trash.` }
  }

  /**
   * A bulk action: a toast with the outcome; `partial` is true when some items failed (the
   * caller then shows the results one by one).
   */
  async function bulk(
    call: (ids: number[]) => Promise<{ data: { results?: BulkItemResult[] } | null; message?: string }>,
    ids: number[],
  ): Promise<{ message: string; results: BulkItemResult[]; partial: boolean } | null> {
    try {
      const result = await call(ids)
      const results = result.data?.results ?? []
      deselect(results.filter((item) => item.success).map((item) => item.id))
      const failed = results.filter((item) => !item.success).length
      const message = result.message || `${results.length - failed} of ${ids.length} done.`
      pushToast(failed ? 'info' : 'success', message)
      return { message, results, partial: failed > 0 }
    } catch (error) {
      pushToast('error', error instanceof ApiError ? error.message : 'Something went wrong.')
      return null
    } finally {
      void polling.refresh()
    }
  }

  return {
    items,
    meta,
    stats,
    recent,
    loaded,
    listError,
    forbidden,
    lastUpdated,
    health,
    running,
    estimates,
    refresh: polling.refresh,
    create,
    cancel,
    cancelRestore,
    trash,
    restoreFromTrash,
    destroy,
    restore,
    bulkTrash: (ids: number[]) => bulk(backupsApi.bulkTrash, ids),
    bulkDelete: (ids: number[]) => bulk(backupsApi.bulkDelete, ids),
    bulkUntrash: (ids: number[]) => bulk(untrashEach, ids),
    download,
  }
}

export type BackupsStore = ReturnType<typeof useBackups>
