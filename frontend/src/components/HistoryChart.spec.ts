import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { backup } from '@/test/factories'

import HistoryChart from './HistoryChart.vue'

describe('HistoryChart', () => {
  it('draws a bar per completed backup and a cross per failure', () => {
    const wrapper = mount(HistoryChart, {
      props: {
        backups: [
          backup({ id: 1, backup_date: '2026-01-01T00:00:00Z', file_size: 2048, duration_ms: 1000 }),
          backup({ id: 2, backup_date: '2026-01-02T00:00:00Z', status: 'failed', error_message: 'Disk full.' }),
          backup({ id: 3, backup_date: '2026-01-03T00:00:00Z', file_size: 4096, duration_ms: 3000 }),
        ],
      },
    })
    expect(wrapper.findAll('rect.bar')).toHaveLength(2)
    expect(wrapper.findAll('g.failed')).toHaveLength(1)
    expect(wrapper.find('g.failed title').text()).toContain('Disk full.')
    expect(wrapper.findAll('circle.dot')).toHaveLength(2)
    expect(wrapper.find('desc').text()).toBe('The last 3 finished backups: 1 failed, the largest 4.00 KB.')
  })

  it('says so when there is nothing to draw', () => {
    const wrapper = mount(HistoryChart, { props: { backups: [] } })
    expect(wrapper.find('svg').exists()).toBe(false)
    expect(wrapper.text()).toContain('No finished backups yet.')
  })
})
