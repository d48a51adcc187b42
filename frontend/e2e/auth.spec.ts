import { expect, signIn, test } from './fixtures'

test('an anonymous visitor is sent to the login page, with no error in the console', async ({ page }) => {
  const errors: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  const failed: string[] = []
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`)
  })
  await page.goto('/admin/database-backups')
  await expect(page).toHaveURL(/\/login/)
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible()
  await page.reload()
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible()
  expect(failed).toEqual([])
  expect(errors).toEqual([])
})

test("a wrong password shows the server's message", async ({ page, admin }) => {
  await page.goto('/login')
  await page.getByLabel('Email').fill(admin.email)
  await page.getByLabel('Password').fill('not-the-password')
  await page.getByRole('button', { name: 'Sign in' }).click()
  const error = page.getByTestId('login-error')
  await expect(error).toBeVisible()
  expect((await error.textContent())?.trim()).not.toBe('')
  await expect(page).toHaveURL(/\/login/)
})

test('an admin lands on the backups page and can sign out', async ({ page, admin }) => {
  await signIn(page, admin)
  await expect(page).toHaveURL(/\/admin\/database-backups$/)
  await expect(page.getByRole('heading', { name: 'Database backups' })).toBeVisible()
  await expect(page.getByTestId('stat-total_backups')).toBeVisible()
  // The target's reachability and the schedule show from the start (the e2e server has it off).
  await expect(page.getByTestId('target-status')).toHaveText('Target database reachable')
  await expect(page.getByTestId('next-backup')).toHaveText('Scheduled backups are off')
  await page.getByTestId('logout').click()
  await expect(page).toHaveURL(/\/login/)
  await page.goto('/admin/database-backups')
  await expect(page).toHaveURL(/\/login/)
})

test('a viewer sees a clear "not allowed" page, not a broken table', async ({ page, viewer }) => {
  await signIn(page, viewer)
  await expect(page.getByTestId('not-allowed')).toBeVisible()
  await expect(page.getByRole('heading', { name: 'You are not allowed to manage backups' })).toBeVisible()
  await expect(page.getByTestId('backups-table')).toHaveCount(0)
  await expect(page.getByTestId('create-backup')).toHaveCount(0)
})
