// The API's types, named for the app. PROVISIONAL: written from the contract until the
// backend's OpenAPI document lands; then every type here becomes an alias of the
// generated `schema.d.ts` (components['schemas'][...]).

export type BackupStatus = 'pending' | 'in_progress' | 'completed' | 'failed' | 'in_trash'
export type RestoreStatus = 'pending' | 'in_progress' | 'completed' | 'failed' | 'rolled_back'
export type Role = 'admin' | 'viewer'

export interface Backup {
  id: number
  filename: string
  unique_identifier: string
  file_size: number
  status: BackupStatus
  error_message: string | null
  backup_date: string
  trashed_at: string | null
  completed_at: string | null
  created_by: number | null
  created_at: string
  updated_at: string
  compression: string
  checksum_sha256: string | null
  duration_ms: number | null
  trigger: string
  target_database: string | null
  bytes_processed: number
  estimated_bytes: number | null
  started_at: string | null
}

export interface Statistics {
  total_backups: number
  completed_backups: number
  failed_backups: number
  trashed_backups: number
  total_size: number
  average_size: number
  latest_backup: string | null
  oldest_backup: string | null
}

export interface RestoreOperation {
  id: number
  backup_id: number
  status: RestoreStatus
  requested_by: number | null
  use_safety_backup: boolean
  safety_backup_id: number | null
  target_database: string | null
  error_message: string | null
  bytes_processed: number
  total_bytes: number | null
  started_at: string | null
  completed_at: string | null
  duration_ms: number | null
  created_at: string
}

export interface BulkItemResult {
  id: number
  success: boolean
  message: string
}

export interface BulkResult {
  results: BulkItemResult[]
}

export interface User {
  id: number
  email: string
  role: Role
}

export type Sort = 'latest' | 'oldest' | 'name_asc' | 'name_desc' | 'size_asc' | 'size_desc'
export type StatusFilter = 'completed' | 'pending' | 'in_progress' | 'failed'
export type View = 'active' | 'trash'

export interface ListQuery {
  page?: number
  per_page?: number
  search?: string
  sort?: Sort
  status?: StatusFilter
  view?: View
}
