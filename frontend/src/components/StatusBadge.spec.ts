import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import StatusBadge from './StatusBadge.vue'

describe('StatusBadge', () => {
  it('shows a cancel as a neutral "Cancelled", never the red failure', () => {
    const badge = mount(StatusBadge, { props: { status: 'cancelled' } })
    expect(badge.text()).toBe('Cancelled')
    expect(badge.classes()).toContain('badge-neutral')
    expect(badge.classes()).not.toContain('badge-danger')
    expect(mount(StatusBadge, { props: { status: 'failed' } }).classes()).toContain('badge-danger')
  })
})
