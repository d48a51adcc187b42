import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { connectionTest } from '@/test/factories'

import ConnectionReport from './ConnectionReport.vue'

describe('ConnectionReport', () => {
  it('marks the missing privileges and lists the databases found', () => {
    const wrapper = mount(ConnectionReport, {
      props: { report: connectionTest({ ok: false, message: 'The account lacks EVENT, TRIGGER.', missing_privileges: ['TRIGGER', 'EVENT'] }) },
    })
    expect(wrapper.get('[data-testid="connection-verdict"]').text()).toBe('The account lacks EVENT, TRIGGER.')
    expect(wrapper.get('[data-testid="connection-verdict"]').classes()).toContain('bad')
    expect(wrapper.findAll('[data-testid="privilege-missing"]').map((c) => c.text())).toEqual(['TRIGGER (missing)', 'EVENT (missing)'])
    expect(wrapper.findAll('[data-testid="privilege-granted"]')).toHaveLength(3)
    expect(wrapper.get('[data-testid="missing-privileges"]').text()).toContain('TRIGGER, EVENT')
    expect(wrapper.get('[data-testid="databases-found"]').text()).toContain('crm')
    expect(wrapper.get('[data-testid="server-version"]').text()).toBe('11.4.2-MariaDB')
  })

  it('says so when all is well', () => {
    const wrapper = mount(ConnectionReport, { props: { report: connectionTest() } })
    expect(wrapper.get('[data-testid="connection-verdict"]').classes()).toContain('ok')
    expect(wrapper.find('[data-testid="missing-privileges"]').exists()).toBe(false)
  })
})
