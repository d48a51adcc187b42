import type { Backup, RestoreOperation, User } from '@/api/types'

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

export const canDownload = (b: Backup) => b.status === 'completed'
export const canRestore = (b: Backup) => b.status === 'completed'
export const canTrash = (b: Backup) => b.status === 'completed' || b.status === 'failed'
export const canCancel = (b: Backup) => b.status === 'pending' || b.status === 'in_progress'
export const canDelete = (b: Backup) => !canCancel(b)
export const canSelect = canDelete
