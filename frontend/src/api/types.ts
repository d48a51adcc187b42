// The API's types, named for the app: every one is an alias of the file that
// openapi-typescript generates from the backend's OpenAPI document (schema.d.ts,
// regenerate with `npm run gen:api -- --dump`). No hand-written copies.
import type { components, operations } from './schema'

type Schemas = components['schemas']

export type Backup = Schemas['BackupRead']
export type BackupStatus = Schemas['BackupStatus']
export type Statistics = Schemas['Statistics']
export type RestorePhase = Schemas['RestorePhase']
export type RestoreOperation = Schemas['RestoreRead']
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
export type ExportQuery = NonNullable<operations['export_backups_csv']['parameters']['query']>
export type StatisticsQuery = NonNullable<operations['backup_statistics']['parameters']['query']>

export type HealthCheck = Schemas['CheckRead']
export type HealthReport = Schemas['HealthReport']
export type SourceHealth = Schemas['SourceHealthRead']

export type Source = Omit<Schemas['SourceRead'], 'retention'> & { retention: Retention }
export type SourceCreate = Schemas['SourceCreate']
export type SourceUpdate = Schemas['SourceUpdate']
export type Retention = Schemas['RetentionIn']
export type ConnectionTest = Schemas['ConnectionTest']
export type SchedulePreview = Schemas['SchedulePreview']

export type NotificationChannel = Schemas['ChannelRead']
export type NotificationChannelCreate = Schemas['ChannelCreate']
export type NotificationChannelUpdate = Schemas['ChannelUpdate']
export type NotificationEventName = NonNullable<Schemas['ChannelCreate']['events']>[number]
export type NotificationKind = Schemas['ChannelRead']['kind']
export type NotificationDelivery = Schemas['DeliveryRead']
export type NotificationTestResult = Schemas['TestResult']
