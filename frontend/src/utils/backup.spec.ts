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
