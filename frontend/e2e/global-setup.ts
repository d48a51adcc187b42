import type { FullConfig } from '@playwright/test'

import { startServer } from './server'

// The server's address and accounts reach the test workers through the environment
// (workers are started after global setup and inherit it).
export default async function globalSetup(_config: FullConfig): Promise<() => Promise<void>> {
  const server = await startServer()
  process.env.DBKEEP_E2E_BASE_URL = server.baseURL
  process.env.DBKEEP_E2E_ADMIN = JSON.stringify(server.admin)
  process.env.DBKEEP_E2E_VIEWER = JSON.stringify(server.viewer)
  process.env.DBKEEP_E2E_DATABASE = server.database
  process.env.DBKEEP_E2E_LOG = server.logFile
  process.env.DBKEEP_E2E_SETTINGS = JSON.stringify(server.env)
  return server.stop
}
