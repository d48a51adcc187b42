// The page on a 375 px phone: the list near the top (statistics and chart folded away), no
// value cut off, the running job's filename readable, the trash date labelled as such.
import { holdTableLock } from './server'
import { expect, row, test } from './fixtures'

test.describe('375 px', () => {
  test.use({ viewport: { width: 375, height: 812 } })

  test('the list starts near the top; the statistics fold out without cutting a value', async ({ adminPage: page, api }) => {
    await api.ensureCompleted(2)
    await page.reload()
    const table = page.getByTestId('backups-table')
    await expect(table).toBeVisible()
    await expect(page.getByTestId('stat-total_backups')).toBeHidden()
    // Was ~800 px down, below 8 cards and the chart: now the list's card starts in the upper
    // half and its first backup is on the first screen.
    const list = page.getByRole('region', { name: 'Backup list' })
    expect((await list.boundingBox())!.y, 'the list card starts near the top').toBeLessThan(400)
    const first = page.locator('[data-testid^="row-"]').first()
    const firstBox = (await first.boundingBox())!
    expect(firstBox.y + 60, 'the first backup is on the first screen').toBeLessThan(812)
    await page.screenshot({ path: 'screenshots/mobile-375-folded.png', fullPage: true })

    const toggle = page.getByTestId('overview-toggle')
    await expect(toggle).toHaveAttribute('aria-expanded', 'false')
    await toggle.click()
    await expect(toggle).toHaveAttribute('aria-expanded', 'true')
    await expect(page.getByTestId('stat-latest_backup')).toBeVisible()
    await expect(page.getByTestId('history-chart')).toBeVisible()
    // Every value shows whole: nothing wider than its box, no ellipsis.
    const cut = await page.locator('[data-testid^="stat-"] .value').evaluateAll((values) =>
      values
        .filter((v) => v.scrollWidth > v.clientWidth + 1 || getComputedStyle(v).textOverflow === 'ellipsis')
        .map((v) => v.textContent),
    )
    expect(cut).toEqual([])
    await page.screenshot({ path: 'screenshots/mobile-375-open.png', fullPage: true })
    await page.getByTestId('overview').screenshot({ path: 'screenshots/mobile-375-overview.png' })
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow, 'no horizontal scrolling').toBeLessThanOrEqual(0)
  })

  test('the trash labels its date "Trashed" and says when each item goes', async ({ adminPage: page, api }) => {
    const backup = await api.createCompleted()
    await api.trash(backup.id)
    await page.goto('/admin/database-backups?view=trash')
    const trashed = row(page, backup.id).locator('td[data-label="Trashed"]')
    await expect(trashed).toBeVisible()
    const label = await trashed.evaluate((td) => getComputedStyle(td, '::before').content)
    expect(label).toBe('"Trashed"')
    await expect(row(page, backup.id).locator('td[data-label="Date"]')).toHaveCount(0)
    await expect(row(page, backup.id).getByTestId('purge-date')).not.toHaveText('—')
    await page.screenshot({ path: 'screenshots/mobile-375-trash.png' })
  })

  test('"Running now" gives the filename its own line instead of squeezing it', async ({ adminPage: page, api, database }) => {
    await api.idle()
    const lock = holdTableLock(database, 'orders')
    try {
      await page.getByTestId('create-backup').click()
      const running = page.getByTestId('running-jobs')
      await expect(running).toBeVisible()
      const newest = (await api.list({ sort: 'latest', per_page: 1 })).data[0]!
      await expect.poll(async () => (await api.get(newest.id)).status, { timeout: 30_000 }).toBe('in_progress')
      const name = running.locator('.name').first()
      await expect(name).toHaveText(newest.filename)
      const [nameBox, cardBox] = [(await name.boundingBox())!, (await running.boundingBox())!]
      expect(nameBox.width, 'the filename gets (nearly) the card\'s whole width').toBeGreaterThan(cardBox.width * 0.7)
      // At most three lines of the monospace name.
      const lines = await name.evaluate((el) => Math.round(el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight || '20')))
      expect(lines).toBeLessThanOrEqual(3)
      await page.screenshot({ path: 'screenshots/mobile-375-running.png' })
      await running.getByRole('button', { name: `Cancel backup ${newest.filename}` }).click()
      await page.getByTestId('confirm-button').click()
      await expect(row(page, newest.id).getByTestId('status-badge')).toHaveText(/Cancelled|Failed/, { timeout: 30_000 })
    } finally {
      lock.release()
    }
  })
})
