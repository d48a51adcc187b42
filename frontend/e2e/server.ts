// Starts a real dbkeep for the end-to-end tests: a scratch MariaDB database with a few
// tables as the backup target, a temporary SQLite metadata store and backup directory,
// a unique queue name, then `dbkeep migrate`, a viewer account and `dbkeep serve`.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '..', '..')
const DBKEEP = join(ROOT, '.venv', 'bin', 'dbkeep')
const SOCKET = process.env.DBKEEP_TEST_MARIADB_SOCKET ?? '/run/mysqld/mysqld.sock'

export interface E2EServer {
  baseURL: string
  logFile: string
  admin: { email: string; password: string }
  viewer: { email: string; password: string }
  database: string
  /** The DBKEEP_* settings the server runs with, for `dbkeep` commands run by a test. */
  env: Record<string, string>
  stop: () => Promise<void>
}

/** Runs a `dbkeep` command with the server's settings; returns its exit status and output. */
export function dbkeep(args: string[], env: Record<string, string>): { status: number | null; output: string } {
  const result = spawnSync(DBKEEP, args, { env: { ...process.env, ...env }, encoding: 'utf8', cwd: ROOT, timeout: 120_000 })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

/** Runs SQL as MariaDB's root over the socket (root is socket-only here). */
export function rootSql(sql: string): string {
  const result = spawnSync('mariadb', ['--protocol=socket', `--socket=${SOCKET}`, '-uroot', '-N', '-B'], {
    input: sql,
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (result.status !== 0) throw new Error(`mariadb failed: ${result.stderr.trim()}`)
  return result.stdout
}

/**
 * Holds a write lock on one table of `database` from a root session until released: a
 * backup started meanwhile waits inside its dump, so it can be watched and cancelled.
 */
export function holdTableLock(database: string, table: string): { release: () => void } {
  const child = spawn('mariadb', ['--protocol=socket', `--socket=${SOCKET}`, '-uroot', database], {
    stdio: ['pipe', 'ignore', 'ignore'],
  })
  child.stdin.write(`LOCK TABLES \`${table}\` WRITE;\nSELECT SLEEP(120);\n`)
  return {
    release: () => {
      child.kill('SIGKILL')
    },
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })
}

function run(args: string[], env: NodeJS.ProcessEnv, input?: string): void {
  const result = spawnSync(DBKEEP, args, { env, input, encoding: 'utf8', cwd: ROOT, timeout: 120_000 })
  if (result.status !== 0) {
    throw new Error(`dbkeep ${args[0]} failed (${result.status}): ${result.stderr.trim().split('\n').slice(-5).join('\n')}`)
  }
}

async function waitForHttp(url: string, server: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`dbkeep serve exited with ${server.exitCode}`)
    try {
      const response = await fetch(url)
      if (response.status < 500) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`dbkeep serve did not answer at ${url} within ${timeoutMs} ms`)
}

/** Signals the server and the children it started (its own process group). */
function killGroup(server: ChildProcess, signal: NodeJS.Signals): void {
  if (!server.pid) return
  try {
    process.kill(-server.pid, signal)
  } catch {
    // already gone
  }
}

export async function startServer(): Promise<E2EServer> {
  const dist = resolve(import.meta.dirname, '..', 'dist')
  if (!existsSync(join(dist, 'index.html'))) {
    throw new Error('frontend/dist is not built: run `npm run build` before `npm run test:e2e`.')
  }
  const suffix = randomBytes(4).toString('hex')
  const database = `dbkeep_e2e_${suffix}`
  const dbUser = `dbkeep_e2e_${suffix}`
  const dbPassword = `pw-${randomBytes(12).toString('hex')}`
  const dir = mkdtempSync(join(tmpdir(), 'dbkeep-e2e-'))

  rootSql(`
    CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4;
    CREATE USER '${dbUser}'@'localhost' IDENTIFIED BY '${dbPassword}';
    CREATE USER '${dbUser}'@'127.0.0.1' IDENTIFIED BY '${dbPassword}';
    GRANT ALL PRIVILEGES ON *.* TO '${dbUser}'@'localhost';
    GRANT ALL PRIVILEGES ON *.* TO '${dbUser}'@'127.0.0.1';
    USE \`${database}\`;
    CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, email VARCHAR(200)) ENGINE=InnoDB;
    CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, total DECIMAL(10,2), created_at DATETIME DEFAULT CURRENT_TIMESTAMP, FOREIGN KEY (customer_id) REFERENCES customers(id)) ENGINE=InnoDB;
    INSERT INTO customers (name, email) VALUES ('Ada Lovelace', 'ada@example.com'), ('Alan Turing', 'alan@example.com'), ('Grace Hopper', 'grace@example.com');
    INSERT INTO orders (customer_id, total) VALUES (1, 10.50), (2, 99.99), (3, 5.00), (1, 42.00);
  `)

  const port = await freePort()
  const admin = { email: 'admin@e2e.example.com', password: `admin-${randomBytes(9).toString('hex')}` }
  const viewer = { email: 'viewer@e2e.example.com', password: `viewer-${randomBytes(9).toString('hex')}` }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DBKEEP_ENV: 'test',
    DBKEEP_DATABASE_URL: `sqlite+aiosqlite:///${join(dir, 'dbkeep.sqlite3')}`,
    DBKEEP_TARGET_URL: `mysql://${dbUser}:${dbPassword}@127.0.0.1:3306/${database}`,
    DBKEEP_BACKUP_DIR: join(dir, 'backups'),
    DBKEEP_VAR_DIR: join(dir, 'var'),
    DBKEEP_SECRET_KEY: randomBytes(32).toString('hex'),
    DBKEEP_ADMIN_EMAIL: admin.email,
    DBKEEP_ADMIN_PASSWORD: admin.password,
    DBKEEP_QUEUE_NAME: `dbkeep:e2e:${suffix}`,
    DBKEEP_SCHEDULE_ENABLED: 'false',
    DBKEEP_FRONTEND_DIST: dist,
    DBKEEP_HOST: '127.0.0.1',
    DBKEEP_PORT: String(port),
    DBKEEP_LOG_FORMAT: 'json',
  }

  run(['migrate'], env)
  // The first-admin variables only act on an empty user table, and the viewer is made
  // before the server starts: create both accounts explicitly.
  run(['user:create', admin.email, '--role', 'admin', '--password-stdin'], env, `${admin.password}\n`)
  run(['user:create', viewer.email, '--role', 'viewer', '--password-stdin'], env, `${viewer.password}\n`)

  const log = openSync(join(dir, 'serve.log'), 'a')
  const server = spawn(DBKEEP, ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    env,
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', log, log],
  })
  // `dbkeep serve` runs the worker itself; DBKEEP_E2E_SEPARATE_WORKER=1 adds a separate
  // `dbkeep worker` process instead (the scale-out layout) for the same queue.
  const workers: ChildProcess[] = []
  if (process.env.DBKEEP_E2E_SEPARATE_WORKER === '1') {
    workers.push(spawn(DBKEEP, ['worker'], { env, cwd: ROOT, detached: true, stdio: ['ignore', log, log] }))
  }
  const baseURL = `http://127.0.0.1:${port}`
  try {
    await waitForHttp(`${baseURL}/api/auth/me`, server, 60_000)
  } catch (error) {
    killGroup(server, 'SIGKILL')
    workers.forEach((worker) => killGroup(worker, 'SIGKILL'))
    throw new Error(`${(error as Error).message}; log: ${join(dir, 'serve.log')}`)
  }

  const stop = async (): Promise<void> => {
    for (const child of [server, ...workers]) {
      if (child.exitCode !== null) continue
      killGroup(child, 'SIGTERM')
      const deadline = Date.now() + 10_000
      while (child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      killGroup(child, 'SIGKILL')
    }
    try {
      rootSql(`DROP DATABASE IF EXISTS \`${database}\`; DROP USER IF EXISTS '${dbUser}'@'localhost'; DROP USER IF EXISTS '${dbUser}'@'127.0.0.1';`)
    } finally {
      if (!process.env.DBKEEP_E2E_KEEP) rmSync(dir, { recursive: true, force: true })
    }
  }
  const settings = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[0].startsWith('DBKEEP_') && entry[1] !== undefined),
  )
  return { baseURL, logFile: join(dir, 'serve.log'), admin, viewer, database, env: settings, stop }
}
