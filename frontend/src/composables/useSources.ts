// The sources, shared by every page that needs them (the sources page, the backups page's
// filters, the restore and import dialogs): loaded once, refreshed after each change. Actions
// return the server's answer or throw its ApiError, so a form can show field errors in place.
import { computed, readonly, ref, shallowRef } from 'vue'

import { ApiError } from '@/api/http'
import { sourcesApi } from '@/api/sources'
import type { Backup, ConnectionTest, Source, SourceCreate, SourceUpdate } from '@/api/types'

const sources = shallowRef<Source[]>([])
const loaded = ref(false)
const error = ref<string | null>(null)
let pending: Promise<void> | null = null

async function refresh(): Promise<void> {
  if (pending) return pending
  pending = (async () => {
    try {
      sources.value = (await sourcesApi.list()).data
      error.value = null
    } catch (caught) {
      error.value = caught instanceof ApiError ? caught.message : 'The sources could not be loaded.'
    } finally {
      loaded.value = true
      pending = null
    }
  })()
  return pending
}

/** Loads the list the first time it is asked for; later calls reuse it. */
async function ensureLoaded(): Promise<void> {
  if (!loaded.value) await refresh()
}

function replace(source: Source): void {
  const others = sources.value.filter((s) => s.id !== source.id)
  sources.value = [...others, source].sort((a, b) => a.name.localeCompare(b.name))
}

async function create(body: SourceCreate): Promise<{ source: Source; message?: string }> {
  const result = await sourcesApi.create(body)
  replace(result.data)
  return { source: result.data, message: result.message }
}

async function update(id: number, body: SourceUpdate): Promise<{ source: Source; message?: string }> {
  const result = await sourcesApi.update(id, body)
  replace(result.data)
  return { source: result.data, message: result.message }
}

async function remove(id: number, deleteBackups: boolean): Promise<string | undefined> {
  const result = await sourcesApi.remove(id, deleteBackups)
  sources.value = sources.value.filter((s) => s.id !== id)
  return result.message
}

async function test(id: number): Promise<ConnectionTest> {
  return (await sourcesApi.test(id)).data
}

async function backUp(id: number, database?: string): Promise<{ backups: Backup[]; message?: string }> {
  const result = await sourcesApi.backUp(id, database)
  void refresh()
  return { backups: result.data, message: result.message }
}

// Read-only to callers: only the actions below change the list.
const sourceList = computed(() => sources.value)

export function useSources() {
  return {
    sources: sourceList,
    loaded: readonly(loaded),
    error: readonly(error),
    refresh,
    ensureLoaded,
    create,
    update,
    remove,
    test,
    backUp,
  }
}

/** For tests: forget everything, as a fresh page load would. */
export function resetSources(): void {
  sources.value = []
  loaded.value = false
  error.value = null
  pending = null
}
