// The person's place in the list (tab, page, filters, selection) lives in the URL query,
// so a reload, a shared link or the back button brings them back to the same view.
import type { LocationQuery, LocationQueryRaw } from 'vue-router'

import type { Sort, StatusFilter, View } from '@/api/types'

export const SORTS: readonly { value: Sort; label: string }[] = [
  { value: 'latest', label: 'Newest first' },
  { value: 'oldest', label: 'Oldest first' },
  { value: 'name_asc', label: 'Name A–Z' },
  { value: 'name_desc', label: 'Name Z–A' },
  { value: 'size_asc', label: 'Smallest first' },
  { value: 'size_desc', label: 'Largest first' },
]

export const STATUSES: readonly { value: StatusFilter; label: string }[] = [
  { value: 'completed', label: 'Completed' },
  { value: 'pending', label: 'Pending' },
  { value: 'in_progress', label: 'In progress' },
  { value: 'failed', label: 'Failed' },
]

export interface ListState {
  view: View
  page: number
  search: string
  sort: Sort
  status: StatusFilter | ''
  /** Only this source's backups (0: every source). */
  sourceId: number
  /** Only backups of this database name ('' : every one). */
  database: string
  selected: number[]
}

export const DEFAULT_STATE: Readonly<ListState> = Object.freeze({
  view: 'active',
  page: 1,
  search: '',
  sort: 'latest',
  status: '',
  sourceId: 0,
  database: '',
  selected: [],
})

function first(value: LocationQuery[string] | undefined): string {
  const raw = Array.isArray(value) ? value[0] : value
  return typeof raw === 'string' ? raw : ''
}

/** Reads the query string leniently: anything unknown falls back to the default. */
export function parseQuery(query: LocationQuery): ListState {
  const view = first(query.view)
  const sort = first(query.sort)
  const status = first(query.status)
  const page = Number.parseInt(first(query.page), 10)
  const sourceId = Number.parseInt(first(query.source_id), 10)
  const selected = first(query.selected)
    .split(',')
    .map((part) => Number.parseInt(part, 10))
    .filter((id) => Number.isSafeInteger(id) && id > 0)
  return {
    view: view === 'trash' ? 'trash' : 'active',
    page: Number.isSafeInteger(page) && page > 0 ? page : 1,
    search: first(query.search).slice(0, 200),
    sort: SORTS.some((s) => s.value === sort) ? (sort as Sort) : 'latest',
    status: STATUSES.some((s) => s.value === status) ? (status as StatusFilter) : '',
    sourceId: Number.isSafeInteger(sourceId) && sourceId > 0 ? sourceId : 0,
    database: first(query.database).trim().slice(0, 64),
    selected: [...new Set(selected)].slice(0, 100),
  }
}

/** Writes only what differs from the defaults, so the plain URL stays plain. */
export function toQuery(state: ListState): LocationQueryRaw {
  const query: LocationQueryRaw = {}
  if (state.view !== 'active') query.view = state.view
  if (state.page !== 1) query.page = String(state.page)
  if (state.search) query.search = state.search
  if (state.sort !== 'latest') query.sort = state.sort
  if (state.status) query.status = state.status
  if (state.sourceId) query.source_id = String(state.sourceId)
  if (state.database) query.database = state.database
  if (state.selected.length) query.selected = state.selected.join(',')
  return query
}

export function sameQuery(a: LocationQueryRaw, b: LocationQuery): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  for (const key of keys) {
    if (String(a[key] ?? '') !== first(b[key] ?? '')) return false
  }
  return true
}
