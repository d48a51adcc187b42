import type { Backup, RestoreOperation, User } from '@/api/types'
import { parseDate, statusLabel } from '@/utils/format'

/** A user in words: their e-mail (marked when it is you), or their id if the server gave none. */
export function userLabel(
  id: number | null,
  email: string | null | undefined,
  me: Readonly<User> | null,
): string | null {
  if (id === null) return null
  const name = email ?? `User #${id}`
  return me && me.id === id ? `${me.email} (you)` : name
}

/** Who or what started the backup. */
export function startedBy(backup: Backup, me: Readonly<User> | null = null): string {
  if (backup.trigger === 'scheduled') return 'Schedule'
  if (backup.trigger === 'pre_restore') return 'Safety backup'
  const user = userLabel(backup.created_by, backup.created_by_email, me)
  if (user) return user
  return backup.trigger === 'cli' ? 'Command line' : '—'
}

/** Who asked for a restore. */
export function requestedBy(op: RestoreOperation, me: Readonly<User> | null = null): string {
  return userLabel(op.requested_by, op.requested_by_email, me) ?? 'Command line'
}

/** A backup that ended because someone cancelled it: its API status stays "failed". */
export const isCancelled = (b: Backup) => b.status === 'failed' && b.cancelled === true
export const isRestoreCancelled = (op: RestoreOperation) => op.cancelled === true

/** The status a person reads: the API's, with "cancelled" told apart from "failed". */
export function displayStatus(b: Backup): string {
  return isCancelled(b) ? 'cancelled' : b.status
}
export function displayRestoreStatus(op: RestoreOperation): string {
  return isRestoreCancelled(op) && (op.status === 'failed' || op.status === 'rolled_back') ? 'cancelled' : op.status
}

/** Why the stored file can't be used, from the last verification; null when nothing is known wrong. */
export function integrityProblem(b: Backup): string | null {
  if (b.integrity_status === 'corrupt') {
    return 'Its stored file is damaged: the checksum does not match.'
  }
  if (b.integrity_status === 'missing') return 'Its stored file is missing.'
  return null
}

function blocked(b: Backup, action: string): string | null {
  if (b.status !== 'completed') return `Only a completed backup can be ${action}; this one is ${statusLabel(displayStatus(b)).toLowerCase()}.`
  return integrityProblem(b)
}
/** Why Download is not possible (null: it is). */
export const downloadBlocked = (b: Backup) => blocked(b, 'downloaded')
/** Why Restore is not possible (null: it is). */
export const restoreBlocked = (b: Backup) => blocked(b, 'restored')

export const canDownload = (b: Backup) => downloadBlocked(b) === null
export const canRestore = (b: Backup) => restoreBlocked(b) === null
export const canTrash = (b: Backup) => b.status === 'completed' || b.status === 'failed'
export const canCancel = (b: Backup) => b.status === 'pending' || b.status === 'in_progress'
export const canDelete = (b: Backup) => !canCancel(b)
export const canSelect = canDelete

/** The stored file's extension ("sql.zst", "sql.gz", "sql"), from the compression. */
export function storedExtension(b: Backup): string {
  if (b.compression === 'zstd') return 'sql.zst'
  if (b.compression === 'gzip') return 'sql.gz'
  if (b.compression === 'none') return 'sql'
  const match = /\.(sql(?:\.[a-z0-9]+)?)$/i.exec(b.filename)
  return match ? match[1]! : b.compression
}

export const DEFAULT_PURGE_AFTER_DAYS = 7

/** When a trashed backup is deleted for good: its trash date plus the purge age. */
export function purgeDate(b: Backup, purgeAfterDays: number = DEFAULT_PURGE_AFTER_DAYS): Date | null {
  if (!b.trashed_at) return null
  const trashed = parseDate(b.trashed_at)
  if (!trashed) return null
  return new Date(trashed.getTime() + purgeAfterDays * 86_400_000)
}

/** Where a backup came from, "shop-db / orders" (the source may be gone: then the database). */
export function originText(backup: Backup): string {
  const database = backup.database_name ?? backup.target_database
  return [backup.source_name, database].filter(Boolean).join(' / ')
}
