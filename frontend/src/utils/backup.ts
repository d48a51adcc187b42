import type { Backup } from '@/api/types'

/** Who started the backup, in words. */
export function startedBy(backup: Backup): string {
  const extra = backup as Backup & { created_by_email?: string | null; created_by_name?: string | null }
  if (extra.created_by_email) return extra.created_by_email
  if (extra.created_by_name) return extra.created_by_name
  if (backup.trigger === 'scheduled') return 'Schedule'
  if (backup.trigger === 'cli') return 'Command line'
  if (backup.trigger === 'pre_restore') return 'Safety backup'
  return backup.created_by !== null ? `User #${backup.created_by}` : '—'
}

export const canDownload = (b: Backup) => b.status === 'completed'
export const canRestore = (b: Backup) => b.status === 'completed'
export const canTrash = (b: Backup) => b.status === 'completed' || b.status === 'failed'
export const canCancel = (b: Backup) => b.status === 'pending' || b.status === 'in_progress'
export const canDelete = (b: Backup) => !canCancel(b)
export const canSelect = canDelete
