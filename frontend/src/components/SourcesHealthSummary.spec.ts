import { mount, RouterLinkStub } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import type { HealthReport } from '@/api/types'

import SourceHealthBadge from './SourceHealthBadge.vue'
import SourcesHealthSummary from './SourcesHealthSummary.vue'

const stale = { code: 'stale', severity: 'warning' as const, message: 'No completed backup within 1.5 h.', database: null }
const failed = {
  code: 'last_backup_failed',
  severity: 'failing' as const,
  message: "The last backup of 'shop' failed: Access denied",
  database: 'shop',
}

function mountSummary(health: HealthReport | null) {
  return mount(SourcesHealthSummary, { props: { health }, global: { stubs: { RouterLink: RouterLinkStub } } })
}

describe('SourcesHealthSummary', () => {
  it('counts the sources and lists the failing ones first with their reasons', () => {
    const wrapper = mountSummary({
      status: 'degraded',
      checks: {},
      sources: [
        { id: 1, name: 'alpha', status: 'ok', reasons: [] },
        { id: 2, name: 'beta', status: 'warning', reasons: [stale] },
        { id: 3, name: 'gamma', status: 'failing', reasons: [failed] },
      ],
    })
    const summary = wrapper.get('[data-testid="sources-health-summary"]')
    expect(summary.classes()).toContain('tone-failing')
    expect(wrapper.get('[data-testid="sources-health-counts"]').text()).toBe(
      '3 sources: 1 healthy, 1 with a warning, 1 failing',
    )
    const items = wrapper.findAll('[data-testid="sources-health-item"]')
    expect(items.map((i) => i.get('.name').text())).toEqual(['gamma', 'beta'])
    expect(items.map((i) => i.get('[data-testid="source-health-badge"]').text())).toEqual(['Failing', 'Warning'])
    expect(items.map((i) => i.get('[data-testid="source-health-reasons"]').text())).toEqual([failed.message, stale.message])
  })

  it('is a quiet line when every source is healthy, and absent without sources', () => {
    const ok = mountSummary({ status: 'ok', checks: {}, sources: [{ id: 1, name: 'alpha', status: 'ok', reasons: [] }] })
    expect(ok.get('[data-testid="sources-health-counts"]').text()).toBe('1 source: 1 healthy')
    expect(ok.findAll('[data-testid="sources-health-item"]')).toHaveLength(0)
    expect(mountSummary({ status: 'ok', checks: {} }).find('[data-testid="sources-health-summary"]').exists()).toBe(false)
    expect(mountSummary(null).find('[data-testid="sources-health-summary"]').exists()).toBe(false)
  })
})

describe('SourceHealthBadge', () => {
  it('shows the status with the reasons as its title, and lists them when asked', () => {
    const wrapper = mount(SourceHealthBadge, { props: { health: { status: 'failing', reasons: [failed, stale] } } })
    const badge = wrapper.get('[data-testid="source-health-badge"]')
    expect(badge.text()).toBe('Failing')
    expect(badge.classes()).toContain('badge-danger')
    expect(badge.attributes('title')).toBe(`${failed.message}\n${stale.message}`)
    expect(wrapper.find('[data-testid="source-health-reasons"]').exists()).toBe(false)

    const listed = mount(SourceHealthBadge, { props: { health: { status: 'warning', reasons: [stale] }, showReasons: true } })
    expect(listed.get('[data-testid="source-health-badge"]').classes()).toContain('badge-warning')
    expect(listed.get('[data-testid="source-health-reasons"]').text()).toBe(stale.message)
  })

  it('says healthy for ok and nothing for an older backend', () => {
    const ok = mount(SourceHealthBadge, { props: { health: { status: 'ok', reasons: [] } } })
    expect(ok.get('[data-testid="source-health-badge"]').text()).toBe('Healthy')
    expect(ok.get('[data-testid="source-health-badge"]').attributes('title')).toBeUndefined()
    expect(mount(SourceHealthBadge, { props: { health: undefined } }).find('[data-testid="source-health"]').exists()).toBe(false)
  })
})
