import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { HealthReport } from '@/api/types'

import SystemStatus from './SystemStatus.vue'

const check = (status: 'ok' | 'warn' | 'fail', message: string) => ({ status, critical: false, message, details: {} })

describe('SystemStatus', () => {
  it('says the target is reachable and when the next backup runs', () => {
    const health: HealthReport = {
      status: 'ok',
      checks: { target: check('ok', 'ok') },
      next_backup_at: new Date(Date.now() + 3 * 3600_000).toISOString(),
    }
    const wrapper = mount(SystemStatus, { props: { health } })
    expect(wrapper.get('[data-testid="target-status"]').text()).toBe('Target database reachable')
    expect(wrapper.get('[data-testid="next-backup"]').text()).toMatch(/^Next scheduled backup in 3 hours \(/)
  })

  it("shows the target's refusal, and a schedule that is off", () => {
    const health: HealthReport = {
      status: 'degraded',
      checks: { target: check('fail', "Access denied for user 'app'.") },
      next_backup_at: null,
    }
    const wrapper = mount(SystemStatus, { props: { health } })
    expect(wrapper.get('[data-testid="target-status"]').text()).toBe("Target database unreachable: Access denied for user 'app'.")
    expect(wrapper.get('[data-testid="target-status"]').classes()).toContain('tone-fail')
    expect(wrapper.get('[data-testid="next-backup"]').text()).toBe('Scheduled backups are off')
  })

  it('shows nothing it was not told (an older backend)', () => {
    const wrapper = mount(SystemStatus, { props: { health: { status: 'ok', checks: {} } } })
    expect(wrapper.find('[data-testid="system-status"]').exists()).toBe(false)
  })
})
