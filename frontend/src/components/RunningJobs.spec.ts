import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { RunningJob } from '@/composables/useBackups'
import { backup, restoreOp } from '@/test/factories'

import RunningJobs from './RunningJobs.vue'

const idle = { fraction: null, rate: null, secondsLeft: null }

function restoreJob(cancelRequestedAt: string | null = null): RunningJob {
  return {
    key: 'restore:5',
    kind: 'restore',
    backup: backup({ id: 3, filename: 'shop.sql.zst' }),
    restore: restoreOp({ id: 5, backup_id: 3, status: 'in_progress', cancel_requested_at: cancelRequestedAt }),
    label: 'shop.sql.zst',
    status: 'in_progress',
    phase: null,
    processed: 10,
    total: 100,
    estimate: idle,
  }
}

describe('RunningJobs', () => {
  it('offers to cancel a running restore', async () => {
    const wrapper = mount(RunningJobs, { props: { jobs: [restoreJob()] } })
    await wrapper.get('[aria-label="Cancel restore from shop.sql.zst"]').trigger('click')
    expect(wrapper.emitted('cancelRestore')?.[0]?.[0]).toMatchObject({ key: 'restore:5' })
  })

  it('says a restore is stopping once its cancel was asked for', () => {
    const wrapper = mount(RunningJobs, { props: { jobs: [restoreJob('2026-01-31T00:01:00Z')] } })
    expect(wrapper.find('[aria-label="Cancel restore from shop.sql.zst"]').exists()).toBe(false)
    expect(wrapper.text()).toContain('Stopping…')
  })
})

describe('RunningJobs: restore phases', () => {
  const busy = { fraction: 0.1, rate: 1_000_000, secondsLeft: 3600 }
  function phased(phase: string, total: number | null = 100): RunningJob {
    return { ...restoreJob(), phase, total, estimate: busy }
  }

  it('names the phase, and gives no time left during a safety backup without an estimate', () => {
    const wrapper = mount(RunningJobs, { props: { jobs: [phased('safety_backup', null)] } })
    expect(wrapper.get('[data-testid="job-phase"]').text()).toBe('Safety backup')
    expect(wrapper.text()).toContain('Safety backup of the current data: 10 B so far')
    expect(wrapper.text()).not.toMatch(/left|estimating|of ~/)
    expect(wrapper.get('[role="progressbar"]').attributes('aria-valuenow')).toBeUndefined()
  })

  it("shows a safety backup's own total and time left when it has one", () => {
    const wrapper = mount(RunningJobs, { props: { jobs: [phased('safety_backup', 100)] } })
    expect(wrapper.text()).toContain('10 B of ~100 B')
    expect(wrapper.text()).toContain('about 1.0 h left')
  })

  it('gives no estimate while rolling back', () => {
    const wrapper = mount(RunningJobs, { props: { jobs: [phased('rolling_back')] } })
    expect(wrapper.get('[data-testid="job-phase"]').text()).toBe('Rolling back')
    expect(wrapper.text()).not.toMatch(/left|estimating|of ~/)
    expect(wrapper.get('[role="progressbar"]').attributes('aria-valuenow')).toBeUndefined()
  })

  it('shows the load with its total and time left', () => {
    const wrapper = mount(RunningJobs, { props: { jobs: [phased('loading')] } })
    expect(wrapper.get('[data-testid="job-phase"]').text()).toBe('Loading')
    expect(wrapper.text()).toContain('about 1.0 h left')
    expect(wrapper.get('[role="progressbar"]').attributes('aria-valuenow')).toBe('10')
  })
})
