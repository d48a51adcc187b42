import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { backup } from '@/test/factories'

import RestoreDialog from './RestoreDialog.vue'

function open(overrides = {}) {
  return mount(RestoreDialog, { props: { backup: backup({ target_database: 'shop', ...overrides }) }, attachTo: document.body })
}

describe('RestoreDialog', () => {
  it('says plainly that the data is replaced', () => {
    const wrapper = open()
    expect(wrapper.text()).toContain('replaces all current data')
    expect(wrapper.text()).toContain('shop')
    wrapper.unmount()
  })

  it('only enables the restore once the database name is typed exactly', async () => {
    const wrapper = open()
    const submit = wrapper.get('[data-testid="restore-submit"]')
    expect(submit.attributes('disabled')).toBeDefined()
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('Shop')
    expect(submit.attributes('disabled')).toBeDefined()
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('shop')
    expect(submit.attributes('disabled')).toBeUndefined()
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('confirm')).toEqual([[true, false]])
    wrapper.unmount()
  })

  it('offers the safety backup, on by default, and passes the choice on', async () => {
    const wrapper = open()
    const safety = wrapper.get<HTMLInputElement>('[data-testid="safety-backup"]')
    expect(safety.element.checked).toBe(true)
    await safety.setValue(false)
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('shop')
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('confirm')).toEqual([[false, false]])
    wrapper.unmount()
  })

  it('refuses to submit with a wrong name', async () => {
    const wrapper = open()
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('sho')
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('confirm')).toBeUndefined()
    wrapper.unmount()
  })

  it('removes objects the backup does not have unless asked to keep them, and says which', async () => {
    const wrapper = open()
    const keep = wrapper.get<HTMLInputElement>('[data-testid="keep-existing"]')
    expect(keep.element.checked).toBe(false)
    expect(wrapper.text()).toContain('the backup does not have are removed')
    await keep.setValue(true)
    expect(wrapper.text()).toContain('the backup does not have are kept')
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('shop')
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('confirm')).toEqual([[true, true]])
    wrapper.unmount()
  })
})
