// Backing up a source now and importing a dump, end to end: a real server, worker and browser.
import { expect, row, test } from './fixtures'

const toast = (page: import('@playwright/test').Page, text: string | RegExp) =>
  page.getByTestId('toast').filter({ hasText: text })

test('Back up now on a source queues its backup, which completes and shows as its last', async ({ adminPage: page, api }) => {
  test.setTimeout(90_000)
  await api.idle()
  await page.goto('/admin/sources')
  const card = page.getByTestId('source-default')
  await expect(card).toBeVisible()

  const before = (await api.list({ sort: 'latest', per_page: 1 })).data[0]?.id ?? 0
  await card.getByTestId('backup-source').click()
  await expect(toast(page, /queued/)).toBeVisible()
  let newest = (await api.list({ sort: 'latest', per_page: 1 })).data[0]!
  expect(newest.id).toBeGreaterThan(before)
  await expect
    .poll(async () => (newest = await api.get(newest.id)).status, { timeout: 60_000, intervals: [250, 500, 1000] })
    .toBe('completed')
  expect(newest.source_name).toBe('default')
  await expect(card.getByTestId('source-last-backup')).not.toHaveText(/never/i, { timeout: 15_000 })
})

test('a dump dropped on the import zone becomes a completed backup of its database; a cut one is refused', async ({ adminPage: page, api, database }) => {
  test.setTimeout(120_000)
  const original = await api.createCompleted()
  const download = await api.context.get(`/admin/database-backups/${original.id}/download`)
  expect(download.status()).toBe(200)
  const dump = await download.body()
  expect(dump.toString('utf8')).toContain('CREATE TABLE `customers`')

  await page.goto('/admin/database-backups')
  await page.getByTestId('import-toggle').click()
  await page.getByTestId('import-input').setInputFiles({ name: 'shop.sql', mimeType: 'application/sql', buffer: dump })
  await expect(page.getByTestId('import-file')).toContainText('shop.sql')
  await page.getByTestId('import-database').fill(database)
  await page.getByTestId('import-submit').click()
  await expect(toast(page, /imported/i)).toBeVisible({ timeout: 30_000 })

  const newest = (await api.list({ sort: 'latest', per_page: 1 })).data[0]!
  expect(newest.trigger).toBe('upload')
  expect(newest.status).toBe('completed')
  expect(newest.database_name).toBe(database)
  await expect(row(page, newest.id)).toBeVisible()

  // A truncated file is refused with a reason, and nothing is kept.
  const total = (await api.list({ per_page: 1 })).meta.total
  await page.getByTestId('import-input').setInputFiles({
    name: 'cut.sql',
    mimeType: 'application/sql',
    buffer: dump.subarray(0, Math.floor(dump.length / 2)),
  })
  await page.getByTestId('import-database').fill(database)
  await page.getByTestId('import-submit').click()
  await expect(page.getByTestId('import-error')).toBeVisible({ timeout: 30_000 })
  expect((await api.list({ per_page: 1 })).meta.total).toBe(total)
})
