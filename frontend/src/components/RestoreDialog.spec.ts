import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import { resetSources } from '@/composables/useSources'
import { backup, jsonResponse, source } from '@/test/factories'

import RestoreDialog from './RestoreDialog.vue'

function open(overrides = {}) {
  return mount(RestoreDialog, { props: { backup: backup({ target_database: 'shop', ...overrides }) }, attachTo: document.body })
}

describe('RestoreDialog', () => {
  beforeEach(() => {
    resetSources()
    vi.stubGlobal('fetch', async () =>
      jsonResponse({
        success: true,
        data: [source({ id: 1, name: 'default' }), source({ id: 2, name: 'staging' }), source({ id: 3, name: 'pg', engine: 'postgresql' })],
      }),
    )
  })
  afterEach(() => vi.unstubAllGlobals())

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
    expect(wrapper.emitted('confirm')).toEqual([[true, false, {}]])
    wrapper.unmount()
  })

  it('offers the safety backup, on by default, and passes the choice on', async () => {
    const wrapper = open()
    const safety = wrapper.get<HTMLInputElement>('[data-testid="safety-backup"]')
    expect(safety.element.checked).toBe(true)
    await safety.setValue(false)
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('shop')
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('confirm')).toEqual([[false, false, {}]])
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
    expect(wrapper.emitted('confirm')).toEqual([[true, true, {}]])
    wrapper.unmount()
  })

  it('restores into another source of the same engine and another database when chosen', async () => {
    const wrapper = open({ source_id: 1, source_name: 'default', database_name: 'shop' })
    await flushPromises()
    const options = wrapper.findAll('[data-testid="restore-target-source"] option').map((o) => o.text())
    expect(options).toEqual(['default', 'staging'])
    await wrapper.get('[data-testid="restore-target-source"]').setValue('2')
    await wrapper.get('[data-testid="restore-target-database"]').setValue('shop_copy')
    expect(wrapper.text()).toContain('on staging')
    expect(wrapper.find('[data-testid="restore-elsewhere"]').exists()).toBe(true)
    // The name to type is the target's, not the backup's.
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('shop')
    expect(wrapper.get('[data-testid="restore-submit"]').attributes('disabled')).toBeDefined()
    await wrapper.get('[data-testid="restore-confirm-input"]').setValue('shop_copy')
    await wrapper.get('form').trigger('submit')
    expect(wrapper.emitted('confirm')).toEqual([[true, false, { sourceId: 2, database: 'shop_copy' }]])
    wrapper.unmount()
  })
})
