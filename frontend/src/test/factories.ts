// Test data shaped exactly like the API's (the generated types check every field).
import type { Backup, ConnectionTest, Destination, RestoreOperation, Source, Statistics, User } from '@/api/types'

let nextId = 1000

export function backup(overrides: Partial<Backup> = {}): Backup {
  const id = overrides.id ?? nextId++
  return {
    id,
    filename: `shop_2026-01-31_000000_${id}.sql.zst`,
    unique_identifier: `uid${id}`.padEnd(32, '0'),
    file_size: 1024 * 1024,
    copies: [],
    degraded: false,
    status: 'completed',
    error_message: null,
    backup_date: '2026-01-31T00:00:00Z',
    trashed_at: null,
    completed_at: '2026-01-31T00:00:05Z',
    created_by: 1,
    created_at: '2026-01-31T00:00:00Z',
    updated_at: '2026-01-31T00:00:05Z',
    compression: 'zstd',
    checksum_sha256: 'a'.repeat(64),
    duration_ms: 5000,
    trigger: 'manual',
    status_before_trash: null,
    target_database: 'shop',
    started_at: '2026-01-31T00:00:00Z',
    bytes_processed: 0,
    estimated_bytes: null,
    raw_size: 4 * 1024 * 1024,
    attempts: 1,
    cancel_requested_at: null,
    integrity_status: 'ok',
    verified_at: null,
    cancelled: false,
    pinned: false,
    encrypted: false,
    ...overrides,
  }
}

export function restoreOp(overrides: Partial<RestoreOperation> = {}): RestoreOperation {
  return {
    id: nextId++,
    backup_id: 1,
    status: 'pending',
    requested_by: 1,
    use_safety_backup: true,
    safety_backup_id: null,
    target_database: 'shop',
    error_message: null,
    bytes_processed: 0,
    total_bytes: null,
    attempts: 0,
    started_at: null,
    completed_at: null,
    duration_ms: null,
    created_at: '2026-01-31T00:00:00Z',
    updated_at: '2026-01-31T00:00:00Z',
    cancel_requested_at: null,
    cancelled: false,
    phase: 'queued',
    keep_existing_objects: false,
    ...overrides,
  }
}

export function statistics(overrides: Partial<Statistics> = {}): Statistics {
  return {
    total_backups: 0,
    completed_backups: 0,
    failed_backups: 0,
    cancelled_backups: 0,
    trashed_backups: 0,
    total_size: 0,
    average_size: 0,
    trash_after_days: 15,
    purge_after_days: 7,
    latest_backup: null,
    oldest_backup: null,
    ...overrides,
  }
}

export function admin(overrides: Partial<User> = {}): User {
  return {
    id: 1,
    email: 'admin@example.com',
    role: 'admin',
    is_active: true,
    last_login_at: null,
    created_at: '2026-01-01T00:00:00Z',
    ...overrides,
  }
}

/** A fetch Response carrying the contract's envelope. */
export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  })
}

export function source(overrides: Partial<Source> = {}): Source {
  const id = overrides.id ?? nextId++
  return {
    id,
    name: `source-${id}`,
    engine: 'mysql',
    url: 'mysql://backup:***@db.internal:3306/shop',
    databases: ['shop'],
    destination_ids: [1],
    exclude: [],
    schedule: '30 2 * * *',
    timezone: 'Europe/Berlin',
    retention: { trash_after_days: 15, purge_after_days: 7, keep_last: null, keep_daily: null, keep_weekly: null, keep_monthly: null, keep_yearly: null },
    enabled: true,
    encryption: { enabled: false, recipients: [] },
    from_environment: false,
    next_run_at: '2026-02-01T01:30:00Z',
    last_backup_at: null,
    last_backup_status: null,
    health: { status: 'ok', reasons: [] },
    created_at: '2026-01-31T00:00:00Z',
    updated_at: '2026-01-31T00:00:00Z',
    ...overrides,
  }
}

export function connectionTest(overrides: Partial<ConnectionTest> = {}): ConnectionTest {
  return {
    ok: true,
    message: 'Connected.',
    server_version: '11.4.2-MariaDB',
    databases: ['shop', 'crm'],
    required_privileges: ['SELECT', 'SHOW VIEW', 'TRIGGER', 'LOCK TABLES', 'EVENT'],
    missing_privileges: [],
    dump_tool: 'mariadb-dump',
    dump_tool_version: '11.4.2',
    client_tool: 'mariadb',
    client_tool_version: '11.4.2',
    ...overrides,
  }
}

export function destination(overrides: Partial<Destination> = {}): Destination {
  const id = overrides.id ?? nextId++
  return {
    id,
    name: `destination-${id}`,
    kind: 'local',
    config: { path: `/var/backups/${id}` },
    has_secret: false,
    from_environment: false,
    objects_stored: 0,
    bytes_stored: 0,
    free_bytes: null,
    created_at: '2026-01-31T00:00:00Z',
    updated_at: '2026-01-31T00:00:00Z',
    ...overrides,
  }
}
