import { flushPromises, mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import ConfirmDialog from './ConfirmDialog.vue'

async function open(props: Record<string, unknown>) {
  const wrapper = mount(ConfirmDialog, {
    props: { open: false, title: 'Delete permanently?', confirmLabel: 'Delete permanently', danger: true, ...props },
    attachTo: document.body,
  })
  await wrapper.setProps({ open: true })
  await flushPromises()
  return wrapper
}

describe('ConfirmDialog', () => {
  it('focuses the safe choice when asked, so Enter does not confirm', async () => {
    const wrapper = await open({ focusCancel: true })
    expect(document.activeElement).toBe(wrapper.get('[data-testid="confirm-cancel"]').element)
    wrapper.unmount()
  })

  it('focuses the confirm button otherwise', async () => {
    const wrapper = await open({})
    expect(document.activeElement).toBe(wrapper.get('[data-testid="confirm-button"]').element)
    wrapper.unmount()
  })

  it('uses the given words for both choices', async () => {
    const wrapper = await open({ cancelLabel: 'Keep running', confirmLabel: 'Stop backup', danger: false })
    expect(wrapper.get('[data-testid="confirm-cancel"]').text()).toBe('Keep running')
    expect(wrapper.get('[data-testid="confirm-button"]').text()).toBe('Stop backup')
    await wrapper.get('[data-testid="confirm-cancel"]').trigger('click')
    expect(wrapper.emitted('close')).toHaveLength(1)
    expect(wrapper.emitted('confirm')).toBeUndefined()
    wrapper.unmount()
  })
})
