import { expect, test } from './fixtures'

test('the API docs page renders from the server alone, with no CDN', async ({ page, baseURL }) => {
  // Self-hosted installs often can't reach the internet: any request elsewhere fails here.
  const elsewhere: string[] = []
  await page.route('**/*', async (route) => {
    const url = route.request().url()
    if (url.startsWith(baseURL!) || url.startsWith('data:')) return route.continue()
    elsewhere.push(url)
    return route.abort()
  })
  await page.goto('/docs')
  await expect(page.locator('.swagger-ui .info .title')).toContainText('dbkeep')
  await expect(page.getByText('/admin/api/database-backups', { exact: true }).first()).toBeVisible()
  expect(elsewhere).toEqual([])
})
