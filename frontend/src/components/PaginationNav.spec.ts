import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import PaginationNav from './PaginationNav.vue'

describe('PaginationNav', () => {
  it('shows a window of pages with the ends and the range', () => {
    const wrapper = mount(PaginationNav, { props: { page: 6, lastPage: 20, total: 195, perPage: 10 } })
    const labels = wrapper.findAll('button[aria-label^="Page "]').map((b) => b.text())
    expect(labels).toEqual(['1', '5', '6', '7', '20'])
    expect(wrapper.get('[aria-current="page"]').text()).toBe('6')
    expect(wrapper.get('[data-testid="page-range"]').text()).toBe('51–60 of 195')
  })

  it('disables previous on the first page and emits the chosen page', async () => {
    const wrapper = mount(PaginationNav, { props: { page: 1, lastPage: 2, total: 12, perPage: 10 } })
    expect(wrapper.get('[aria-label="Previous page"]').attributes('disabled')).toBeDefined()
    await wrapper.get('[aria-label="Next page"]').trigger('click')
    expect(wrapper.emitted('update:page')).toEqual([[2]])
  })
})
