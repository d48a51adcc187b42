import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

import type { Backup, RestoreOperation } from '@/api/types'
import { backup, jsonResponse, restoreOp } from '@/test/factories'

import BackupDetails from './BackupDetails.vue'

describe('BackupDetails', () => {
  let history: RestoreOperation[] = []
  beforeEach(() => {
    history = []
    vi.stubGlobal('fetch', async () => jsonResponse({ success: true, data: history }))
  })
  afterEach(() => vi.unstubAllGlobals())

  async function details(b: Backup) {
    const wrapper = mount(BackupDetails, { props: { backup: b }, attachTo: document.body })
    await flushPromises()
    return wrapper
  }

  it('says which file the SHA-256 is of, and offers the stored file besides the .sql', async () => {
    const wrapper = await details(backup({ id: 30, compression: 'zstd' }))
    expect(wrapper.get('[data-testid="checksum-note"]').text()).toBe('of the stored .sql.zst file, not of the downloaded .sql')
    expect(wrapper.get('[data-testid="download-sql"]').attributes('href')).toBe('/admin/database-backups/30/download')
    const raw = wrapper.get('[data-testid="download-raw"]')
    expect(raw.attributes('href')).toBe('/admin/database-backups/30/download?raw=1')
    expect(raw.text()).toContain('Download .sql.zst')
    await raw.trigger('click')
    await wrapper.get('[data-testid="download-sql"]').trigger('click')
    expect(wrapper.emitted('download')).toEqual([
      [expect.objectContaining({ id: 30 }), true],
      [expect.objectContaining({ id: 30 }), false],
    ])
    expect(wrapper.get('[data-testid="details-integrity"]').text()).toContain('Verified')
    wrapper.unmount()
  })

  it('an uncompressed backup has one download, and its checksum is of that .sql', async () => {
    const wrapper = await details(backup({ id: 31, compression: 'none', filename: 'x.sql' }))
    expect(wrapper.find('[data-testid="download-raw"]').exists()).toBe(false)
    expect(wrapper.get('[data-testid="checksum-note"]').text()).toBe('of the stored .sql file')
    wrapper.unmount()
  })

  it('a corrupt backup says so, and Download and Restore are disabled with the reason', async () => {
    const wrapper = await details(backup({ id: 32, integrity_status: 'corrupt', verified_at: '2026-02-01T00:00:00Z' }))
    expect(wrapper.get('[data-testid="details-integrity"]').text()).toContain('Corrupt')
    expect(wrapper.get('[data-testid="unusable-reason"]').text()).toMatch(/damaged.*Download and restore are not possible/)
    expect(wrapper.find('[data-testid="download-sql"]').exists()).toBe(false)
    const download = wrapper.get('[data-testid="download-unavailable"]')
    expect(download.attributes('disabled')).toBeDefined()
    expect(download.attributes('title')).toMatch(/^Can't download/)
    const restore = wrapper.get('[data-testid="details-restore"]')
    expect(restore.attributes('disabled')).toBeDefined()
    expect(restore.attributes('title')).toMatch(/^Can't restore/)
    wrapper.unmount()
  })

  it('shows a never-verified backup as such', async () => {
    const wrapper = await details(backup({ id: 33, integrity_status: null }))
    expect(wrapper.get('[data-testid="details-integrity"]').text()).toContain('Not verified yet')
    wrapper.unmount()
  })

  it('a cancelled backup and a cancelled restore read as cancelled, not as errors', async () => {
    history = [restoreOp({ id: 40, backup_id: 34, status: 'failed', cancelled: true, error_message: 'Cancelled before the database was changed.' })]
    const wrapper = await details(backup({ id: 34, status: 'failed', cancelled: true, error_message: 'Cancelled by you.' }))
    const badges = wrapper.findAll('[data-testid="status-badge"]').map((b) => b.text())
    expect(badges).toEqual(['Cancelled', 'Cancelled'])
    expect(wrapper.text()).toContain('Reason')
    expect(wrapper.find('.error-text').exists()).toBe(false)
    wrapper.unmount()
  })
})
