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

  it('shows a backup found corrupt as such, with Download and Restore disabled and the reason', async () => {
    const wrapper = table([backup({ id: 20, filename: 'bad.sql.zst', integrity_status: 'corrupt', verified_at: '2026-02-01T00:00:00Z' })])
    const row = wrapper.get('[data-testid="row-20"]')
    expect(row.get('[data-testid="integrity-badge"]').text()).toContain('Corrupt')
    expect(row.find('a[aria-label="Download bad.sql.zst"]').exists()).toBe(false)
    const download = row.get('[data-testid="download-unavailable"]')
    expect(download.attributes('aria-disabled')).toBe('true')
    expect(download.attributes('title')).toMatch(/^Can't download: .*damaged/)
    const restore = row.get('[data-testid="restore-unavailable"]')
    expect(restore.attributes('title')).toMatch(/^Can't restore: .*damaged/)
    await download.trigger('click')
    await restore.trigger('click')
    expect(wrapper.emitted('download')).toBeUndefined()
    expect(wrapper.emitted('restore')).toBeUndefined()
  })

  it('marks a missing file in the row', () => {
    const wrapper = table([backup({ id: 21, integrity_status: 'missing' })])
    expect(wrapper.get('[data-testid="row-21"] [data-testid="integrity-badge"]').text()).toContain('File missing')
  })

  it('downloads through a check instead of following the link blindly', async () => {
    const wrapper = table([backup({ id: 22, filename: 'ok.sql.zst' })])
    const link = wrapper.get('a[aria-label="Download ok.sql.zst"]')
    const event = new MouseEvent('click', { cancelable: true, bubbles: true })
    link.element.dispatchEvent(event)
    expect(event.defaultPrevented).toBe(true)
    expect(wrapper.emitted('download')?.[0]?.[0]).toMatchObject({ id: 22 })
  })

  it('shows a cancelled backup as "Cancelled" with its reason in neutral words', () => {
    const wrapper = table([backup({ id: 23, status: 'failed', cancelled: true, error_message: 'Cancelled by admin@example.com.' })])
    const row = wrapper.get('[data-testid="row-23"]')
    expect(row.get('[data-testid="status-badge"]').text()).toBe('Cancelled')
    expect(row.find('.row-error').exists()).toBe(false)
    expect(row.get('.row-note').text()).toBe('Cancelled by admin@example.com.')
  })

  it('labels the trash date "Trashed" and shows when each item is deleted for good', () => {
    const wrapper = mount(BackupTable, {
      props: {
        items: [backup({ id: 24, status: 'in_trash', trashed_at: '2026-02-01T12:00:00Z' })],
        view: 'trash',
        selected: [],
        estimates: new Map(),
        loading: false,
        purgeAfterDays: 10,
      },
    })
    const row = wrapper.get('[data-testid="row-24"]')
    expect(row.find('td[data-label="Date"]').exists()).toBe(false)
    expect(row.find('td[data-label="Trashed"]').exists()).toBe(true)
    const expected = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }).format(new Date('2026-02-11T12:00:00Z'))
    expect(row.get('[data-testid="purge-date"]').text()).toBe(expected)
    expect(wrapper.get('thead').text()).toContain('Deleted for good')
  })

  it('marks a degraded backup (a copy failed) and opens its details from the marker', async () => {
    const wrapper = table([backup({ id: 25, filename: 'e.sql.zst', degraded: true }), backup({ id: 26 })])
    const marker = wrapper.get('[data-testid="row-25"] [data-testid="degraded-badge"]')
    expect(marker.text()).toBe('Degraded')
    expect(marker.attributes('title')).toBe('A copy failed; open details to retry.')
    expect(marker.attributes('aria-label')).toBe('Degraded: a copy of e.sql.zst failed; open details to retry')
    await marker.trigger('click')
    expect(wrapper.emitted('details')?.[0]?.[0]).toMatchObject({ id: 25 })
    expect(wrapper.find('[data-testid="row-26"] [data-testid="degraded-badge"]').exists()).toBe(false)
  })

  it('marks an encrypted backup with a lock', () => {
    const wrapper = table([backup({ id: 27, encrypted: true }), backup({ id: 28 })])
    const marker = wrapper.get('[data-testid="row-27"] [data-testid="encrypted-badge"]')
    expect(marker.text()).toBe('Encrypted')
    expect(marker.find('svg').exists()).toBe(true)
    expect(marker.attributes('title')).toContain('Encrypted (age)')
    expect(wrapper.find('[data-testid="row-28"] [data-testid="encrypted-badge"]').exists()).toBe(false)
  })
})
