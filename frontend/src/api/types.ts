// The API's types, named for the app: every one is an alias of the file that
// openapi-typescript generates from the backend's OpenAPI document (schema.d.ts,
// regenerate with `npm run gen:api -- --dump`). No hand-written copies.
import type { components, operations } from './schema'

type Schemas = components['schemas']

// The fields added for issue 11 are also declared here as optional, so the dashboard copes with
// a backend that does not send them yet; once schema.d.ts has them they are required there.
export type Backup = Schemas['BackupRead'] & { cancelled?: boolean }
export type BackupStatus = Schemas['BackupStatus']
export type Statistics = Schemas['Statistics'] & { cancelled_backups?: number; purge_after_days?: number }
export type RestorePhase = 'queued' | 'safety_backup' | 'loading' | 'rolling_back' | 'finished'
export type RestoreOperation = Schemas['RestoreRead'] & {
  cancelled?: boolean
  phase?: RestorePhase
  keep_existing_objects?: boolean
}
export type IntegrityStatus = NonNullable<Schemas['BackupRead']['integrity_status']>
export type RestoreStatus = Schemas['RestoreStatus']
export type RestoreRequest = Schemas['RestoreRequest']
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

export type ListQuery = NonNullable<operations['list_backups']['parameters']['query']>

export type HealthCheck = Schemas['CheckRead']
export type HealthReport = Schemas['HealthReport'] & { next_backup_at?: string | null }
