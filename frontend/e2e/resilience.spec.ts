import AxeBuilder from '@axe-core/playwright'

import { expect, test } from './fixtures'

test('a lost connection shows a banner and the page recovers by itself', async ({ adminPage: page }) => {
  await expect(page.getByTestId('backups-table').or(page.getByTestId('empty-state'))).toBeVisible()
  await page.route('**/admin/api/**', (route) => route.abort('internetdisconnected'))
  await page.getByRole('button', { name: 'Refresh now' }).click()
  await expect(page.getByTestId('network-banner')).toBeVisible()
  await page.unroute('**/admin/api/**')
  // No click: the page retries on its own.
  await expect(page.getByTestId('network-banner')).toBeHidden({ timeout: 15_000 })
})

test('the main page has no serious or critical accessibility violations', async ({ adminPage: page, api }) => {
  await api.ensureCompleted(1)
  await page.reload()
  await expect(page.getByTestId('backups-table')).toBeVisible()
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme })
    const results = await new AxeBuilder({ page }).analyze()
    const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    expect(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), scheme).toEqual([])
  }
})

test('the login page and the restore dialog have no serious or critical violations', async ({ page, adminPage, api }) => {
  const backup = await api.createCompleted()
  await adminPage.reload()
  await adminPage.getByRole('button', { name: `Restore database from ${backup.filename}` }).click()
  await expect(adminPage.getByTestId('restore-dialog')).toBeVisible()
  let results = await new AxeBuilder({ page: adminPage }).analyze()
  expect(results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([])

  await page.context().clearCookies()
  await page.goto('/login')
  results = await new AxeBuilder({ page }).analyze()
  expect(results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)).toEqual([])
})

test('keyboard only: tabs, dialogs and Escape', async ({ adminPage: page, api }) => {
  const backup = await api.createCompleted()
  await page.reload()
  await page.getByTestId('tab-active').focus()
  await page.keyboard.press('ArrowRight')
  await expect(page.getByTestId('tab-trash')).toBeFocused()
  await expect(page).toHaveURL(/view=trash/)
  await page.keyboard.press('ArrowLeft')
  await expect(page.getByTestId('tab-active')).toHaveAttribute('aria-selected', 'true')

  const trigger = page.getByRole('button', { name: `Move ${backup.filename} to trash` })
  await trigger.focus()
  await page.keyboard.press('Enter')
  await expect(page.getByRole('dialog', { name: 'Move to trash?' })).toBeVisible()
  await expect(page.getByTestId('confirm-button')).toBeFocused()
  await page.keyboard.press('Escape')
  await expect(page.getByRole('dialog', { name: 'Move to trash?' })).toBeHidden()
  await expect(trigger).toBeFocused()
})
