// Pictures of the main page for a human to look at (desktop and a 375 px phone), in both
// colour schemes. Saved under screenshots/ (not committed).
import { expect, test } from './fixtures'

test.describe('screenshots', () => {
  test.beforeAll(async ({ baseURL, admin }) => {
    const { Api } = await import('./fixtures')
    const api = await Api.login(baseURL!, admin)
    await api.ensureCompleted(4)
    const { meta } = await api.list({ status: 'failed', per_page: 1 })
    if (!meta.total) await api.createFailed()
    await api.context.dispose()
  })

  test('restore dialog and details drawer', async ({ adminPage: page, api }) => {
    const [latest] = (await api.list({ status: 'completed', per_page: 1 })).data
    await page.getByRole('button', { name: `Restore database from ${latest!.filename}` }).click()
    await page.getByTestId('restore-confirm-input').fill('sho')
    await page.screenshot({ path: 'screenshots/restore-dialog.png' })
    await page.keyboard.press('Escape')
    await page.getByRole('button', { name: `Details of ${latest!.filename}` }).click()
    await expect(page.getByTestId('backup-details')).toBeVisible()
    await page.screenshot({ path: 'screenshots/details-drawer.png' })
    await page.setViewportSize({ width: 375, height: 812 })
    await page.screenshot({ path: 'screenshots/details-drawer-375.png' })
  })

  for (const scheme of ['light', 'dark'] as const) {
    test(`main page, desktop and 375 px, ${scheme}`, async ({ adminPage: page }) => {
      await page.emulateMedia({ colorScheme: scheme })
      await page.setViewportSize({ width: 1360, height: 1000 })
      await expect(page.getByTestId('backups-table')).toBeVisible()
      await expect(page.getByTestId('history-chart').locator('svg')).toBeVisible()
      await page.screenshot({ path: `screenshots/backups-desktop-${scheme}.png`, fullPage: true })
      await page.setViewportSize({ width: 375, height: 812 })
      await page.screenshot({ path: `screenshots/backups-375-${scheme}.png`, fullPage: true })
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      expect(overflow, 'no horizontal scrolling at 375 px').toBeLessThanOrEqual(0)
    })
  }
})
