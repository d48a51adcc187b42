import { describe, expect, it } from 'vitest'

import type { Backup, RestoreOperation, User } from '@/api/types'

import { requestedBy, startedBy } from './backup'

const me = { id: 1, email: 'me@example.com', role: 'admin' } as User
const backup = (over: Partial<Backup>) =>
  ({ trigger: 'manual', created_by: null, created_by_email: null, ...over }) as Backup

describe('who started a backup', () => {
  it('names another user by e-mail and marks the current one', () => {
    expect(startedBy(backup({ created_by: 2, created_by_email: 'ops@example.com' }), me)).toBe(
      'ops@example.com',
    )
    expect(startedBy(backup({ created_by: 1, created_by_email: 'me@example.com' }), me)).toBe(
      'me@example.com (you)',
    )
  })

  it('falls back to the id when the server gave no e-mail', () => {
    expect(startedBy(backup({ created_by: 7 }), me)).toBe('User #7')
  })

  it('says when the schedule, a restore or the command line started it', () => {
    expect(startedBy(backup({ trigger: 'scheduled' }), me)).toBe('Schedule')
    expect(startedBy(backup({ trigger: 'pre_restore', created_by: 2 }), me)).toBe('Safety backup')
    expect(startedBy(backup({ trigger: 'cli' }), me)).toBe('Command line')
  })

  it('names who asked for a restore', () => {
    const op = { requested_by: 3, requested_by_email: 'dba@example.com' } as RestoreOperation
    expect(requestedBy(op, me)).toBe('dba@example.com')
    expect(requestedBy({ requested_by: null } as RestoreOperation, me)).toBe('Command line')
  })
})

describe('cancelled, integrity, downloads and the trash', () => {
  it('tells a cancelled backup from a failed one', async () => {
    const { backup: make } = await import('@/test/factories')
    const { displayStatus, isCancelled } = await import('./backup')
    expect(displayStatus(make({ status: 'failed', cancelled: true }))).toBe('cancelled')
    expect(displayStatus(make({ status: 'failed', cancelled: false }))).toBe('failed')
    expect(displayStatus(make({ status: 'failed' }))).toBe('failed')
    // Only an ended backup is "cancelled"; one still stopping keeps its status.
    expect(isCancelled(make({ status: 'in_progress', cancelled: true }))).toBe(false)
  })

  it('blocks download and restore of a backup found corrupt or missing, with the reason', async () => {
    const { backup: make } = await import('@/test/factories')
    const { canDownload, canRestore, downloadBlocked, restoreBlocked } = await import('./backup')
    expect(downloadBlocked(make({ integrity_status: 'ok' }))).toBeNull()
    expect(downloadBlocked(make({ integrity_status: null }))).toBeNull()
    const corrupt = make({ integrity_status: 'corrupt' })
    expect(canDownload(corrupt)).toBe(false)
    expect(canRestore(corrupt)).toBe(false)
    expect(downloadBlocked(corrupt)).toMatch(/damaged/)
    expect(restoreBlocked(make({ integrity_status: 'missing' }))).toMatch(/missing/)
    expect(downloadBlocked(make({ status: 'failed', cancelled: true }))).toMatch(/completed .*cancelled/)
  })

  it('names the stored file by its compression', async () => {
    const { backup: make } = await import('@/test/factories')
    const { storedExtension } = await import('./backup')
    expect(storedExtension(make({ compression: 'zstd' }))).toBe('sql.zst')
    expect(storedExtension(make({ compression: 'gzip' }))).toBe('sql.gz')
    expect(storedExtension(make({ compression: 'none' }))).toBe('sql')
  })

  it('dates the purge from the trash date and the purge age', async () => {
    const { backup: make } = await import('@/test/factories')
    const { purgeDate } = await import('./backup')
    const trashed = make({ status: 'in_trash', trashed_at: '2026-02-01T10:00:00Z' })
    expect(purgeDate(trashed)?.toISOString()).toBe('2026-02-08T10:00:00.000Z')
    expect(purgeDate(trashed, 30)?.toISOString()).toBe('2026-03-03T10:00:00.000Z')
    expect(purgeDate(make({ trashed_at: null }))).toBeNull()
  })
})
