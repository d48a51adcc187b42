// The sources page against the real backend and MariaDB: add a source through the form, test its
// connection (a limited account, so missing privileges show), change its schedule and watch the
// next runs, delete it keeping its backups; and the navigation on a 375 px phone.
import { randomBytes } from 'node:crypto'

import { rootSql } from './server'
import { expect, test } from './fixtures'

function account(database: string): { user: string; password: string; url: string; drop: () => void } {
  const suffix = randomBytes(4).toString('hex')
  const user = `dbkeep_src_${suffix}`
  const password = `pw-${randomBytes(10).toString('hex')}`
  // SELECT only: a dump also needs SHOW VIEW, TRIGGER, LOCK TABLES, EVENT…, which the test reports.
  rootSql(`
    CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}';
    GRANT SELECT ON \`${database}\`.* TO '${user}'@'127.0.0.1';
  `)
  return {
    user,
    password,
    url: `mysql://${user}:${password}@127.0.0.1:3306/${database}`,
    drop: () => rootSql(`DROP USER IF EXISTS '${user}'@'127.0.0.1';`),
  }
}

test('add a source, test its connection, edit its schedule, delete it', async ({ adminPage: page, database }) => {
  const login = account(database)
  const name = `src-${randomBytes(3).toString('hex')}`
  try {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sources' }).click()
    await expect(page).toHaveURL(/\/admin\/sources$/)
    await expect(page.getByRole('heading', { name: 'Sources', level: 1 })).toBeVisible()
    await expect(page.getByTestId('source-default')).toBeVisible()

    // ---- add -----------------------------------------------------------------------------
    await page.getByTestId('add-source').click()
    const dialog = page.getByRole('dialog', { name: 'Add a source' })
    await expect(dialog).toBeVisible()
    await dialog.getByLabel('Name', { exact: true }).fill(name)
    await dialog.getByLabel('Connection URL', { exact: true }).fill('ftp://nowhere/db')
    await dialog.getByTestId('source-save').click()
    // The server's 422 shows at the URL field.
    await expect(dialog.getByTestId('error-url')).toContainText(/scheme|mysql/i)
    await dialog.getByLabel('Connection URL', { exact: true }).fill(login.url)
    await dialog.getByLabel('Time zone').selectOption('Asia/Tokyo')
    await dialog.getByLabel('Schedule (cron)', { exact: true }).fill('30 2 * * *')
    const runs = dialog.getByTestId('next-run')
    await expect(runs).toHaveCount(5)
    await expect(runs.first()).toContainText('02:30')
    await dialog.getByTestId('source-save').click()
    await expect(dialog).toBeHidden()

    const card = page.getByTestId(`source-${name}`)
    await expect(card).toBeVisible()
    await expect(card.getByTestId('source-url-masked')).toHaveText(`mysql://${login.user}:***@127.0.0.1:3306/${database}`)
    await expect(card).not.toContainText(login.password)
    await expect(card.getByTestId('source-databases-text')).toHaveText(database)
    await expect(card.getByTestId('source-schedule-text')).toHaveText('30 2 * * * (Asia/Tokyo)')
    await expect(card.getByTestId('source-next-run')).not.toHaveText('—')

    // ---- test the connection ----------------------------------------------------------------
    await card.getByTestId('test-source').click()
    const report = page.getByRole('dialog', { name: `Connection test: ${name}` })
    await expect(report.getByTestId('server-version')).toContainText(/MariaDB|\d+\.\d+/)
    await expect(report.getByTestId('databases-found')).toContainText(database)
    await expect(report.getByTestId('privilege-missing').first()).toBeVisible()
    await expect(report.getByTestId('missing-privileges')).toContainText('Missing:')
    await report.getByRole('button', { name: 'Close', exact: true }).first().click()
    await expect(report).toBeHidden()

    // ---- edit the schedule: the next runs follow as it is typed --------------------------------
    await card.getByTestId('edit-source').click()
    const edit = page.getByRole('dialog', { name: `Edit source ${name}` })
    await expect(edit.getByLabel('Connection URL', { exact: true })).toHaveValue('')
    await edit.getByLabel('Schedule (cron)', { exact: true }).fill('61 * * * *')
    await expect(edit.getByTestId('schedule-error')).toContainText('minute')
    await edit.getByLabel('Schedule (cron)', { exact: true }).fill('0 9 * * mon-fri')
    await expect(edit.getByTestId('next-run')).toHaveCount(5)
    await expect(edit.getByTestId('next-run').first()).toContainText('09:00')
    await edit.getByTestId('source-save').click()
    await expect(edit).toBeHidden()
    await expect(card.getByTestId('source-schedule-text')).toHaveText('0 9 * * mon-fri (Asia/Tokyo)')
    // The URL was left blank: the stored one (and its password) still works.
    await card.getByTestId('test-source').click()
    await expect(page.getByRole('dialog', { name: `Connection test: ${name}` }).getByTestId('databases-found')).toContainText(database)
    await page.keyboard.press('Escape')

    // ---- delete, keeping its backups -------------------------------------------------------------
    await card.getByTestId('delete-source').click()
    const confirm = page.getByRole('dialog', { name: `Delete source ${name}?` })
    await expect(confirm.getByRole('button', { name: 'Cancel' })).toBeFocused()
    await confirm.getByTestId('delete-keep-backups').click()
    await expect(page.getByTestId('toast').filter({ hasText: 'Source deleted; its backups were kept.' })).toBeVisible()
    await expect(card).toHaveCount(0)
    await page.reload()
    await expect(page.getByTestId('source-default')).toBeVisible()
    await expect(page.getByTestId(`source-${name}`)).toHaveCount(0)
  } finally {
    login.drop()
  }
})

test.describe('navigation at 375 px', () => {
  test.use({ viewport: { width: 375, height: 812 } })

  test('both pages are a tap or a Tab away, the current one marked, nothing wider than the screen', async ({ adminPage: page }) => {
    const nav = page.getByRole('navigation', { name: 'Main' })
    const backups = nav.getByRole('link', { name: 'Backups' })
    const sources = nav.getByRole('link', { name: 'Sources' })
    await expect(backups).toHaveAttribute('aria-current', 'page')
    for (const link of [backups, sources]) {
      const box = (await link.boundingBox())!
      expect(box.height, 'a comfortable tap target').toBeGreaterThanOrEqual(40)
      expect(box.x + box.width).toBeLessThanOrEqual(375)
    }

    // Keyboard, from a fresh load: the skip link, then the navigation, with a visible focus ring.
    await page.reload()
    await expect(backups).toBeVisible()
    await page.keyboard.press('Tab')
    await expect(page.getByRole('link', { name: 'Skip to content' })).toBeFocused()
    let reached = false
    for (let i = 0; i < 6 && !reached; i++) {
      await page.keyboard.press('Tab')
      reached = await sources.evaluate((el) => el === document.activeElement)
    }
    expect(reached, 'Sources is reachable with Tab').toBe(true)
    const outline = await sources.evaluate((el) => getComputedStyle(el).outlineStyle)
    expect(outline).not.toBe('none')
    await page.keyboard.press('Enter')
    await expect(page).toHaveURL(/\/admin\/sources$/)
    await expect(sources).toHaveAttribute('aria-current', 'page')
    await expect(page.getByTestId('source-default')).toBeVisible()
    let overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow, 'no horizontal scrolling on the sources page').toBeLessThanOrEqual(0)
    await page.screenshot({ path: 'screenshots/mobile-375-sources.png', fullPage: true })

    await backups.click()
    await expect(page).toHaveURL(/\/admin\/database-backups/)
    await expect(page.getByRole('heading', { name: 'Database backups' })).toBeVisible()
    overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    expect(overflow, 'no horizontal scrolling on the backups page').toBeLessThanOrEqual(0)

    // A direct visit is served by the backend's SPA router.
    await page.goto('/admin/sources')
    await expect(page.getByRole('heading', { name: 'Sources', level: 1 })).toBeVisible()
  })
})
