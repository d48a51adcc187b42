// Fixtures: the running dbkeep's address, its accounts, a signed-in page, and an API
// client (cookie session + CSRF header, like the dashboard) to seed and inspect data.
import { existsSync, readFileSync } from 'node:fs'

import { type APIRequestContext, type Page, expect, test as base, request as playwrightRequest } from '@playwright/test'

import type { Backup, BulkResult, RestoreOperation, Statistics } from '../src/api/types'

export interface Account {
  email: string
  password: string
}

function fromEnv<T>(name: string): T {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run the tests through playwright.config.ts (global setup).`)
  return JSON.parse(value) as T
}

export class Api {
  constructor(
    readonly context: APIRequestContext,
    private csrf: string,
  ) {}

  static async login(baseURL: string, account: Account): Promise<Api> {
    const context = await playwrightRequest.newContext({ baseURL })
    const response = await context.post('/api/auth/login', { data: account })
    expect(response.status(), await response.text()).toBe(200)
    const body = (await response.json()) as { data: { csrf_token: string } }
    return new Api(context, body.data.csrf_token)
  }

  private async call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, data?: unknown): Promise<{ status: number; body: { data: T; message?: string } }> {
    const response = await this.context.fetch(path, {
      method,
      data,
      headers: method === 'GET' ? {} : { 'X-CSRF-Token': this.csrf },
    })
    return { status: response.status(), body: await response.json() }
  }

  async list(query: Record<string, string | number> = {}): Promise<{ data: Backup[]; meta: { total: number; last_page: number } }> {
    const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))
    const { body } = await this.call<Backup[]>('GET', `/admin/api/database-backups?${params}`)
    return body as unknown as { data: Backup[]; meta: { total: number; last_page: number } }
  }

  async get(id: number): Promise<Backup> {
    return (await this.call<Backup>('GET', `/admin/api/database-backups/${id}`)).body.data
  }

  async statistics(): Promise<Statistics> {
    return (await this.call<Statistics>('GET', '/admin/api/database-backups/statistics')).body.data
  }

  async create(): Promise<Backup> {
    const { status, body } = await this.call<Backup>('POST', '/admin/api/database-backups')
    expect(status, JSON.stringify(body)).toBe(202)
    return body.data
  }

  async cancel(id: number): Promise<Backup> {
    return (await this.call<Backup>('POST', `/admin/api/database-backups/${id}/cancel`)).body.data
  }

  async trash(id: number): Promise<void> {
    const { status } = await this.call('POST', `/admin/api/database-backups/${id}/trash`)
    expect(status).toBe(200)
  }

  async bulkDelete(ids: number[]): Promise<BulkResult> {
    return (await this.call<BulkResult>('DELETE', '/admin/api/database-backups/bulk-delete', { backup_ids: ids })).body.data
  }

  async restores(id: number): Promise<RestoreOperation[]> {
    return (await this.call<RestoreOperation[]>('GET', `/admin/api/database-backups/${id}/restores`)).body.data
  }

  /** Waits until no backup is pending or running (one job per target at a time). */
  async idle(timeoutMs = 60_000): Promise<void> {
    await expect
      .poll(
        async () => {
          const [pending, running] = await Promise.all([
            this.list({ status: 'pending', per_page: 1 }),
            this.list({ status: 'in_progress', per_page: 1 }),
          ])
          return pending.meta.total + running.meta.total
        },
        { timeout: timeoutMs, intervals: [250, 500, 1000] },
      )
      .toBe(0)
  }

  /** Creates a backup and waits for it to finish; returns its final state. */
  async createCompleted(): Promise<Backup> {
    await this.idle()
    const backup = await this.create()
    let last = backup
    await expect
      .poll(
        async () => {
          last = await this.get(backup.id)
          return last.status
        },
        { timeout: 60_000, intervals: [250, 500, 1000] },
      )
      .toMatch(/^(completed|failed)$/)
    expect(last.status, last.error_message ?? '').toBe('completed')
    return last
  }

  /** A failed backup, made the honest way: queue one and cancel it before it starts. */
  async createFailed(): Promise<Backup> {
    await this.idle()
    const backup = await this.create()
    await this.cancel(backup.id)
    let last = backup
    await expect
      .poll(async () => (last = await this.get(backup.id)).status, { timeout: 60_000 })
      .toMatch(/^(completed|failed)$/)
    return last
  }

  /** At least `count` completed backups exist in the active list. */
  async ensureCompleted(count: number): Promise<void> {
    const { meta } = await this.list({ status: 'completed', per_page: 1 })
    for (let i = meta.total; i < count; i++) await this.createCompleted()
  }
}

interface Fixtures {
  serverLog: void
  admin: Account
  viewer: Account
  database: string
  api: Api
  adminPage: Page
}

export const test = base.extend<Fixtures>({
  // On failure, the server's last log lines go into the report: the backend's side of the story.
  serverLog: [
    async ({}, use, testInfo) => {
      await use()
      const file = process.env.DBKEEP_E2E_LOG
      if (testInfo.status !== testInfo.expectedStatus && file && existsSync(file)) {
        const tail = readFileSync(file, 'utf8').split('\n').slice(-150).join('\n')
        await testInfo.attach('serve.log (tail)', { body: tail, contentType: 'text/plain' })
      }
    },
    { auto: true },
  ],
  // The server's port is only known once global setup has started it.
  baseURL: async ({}, use) => {
    await use(process.env.DBKEEP_E2E_BASE_URL)
  },
  admin: async ({}, use) => use(fromEnv<Account>('DBKEEP_E2E_ADMIN')),
  viewer: async ({}, use) => use(fromEnv<Account>('DBKEEP_E2E_VIEWER')),
  database: async ({}, use) => use(process.env.DBKEEP_E2E_DATABASE ?? ''),
  api: async ({ baseURL, admin }, use) => {
    const api = await Api.login(baseURL!, admin)
    await use(api)
    await api.context.dispose()
  },
  adminPage: async ({ page, admin }, use) => {
    await signIn(page, admin)
    await use(page)
  },
})

export async function signIn(page: Page, account: Account): Promise<void> {
  await page.goto('/login')
  await page.getByLabel('Email').fill(account.email)
  await page.getByLabel('Password').fill(account.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/admin/database-backups**')
}

/** The table row of one backup. */
export function row(page: Page, id: number) {
  return page.getByTestId(`row-${id}`)
}

export { expect }
