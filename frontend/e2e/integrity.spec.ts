// A backup that `dbkeep backup:verify` found corrupt: shown as such wherever it is shown, with
// Download and Restore disabled and the reason given, and a download started from a list that
// is out of date says why instead of failing silently in the browser.
import { openSync, readSync, writeSync, closeSync, fstatSync } from 'node:fs'
import { join } from 'node:path'

import { dbkeep } from './server'
import { expect, row, test } from './fixtures'
import type { Backup } from '../src/api/types'

function settings(): Record<string, string> {
  return JSON.parse(process.env.DBKEEP_E2E_SETTINGS ?? '{}') as Record<string, string>
}

/** Flips one byte in the middle of the stored file, keeping its size. */
function damage(backup: Backup): void {
  const taken = new Date(backup.backup_date.endsWith('Z') ? backup.backup_date : `${backup.backup_date}Z`)
  const year = String(taken.getUTCFullYear())
  const month = String(taken.getUTCMonth() + 1).padStart(2, '0')
  const file = join(settings().DBKEEP_BACKUP_DIR!, year, month, backup.filename)
  const fd = openSync(file, 'r+')
  try {
    const at = Math.floor(fstatSync(fd).size / 2)
    const byte = Buffer.alloc(1)
    readSync(fd, byte, 0, 1, at)
    byte[0] = byte[0]! ^ 0xff
    writeSync(fd, byte, 0, 1, at)
  } finally {
    closeSync(fd)
  }
}

test('a backup found corrupt says so, and Download and Restore say why they are off', async ({ adminPage: page, api }) => {
  const backup = await api.createCompleted()
  await page.reload()
  const link = row(page, backup.id).getByRole('link', { name: `Download ${backup.filename}` })
  await expect(link).toBeVisible()

  damage(backup)
  const verify = dbkeep(['backup:verify', String(backup.id)], settings())
  expect(verify.status, verify.output).not.toBe(0)
  expect((await api.get(backup.id)).integrity_status).toBe('corrupt')

  // The page still shows the old state: the download checks first and gives the reason.
  let downloads = 0
  page.on('download', () => downloads++)
  await link.click()
  const notice = page.getByTestId('toast').filter({ hasText: `${backup.filename} can't be downloaded.` })
  await expect(notice).toBeVisible()
  await expect(notice).toContainText('damaged')
  expect(downloads).toBe(0)

  // Refreshed: the row says Corrupt, both actions are disabled with the reason as their title.
  const target = row(page, backup.id)
  await expect(target.getByTestId('integrity-badge')).toContainText('Corrupt')
  await expect(target.getByRole('link', { name: `Download ${backup.filename}` })).toHaveCount(0)
  await expect(target.getByTestId('download-unavailable')).toHaveAttribute('title', /^Can't download: .*damaged/)
  await expect(target.getByTestId('restore-unavailable')).toHaveAttribute('title', /^Can't restore: .*damaged/)
  await target.getByRole('button', { name: `Details of ${backup.filename}` }).click()
  const details = page.getByTestId('backup-details')
  await expect(details.getByTestId('details-integrity')).toContainText('Corrupt')
  await expect(details.getByTestId('unusable-reason')).toContainText('Download and restore are not possible')
  await expect(details.getByTestId('details-restore')).toBeDisabled()
  await page.screenshot({ path: 'screenshots/corrupt-details.png' })
})

test('the details offer the stored file besides the .sql, and say which file the SHA-256 is of', async ({ adminPage: page, api }) => {
  const backup = await api.createCompleted()
  await page.reload()
  await row(page, backup.id).getByRole('button', { name: `Details of ${backup.filename}` }).click()
  const details = page.getByTestId('backup-details')
  await expect(details.getByTestId('checksum-note')).toHaveText('of the stored .sql.zst file, not of the downloaded .sql')
  const downloadPromise = page.waitForEvent('download')
  await details.getByTestId('download-raw').click()
  const download = await downloadPromise
  expect(download.suggestedFilename()).toBe(backup.filename)
  const { createHash } = await import('node:crypto')
  const { readFileSync } = await import('node:fs')
  const sha = createHash('sha256').update(readFileSync((await download.path())!)).digest('hex')
  expect(sha).toBe(backup.checksum_sha256)
})
