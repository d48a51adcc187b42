// The API's types, named for the app: every one is an alias of the file that
// openapi-typescript generates from the backend's OpenAPI document (schema.d.ts,
// regenerate with `npm run gen:api -- --dump`). No hand-written copies.
import type { components, operations } from './schema'

type Schemas = components['schemas']

// ---- fields the backend is adding now (issue 12) ----------------------------------------
// Until they are in schema.d.ts, they are declared here, and only here. Once `npm run gen:api`
// brings them, each alias below becomes the generated type alone (drop the `& Pending…`).
interface PendingBackupFields {
  source_id?: number | null
  source_name?: string | null
  database_name?: string | null
  pinned?: boolean
}
interface PendingListFilters {
  source_id?: number
  database?: string
}
interface PendingRestoreFields {
  target_source_id?: number
  database?: string
}

export type Backup = Schemas['BackupRead'] & PendingBackupFields
export type BackupStatus = Schemas['BackupStatus']
export type Statistics = Schemas['Statistics']
export type RestorePhase = Schemas['RestorePhase']
export type RestoreOperation = Schemas['RestoreRead']
export type IntegrityStatus = NonNullable<Schemas['BackupRead']['integrity_status']>
export type RestoreStatus = Schemas['RestoreStatus']
export type RestoreRequest = Schemas['RestoreRequest'] & PendingRestoreFields
export type BulkItemResult = Schemas['BulkItem']
export type BulkResult = Schemas['BulkResult']
export type BulkRequest = Schemas['BulkRequest']
export type User = Schemas['UserRead']
export type Role = Schemas['Role']
export type LoginRequest = Schemas['LoginRequest']
export type LoginData = Schemas['LoginData']
export type MeData = Schemas['MeData']
export type PageMeta = Schemas['PageMeta']

export type Sort = Schemas['SortKey']
export type StatusFilter = Schemas['StatusFilter']
export type View = Schemas['View']

export type ListQuery = NonNullable<operations['list_backups']['parameters']['query']> & PendingListFilters
export type ExportQuery = NonNullable<operations['export_backups_csv']['parameters']['query']> & PendingListFilters
export type StatisticsQuery = PendingListFilters

export type HealthCheck = Schemas['CheckRead']
export type HealthReport = Schemas['HealthReport']

export type Source = Omit<Schemas['SourceRead'], 'retention'> & { retention: Retention }
export type SourceCreate = Schemas['SourceCreate']
export type SourceUpdate = Schemas['SourceUpdate']
export type Retention = Schemas['RetentionIn']
export type ConnectionTest = Schemas['ConnectionTest']
export type SchedulePreview = Schemas['SchedulePreview']
