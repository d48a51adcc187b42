import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { statistics } from '@/test/factories'

import StatCards from './StatCards.vue'

describe('StatCards', () => {
  it('counts cancelled backups apart from failed ones, shown only when there are some', () => {
    const some = mount(StatCards, { props: { stats: statistics({ failed_backups: 1, cancelled_backups: 4 }) } })
    expect(some.get('[data-testid="stat-failed_backups"]').text()).toContain('1')
    const cancelled = some.get('[data-testid="stat-cancelled_backups"]')
    expect(cancelled.text()).toContain('Cancelled')
    expect(cancelled.text()).toContain('4')
    expect(cancelled.find('.danger').exists()).toBe(false)

    const none = mount(StatCards, { props: { stats: statistics({ failed_backups: 0, cancelled_backups: 0 }) } })
    expect(none.find('[data-testid="stat-cancelled_backups"]').exists()).toBe(false)
    expect(mount(StatCards, { props: { stats: statistics() } }).find('[data-testid="stat-cancelled_backups"]').exists()).toBe(false)
  })
})
