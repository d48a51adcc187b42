import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'

import { backup } from '@/test/factories'

import BackupTable from './BackupTable.vue'

function table(items: ReturnType<typeof backup>[], view: 'active' | 'trash' = 'active', selected: number[] = []) {
  return mount(BackupTable, { props: { items, view, selected, estimates: new Map(), loading: false } })
}

describe('BackupTable', () => {
  it('offers download, restore and trash for a completed backup', () => {
    const wrapper = table([backup({ id: 1, filename: 'a.sql.zst' })])
    const row = wrapper.get('[data-testid="row-1"]')
    expect(row.find('a[aria-label="Download a.sql.zst"]').attributes('href')).toBe('/admin/database-backups/1/download')
    expect(row.find('[aria-label="Restore database from a.sql.zst"]').exists()).toBe(true)
    expect(row.find('[aria-label="Move a.sql.zst to trash"]').exists()).toBe(true)
  })

  it('offers only cancel for a running backup, and it cannot be selected', async () => {
    const wrapper = table([backup({ id: 2, filename: 'b', status: 'in_progress', bytes_processed: 2048 })])
    const row = wrapper.get('[data-testid="row-2"]')
    expect(row.find('[aria-label="Cancel backup b"]').exists()).toBe(true)
    expect(row.find('[aria-label="Download b"]').exists()).toBe(false)
    expect(row.find('[aria-label="Restore database from b"]').exists()).toBe(false)
    expect(row.get('input[type="checkbox"]').attributes('disabled')).toBeDefined()
    expect(row.find('[role="progressbar"]').exists()).toBe(true)
    await row.get('[aria-label="Cancel backup b"]').trigger('click')
    expect(wrapper.emitted('cancel')?.[0]?.[0]).toMatchObject({ id: 2 })
  })

  it('shows the error of a failed backup and no restore', () => {
    const wrapper = table([backup({ id: 3, filename: 'c', status: 'failed', error_message: 'Access denied for user' })])
    expect(wrapper.text()).toContain('Access denied for user')
    expect(wrapper.find('[aria-label="Restore database from c"]').exists()).toBe(false)
  })

  it('offers restore-from-trash and permanent delete in the trash', async () => {
    const wrapper = table([backup({ id: 4, filename: 'd', status: 'in_trash', trashed_at: '2026-02-01T00:00:00Z' })], 'trash')
    await wrapper.get('[aria-label="Restore d from trash"]').trigger('click')
    await wrapper.get('[aria-label="Delete d permanently"]').trigger('click')
    expect(wrapper.emitted('untrash')).toHaveLength(1)
    expect(wrapper.emitted('delete')).toHaveLength(1)
  })

  it('selects all selectable rows of the page, keeping other pages\' selection', async () => {
    const wrapper = table(
      [backup({ id: 5 }), backup({ id: 6, status: 'pending' }), backup({ id: 7, status: 'failed' })],
      'active',
      [99],
    )
    await wrapper.get('thead input[type="checkbox"]').setValue(true)
    expect(wrapper.emitted('update:selected')?.[0]?.[0]).toEqual([99, 5, 7])
  })

  it('toggles one row', async () => {
    const wrapper = table([backup({ id: 8 })], 'active', [8])
    await wrapper.get('[data-testid="row-8"] input').setValue(false)
    expect(wrapper.emitted('update:selected')?.[0]?.[0]).toEqual([])
  })
})
