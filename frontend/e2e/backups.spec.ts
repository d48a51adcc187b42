import { readFileSync } from 'node:fs'

import { holdTableLock, rootSql } from './server'
import { expect, row, test } from './fixtures'

const toast = (page: import('@playwright/test').Page, text: string | RegExp) =>
  page.getByTestId('toast').filter({ hasText: text })

test('create a backup and watch it complete without reloading', async ({ adminPage: page, api }) => {
  await api.idle()
  let navigations = 0
  page.on('framenavigated', () => navigations++)
  await page.getByTestId('create-backup').click()
  await expect(toast(page, 'Backup queued.')).toBeVisible()
  const newest = (await api.list({ sort: 'latest', per_page: 1 })).data[0]!
  await expect(row(page, newest.id)).toBeVisible()
  await expect(row(page, newest.id).getByTestId('status-badge')).toHaveText('Completed', { timeout: 30_000 })
  await expect(toast(page, `Backup ${newest.filename} completed.`)).toBeVisible()
  expect(navigations).toBe(0)
})

test('download gives a valid SQL dump', async ({ adminPage: page, api }) => {
  const backup = await api.createCompleted()
  await page.reload()
  const downloadPromise = page.waitForEvent('download')
  await row(page, backup.id).getByRole('link', { name: `Download ${backup.filename}` }).click()
  const download = await downloadPromise
  const text = readFileSync((await download.path())!, 'utf8')
  expect(text).toContain('CREATE TABLE `customers`')
  expect(text.trimEnd().split('\n').at(-1)).toMatch(/^-- Dump completed/)
})

test('restore asks for the database name, replaces the data, and shows in the history', async ({ adminPage: page, api, database }) => {
  test.setTimeout(120_000)
  const backup = await api.createCompleted()
  // A change made after the backup: the restore must take it away.
  rootSql(`INSERT INTO \`${database}\`.customers (name, email) VALUES ('Added Later', 'later@example.com');`)
  await page.reload()
  await row(page, backup.id).getByRole('button', { name: `Restore database from ${backup.filename}` }).click()
  const dialog = page.getByTestId('restore-dialog')
  await expect(dialog).toContainText('replaces all current data')
  await expect(dialog.getByTestId('safety-backup')).toBeChecked()
  const submit = dialog.getByTestId('restore-submit')
  await expect(submit).toBeDisabled()
  await dialog.getByTestId('restore-confirm-input').fill(`${database}x`)
  await expect(submit).toBeDisabled()
  await dialog.getByTestId('restore-confirm-input').fill(database)
  await expect(submit).toBeEnabled()
  await submit.click()
  await expect(toast(page, 'Database restore queued; it runs in the background.')).toBeVisible()
  // Either outcome's toast, so a failed restore shows the server's reason here.
  const outcome = toast(page, /Restore (into \S+ completed|failed)/)
  await expect(outcome).toBeVisible({ timeout: 60_000 })
  await expect(outcome).toContainText(`Restore into ${database} completed.`)
  expect(rootSql(`SELECT COUNT(*) FROM \`${database}\`.customers WHERE name = 'Added Later';`).trim()).toBe('0')

  // The safety backup taken first is listed, and the restore is in the backup's history.
  await expect(page.getByTestId('backups-table')).toContainText('Safety backup')
  await row(page, backup.id).getByRole('button', { name: `Details of ${backup.filename}` }).click()
  const history = page.getByTestId('restore-history')
  await expect(history).toContainText('Completed')
  await expect(history).toContainText('(you)')
  await expect(history).toContainText('Safety backup #')
})

test('trash, restore from trash, delete permanently: each asks first', async ({ adminPage: page, api }) => {
  const backup = await api.createCompleted()
  await page.reload()
  await row(page, backup.id).getByRole('button', { name: `Move ${backup.filename} to trash` }).click()
  await expect(page.getByRole('dialog', { name: 'Move to trash?' })).toBeVisible()
  await page.getByTestId('confirm-button').click()
  await expect(toast(page, 'Backup moved to trash.')).toBeVisible()
  await expect(row(page, backup.id)).toHaveCount(0)

  await page.getByTestId('tab-trash').click()
  await expect(page).toHaveURL(/view=trash/)
  await row(page, backup.id).getByRole('button', { name: `Restore ${backup.filename} from trash` }).click()
  await expect(toast(page, 'Backup restored from trash.')).toBeVisible()
  await expect(row(page, backup.id)).toHaveCount(0)
  expect((await api.get(backup.id)).status).toBe('completed')

  await api.trash(backup.id)
  await page.reload()
  await row(page, backup.id).getByRole('button', { name: `Delete ${backup.filename} permanently` }).click()
  const confirm = page.getByRole('dialog', { name: 'Delete permanently?' })
  await expect(confirm).toContainText('cannot be undone')
  await confirm.getByRole('button', { name: 'Cancel' }).click()
  await expect(row(page, backup.id)).toBeVisible()
  await row(page, backup.id).getByRole('button', { name: `Delete ${backup.filename} permanently` }).click()
  // The safe choice has the focus: Enter closes the dialog, it does not delete.
  await expect(confirm.getByTestId('confirm-cancel')).toBeFocused()
  await page.keyboard.press('Enter')
  await expect(confirm).toBeHidden()
  await expect(row(page, backup.id)).toBeVisible()
  expect((await api.get(backup.id)).status).toBe('in_trash')
  await row(page, backup.id).getByRole('button', { name: `Delete ${backup.filename} permanently` }).click()
  await page.getByTestId('confirm-button').click()
  await expect(toast(page, 'Backup deleted permanently.')).toBeVisible()
  await expect(row(page, backup.id)).toHaveCount(0)
})

test('bulk trash, bulk restore from trash and bulk delete: a toast when all succeeded', async ({ adminPage: page, api }) => {
  const a = await api.createCompleted()
  const b = await api.createCompleted()
  await page.reload()
  await row(page, a.id).getByRole('checkbox').check()
  await row(page, b.id).getByRole('checkbox').check()
  await expect(page.getByTestId('bulk-bar')).toContainText('2 selected')
  await expect(page).toHaveURL(new RegExp(`selected=(${a.id}%2C${b.id}|${a.id},${b.id})`))
  await page.getByTestId('bulk-trash').click()
  await expect(page.getByRole('dialog', { name: 'Move 2 backups to trash?' })).toBeVisible()
  await page.getByTestId('confirm-button').click()
  // Everything worked: a toast says so, and no results dialog needs closing.
  await expect(toast(page, '2 of 2 backups moved to trash.')).toBeVisible()
  await expect(page.getByTestId('bulk-result')).toHaveCount(0)
  await expect(page.getByTestId('bulk-bar')).toHaveCount(0)

  await page.getByTestId('tab-trash').click()
  // Each trashed item says when it is deleted for good.
  await expect(row(page, a.id).getByTestId('purge-date')).not.toHaveText('—')
  await row(page, a.id).getByRole('checkbox').check()
  await row(page, b.id).getByRole('checkbox').check()
  await page.getByTestId('bulk-untrash').click()
  await page.getByTestId('confirm-button').click()
  await expect(toast(page, '2 of 2 backups restored from trash.')).toBeVisible()
  await expect(row(page, a.id)).toHaveCount(0)
  expect((await api.get(a.id)).status).toBe('completed')
  expect((await api.get(b.id)).status).toBe('completed')

  await api.trash(a.id)
  await api.trash(b.id)
  await page.reload()
  await row(page, a.id).getByRole('checkbox').check()
  await row(page, b.id).getByRole('checkbox').check()
  await page.getByTestId('bulk-delete').click()
  await page.getByTestId('confirm-button').click()
  await expect(toast(page, '2 of 2 backups deleted permanently.')).toBeVisible()
  await expect(page.getByTestId('bulk-result')).toHaveCount(0)
  await expect(row(page, a.id)).toHaveCount(0)
  await expect(row(page, b.id)).toHaveCount(0)
})

test.describe('finding backups', () => {
  test.beforeAll(async ({ baseURL, admin }) => {
    const { Api } = await import('./fixtures')
    const api = await Api.login(baseURL!, admin)
    await api.ensureCompleted(12)
    if (!(await api.list({ status: 'failed', per_page: 1 })).meta.total) await api.createFailed()
    await api.context.dispose()
  })

  const rowIds = async (page: import('@playwright/test').Page) =>
    (await page.locator('[data-testid^="row-"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')))).map(
      (id) => Number(id?.slice(4)),
    )

  test('search (debounced) finds a backup by its identifier', async ({ adminPage: page, api }) => {
    const target = (await api.list({ sort: 'oldest', status: 'completed', per_page: 1 })).data[0]!
    await page.getByTestId('search').fill(target.unique_identifier.slice(0, 16))
    await expect(page).toHaveURL(/search=/)
    await expect.poll(() => rowIds(page)).toEqual([target.id])
    await page.getByTestId('search').fill('no-such-backup-anywhere')
    await expect(page.getByTestId('empty-state')).toContainText('No backups match these filters.')
  })

  for (const sort of ['latest', 'oldest', 'name_asc', 'name_desc', 'size_asc', 'size_desc'] as const) {
    test(`sort ${sort} matches the API's order`, async ({ adminPage: page, api }) => {
      await page.getByTestId('sort').selectOption(sort)
      const expected = (await api.list({ sort })).data.map((b) => b.id)
      await expect.poll(() => rowIds(page)).toEqual(expected)
      if (sort !== 'latest') await expect(page).toHaveURL(new RegExp(`sort=${sort}`))
    })
  }

  test('the status filter shows only that status', async ({ adminPage: page, api }) => {
    await page.getByTestId('status-filter').selectOption('failed')
    const expected = (await api.list({ status: 'failed' })).data.map((b) => b.id)
    expect(expected.length).toBeGreaterThan(0)
    await expect.poll(() => rowIds(page)).toEqual(expected)
    // The API's "failed" includes cancelled backups, which the page tells apart.
    for (const badge of await page.getByTestId('status-badge').all()) await expect(badge).toHaveText(/^\s*(Failed|Cancelled)\s*$/)
    await page.getByTestId('status-filter').selectOption('completed')
    await expect.poll(() => rowIds(page)).toEqual((await api.list({ status: 'completed' })).data.map((b) => b.id))
  })

  test('pagination: 10 per page, the page survives a reload', async ({ adminPage: page, api }) => {
    const first = await api.list({ page: 1 })
    expect(first.meta.total).toBeGreaterThan(10)
    await expect.poll(() => rowIds(page)).toEqual(first.data.map((b) => b.id))
    expect(first.data).toHaveLength(10)
    await page.getByRole('button', { name: 'Page 2' }).click()
    await expect(page).toHaveURL(/page=2/)
    const second = (await api.list({ page: 2 })).data.map((b) => b.id)
    await expect.poll(() => rowIds(page)).toEqual(second)
    await page.reload()
    await expect.poll(() => rowIds(page)).toEqual(second)
    await expect(page.getByRole('button', { name: 'Page 2' })).toHaveAttribute('aria-current', 'page')
  })
})

test('a running backup shows its progress and can be cancelled', async ({ adminPage: page, api, database }) => {
  await api.idle()
  const lock = holdTableLock(database, 'orders')
  try {
    await page.getByTestId('create-backup').click()
    await expect(toast(page, 'Backup queued.')).toBeVisible()
    const running = page.getByTestId('running-jobs')
    await expect(running).toBeVisible()
    const newest = (await api.list({ sort: 'latest', per_page: 1 })).data[0]!
    // The dump waits on the lock: the backup stays in progress until cancelled.
    await expect.poll(async () => (await api.get(newest.id)).status, { timeout: 30_000 }).toBe('in_progress')
    await expect(row(page, newest.id).getByTestId('status-badge')).toHaveText('In progress')
    await expect(running.getByRole('progressbar')).toBeVisible()
    await expect(running).toContainText(/so far|of ~|estimating|left|done/)
    await running.getByRole('button', { name: `Cancel backup ${newest.filename}` }).click()
    const dialog = page.getByRole('dialog', { name: 'Stop this backup?' })
    await expect(dialog).toBeVisible()
    await expect(dialog.getByTestId('confirm-cancel')).toHaveText('Keep running')
    await expect(dialog.getByTestId('confirm-button')).toHaveText('Stop backup')
    await page.getByTestId('confirm-button').click()
    await expect(toast(page, 'Cancellation requested; the backup stops shortly.')).toBeVisible()
    // A cancel is not a failure: its own neutral badge, and the FAILED card does not count it.
    const badge = row(page, newest.id).getByTestId('status-badge')
    await expect(badge).toHaveText('Cancelled', { timeout: 30_000 })
    await expect(badge).toHaveClass(/badge-neutral/)
    const stats = await api.statistics()
    expect(stats.cancelled_backups).toBeGreaterThan(0)
    await page.setViewportSize({ width: 1360, height: 1000 })
    await expect(page.getByTestId('stat-failed_backups')).toContainText(String(stats.failed_backups))
    await expect(page.getByTestId('stat-cancelled_backups')).toContainText(String(stats.cancelled_backups))
    await expect(running).toBeHidden()
    // The reason is shown as the server wrote it, in a notice and in the row.
    const reason = (await api.get(newest.id)).error_message!
    expect(reason).toBeTruthy()
    await expect(toast(page, reason)).toBeVisible()
    await expect(toast(page, reason)).toHaveClass(/toast-info/)
    await expect(row(page, newest.id)).toContainText(reason)
  } finally {
    lock.release()
  }
})

test('a running restore can be cancelled, and the database is left as it was', async ({ adminPage: page, api, database }) => {
  test.setTimeout(120_000)
  const backup = await api.createCompleted()
  rootSql(`INSERT INTO \`${database}\`.customers (name, email) VALUES ('Kept', 'kept@example.com');`)
  const lock = holdTableLock(database, 'orders') // the safety backup waits on it: the restore runs
  try {
    await page.reload()
    await row(page, backup.id).getByRole('button', { name: `Restore database from ${backup.filename}` }).click()
    const dialog = page.getByTestId('restore-dialog')
    await dialog.getByTestId('restore-confirm-input').fill(database)
    await dialog.getByTestId('restore-submit').click()
    await expect(toast(page, 'Database restore queued; it runs in the background.')).toBeVisible()
    await expect.poll(async () => (await api.restores(backup.id))[0]?.status, { timeout: 30_000 }).toBe('in_progress')

    const running = page.getByTestId('running-jobs')
    await running.getByRole('button', { name: `Cancel restore from ${backup.filename}` }).click()
    const stop = page.getByRole('dialog', { name: 'Stop this restore?' })
    await expect(stop).toContainText('safety backup')
    await expect(stop.getByTestId('confirm-cancel')).toHaveText('Keep running')
    await expect(stop.getByTestId('confirm-button')).toHaveText('Stop restore')
    await page.getByTestId('confirm-button').click()
    await expect(toast(page, /^Cancellation requested/)).toBeVisible()
    // A cancel is the person's choice: said in a neutral notice, not as a failed restore.
    const outcome = toast(page, /before the database was changed\./)
    await expect(outcome).toBeVisible({ timeout: 30_000 })
    await expect(outcome).toHaveClass(/toast-info/)
    await expect(running).toBeHidden()
  } finally {
    lock.release()
  }
  expect(rootSql(`SELECT COUNT(*) FROM \`${database}\`.customers WHERE name = 'Kept';`).trim()).toBe('1')
  expect((await api.restores(backup.id))[0]?.status).toBe('failed')
})
