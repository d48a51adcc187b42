// The add/edit form of a source as plain data, and the request bodies made from it: a create
// sends everything, an edit only what changed, and the URL only when one was typed (blank keeps
// the stored one, whose password the API never returns). Destinations are an ordered list of
// ids (reads try the first copy first); encryption is age to dbkeep's key plus the recipients.
import type { Destination, Retention, Source, SourceCreate, SourceUpdate } from '@/api/types'

export const ALL_DATABASES = '*'
export const KEEP_FIELDS = ['keep_last', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly'] as const
export type KeepField = (typeof KEEP_FIELDS)[number]

export interface EngineChoice {
  value: SourceCreate['engine']
  label: string
  /** The URL shape shown in the empty URL field. */
  placeholder: string
  /** What the URL names, said under the field. */
  urlHint: string
  /** Whether one source may hold several databases (a server) or is one file. */
  servesDatabases: boolean
}

export const ENGINES: readonly EngineChoice[] = [
  {
    value: 'mysql',
    label: 'MySQL / MariaDB',
    placeholder: 'mysql://user:password@host:3306/database',
    urlHint: 'mysql://user:password@host:3306/database; ?socket=/path for a Unix socket; no database for a whole server.',
    servesDatabases: true,
  },
  {
    value: 'postgresql',
    label: 'PostgreSQL',
    placeholder: 'postgresql://user:password@host:5432/database',
    urlHint: 'postgresql://user:password@host:5432/database; ?sslmode=require for TLS; no database for a whole server.',
    servesDatabases: true,
  },
  {
    value: 'sqlite',
    label: 'SQLite',
    placeholder: 'sqlite:///absolute/path/to/app.db',
    urlHint: 'sqlite:/// and the absolute path of the database file on the worker\'s machine.',
    servesDatabases: false,
  },
]

export function engineChoice(engine: string): EngineChoice {
  return ENGINES.find((choice) => choice.value === engine) ?? ENGINES[0]!
}

export interface SourceForm {
  name: string
  engine: string
  url: string
  allDatabases: boolean
  /** Comma- or space-separated names. */
  databases: string
  exclude: string
  schedule: string
  timezone: string
  trashAfterDays: string
  purgeAfterDays: string
  keep: Record<KeepField, string>
  enabled: boolean
  /** Where test restores may create scratch databases; blank keeps the stored one. */
  verifyUrl: string
  verifySchedule: string
  /** The chosen destinations' ids, in order (reads try the first copy first). */
  destinationIds: number[]
  /** Encrypt each backup (age) to dbkeep's key plus the recipients. */
  encrypt: boolean
  /** Extra age public keys (age1…), one a line. */
  recipients: string
}

export interface EncryptionBody {
  enabled: boolean
  recipients: string[]
}

const DEFAULT_RETENTION: Retention = { trash_after_days: 15, purge_after_days: 7 }

export function splitNames(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))]
}

/** age public keys typed one a line (any whitespace or comma separates them), trimmed, once each. */
export function splitRecipients(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))]
}

/** The destination a new source starts with: the bootstrap `local`, else the first. */
export function defaultDestinationIds(destinations: readonly Destination[]): number[] {
  const chosen = destinations.find((d) => d.name === 'local') ?? destinations.find((d) => d.from_environment) ?? destinations[0]
  return chosen ? [chosen.id] : []
}

/** The ids with the one at `index` moved by `delta` places (a copy; out of range: unchanged). */
export function moveId(ids: readonly number[], index: number, delta: -1 | 1): number[] {
  const target = index + delta
  const out = [...ids]
  if (index < 0 || index >= out.length || target < 0 || target >= out.length) return out
  ;[out[index], out[target]] = [out[target]!, out[index]!]
  return out
}

/** Every destination once, the chosen ones first in their order, then the rest as listed. Ids
 * chosen but not in the list (it failed to load, or one is gone) are kept, with no destination. */
export function orderedDestinations(
  destinations: readonly Destination[],
  chosen: readonly number[],
): { id: number; destination: Destination | null; chosen: boolean }[] {
  const byId = new Map(destinations.map((d) => [d.id, d]))
  const picked = new Set(chosen)
  return [
    ...chosen.map((id) => ({ id, destination: byId.get(id) ?? null, chosen: true })),
    ...destinations.filter((d) => !picked.has(d.id)).map((d) => ({ id: d.id, destination: d, chosen: false })),
  ]
}

function text(value: number | null | undefined): string {
  return value === null || value === undefined ? '' : String(value)
}

export function emptyForm(timezone = 'UTC'): SourceForm {
  return formFromSource(null, timezone)
}

export function formFromSource(source: Source | null, timezone = 'UTC'): SourceForm {
  const retention = source?.retention ?? DEFAULT_RETENTION
  const all = source ? source.databases.length === 1 && source.databases[0] === ALL_DATABASES : false
  return {
    name: source?.name ?? '',
    engine: source?.engine ?? 'mysql',
    url: '',
    allDatabases: all,
    databases: all || !source ? '' : source.databases.join(', '),
    exclude: source?.exclude.join(', ') ?? '',
    schedule: source?.schedule ?? '',
    timezone: source?.timezone ?? timezone,
    trashAfterDays: text(retention.trash_after_days),
    purgeAfterDays: text(retention.purge_after_days),
    keep: Object.fromEntries(KEEP_FIELDS.map((key) => [key, text(retention[key])])) as Record<KeepField, string>,
    enabled: source?.enabled ?? true,
    verifyUrl: '',
    verifySchedule: source?.verify_schedule ?? '',
    destinationIds: [...(source?.destination_ids ?? [])],
    encrypt: source?.encryption?.enabled ?? false,
    recipients: (source?.encryption?.recipients ?? []).join('\n'),
  }
}

/** A number field: blank is null; anything else is sent as typed, and the server judges it. */
function number(value: string): number | null {
  const trimmed = value.trim()
  if (!trimmed) return null
  const parsed = Number(trimmed)
  return Number.isFinite(parsed) ? parsed : Number.NaN
}

function retentionOf(form: SourceForm): Retention {
  const retention: Retention = {
    trash_after_days: number(form.trashAfterDays) ?? DEFAULT_RETENTION.trash_after_days,
    purge_after_days: number(form.purgeAfterDays) ?? DEFAULT_RETENTION.purge_after_days,
  }
  for (const key of KEEP_FIELDS) retention[key] = number(form.keep[key])
  return retention
}

/** Names as the form holds them; null when the list is left empty (the URL's database). */
function databasesOf(form: SourceForm): string[] | null {
  if (!engineChoice(form.engine).servesDatabases) return null
  if (form.allDatabases) return [ALL_DATABASES]
  const names = splitNames(form.databases)
  return names.length ? names : null
}

/** What the form says about encryption; the recipients only count while it is on. */
export function encryptionOf(form: SourceForm): EncryptionBody {
  return { enabled: form.encrypt, recipients: form.encrypt ? splitRecipients(form.recipients) : [] }
}

function storedEncryption(source: Source): EncryptionBody {
  return { enabled: source.encryption?.enabled ?? false, recipients: source.encryption?.recipients ?? [] }
}

export function toCreateBody(form: SourceForm): SourceCreate {
  const body: SourceCreate = {
    name: form.name.trim(),
    engine: form.engine as SourceCreate['engine'],
    url: form.url.trim(),
    databases: databasesOf(form),
    exclude: form.allDatabases && engineChoice(form.engine).servesDatabases ? splitNames(form.exclude) : [],
    schedule: form.schedule.trim() || null,
    timezone: form.timezone,
    retention: retentionOf(form),
    enabled: form.enabled,
    encryption: encryptionOf(form),
  }
  // None chosen (the list could not be loaded): the server's default, the `local` destination.
  if (form.destinationIds.length) body.destination_ids = [...form.destinationIds]
  // Sent only when given: test restores are optional.
  if (form.verifyUrl.trim()) body.verify_url = form.verifyUrl.trim()
  if (form.verifySchedule.trim()) body.verify_schedule = form.verifySchedule.trim()
  return body
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

/** Only what differs from the stored source. The `default` source's name, URL and databases
 * follow DBKEEP_TARGET_URL, so they are never sent for it. */
export function toUpdateBody(form: SourceForm, source: Source): SourceUpdate {
  const body: SourceUpdate = {}
  if (!source.from_environment) {
    const name = form.name.trim()
    if (name !== source.name) body.name = name
    const url = form.url.trim()
    if (url) body.url = url
    const databases = databasesOf(form)
    if (databases && !same(databases, source.databases)) body.databases = databases
    const exclude = form.allDatabases ? splitNames(form.exclude) : []
    if (!same(exclude, source.exclude)) body.exclude = exclude
  }
  const schedule = form.schedule.trim() || null
  if (schedule !== source.schedule) body.schedule = schedule
  if (form.timezone !== source.timezone) body.timezone = form.timezone
  const retention = retentionOf(form)
  const stored = { ...DEFAULT_RETENTION, ...Object.fromEntries(KEEP_FIELDS.map((k) => [k, null])), ...source.retention }
  if (!same(retention, Object.fromEntries(Object.keys(retention).map((k) => [k, stored[k as keyof Retention] ?? null])))) {
    body.retention = retention
  }
  if (form.enabled !== source.enabled) body.enabled = form.enabled
  const verifyUrl = form.verifyUrl.trim()
  if (verifyUrl) body.verify_url = verifyUrl
  const verifySchedule = form.verifySchedule.trim() || null
  if (verifySchedule !== (source.verify_schedule ?? null)) body.verify_schedule = verifySchedule
  if (!same(form.destinationIds, source.destination_ids)) body.destination_ids = [...form.destinationIds]
  const encryption = encryptionOf(form)
  const storedEnc = storedEncryption(source)
  // Off before and after: unchanged, whatever recipients were kept.
  if (encryption.enabled !== storedEnc.enabled || (encryption.enabled && !same(encryption.recipients, storedEnc.recipients))) {
    body.encryption = encryption
  }
  return body
}

/** The server's field errors ("retention.keep_daily", "encryption.recipients.0", "url") by
 * their own key and by every enclosing field ("encryption.recipients", "encryption"). */
export function errorsByField(errors: Record<string, string[]> | null): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, messages] of Object.entries(errors ?? {})) {
    if (!messages.length) continue
    out[key] = messages.join(' ')
    const parts = key.split('.')
    for (let n = parts.length - 1; n >= 1; n--) {
      const field = parts.slice(0, n).join('.')
      if (!out[field]) out[field] = messages.join(' ')
    }
  }
  return out
}

/** IANA zone names, as the browser knows them (UTC first). */
export function timezones(): string[] {
  const supported = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : []
  return ['UTC', ...supported.filter((zone) => zone !== 'UTC')]
}

/** A run time shown in the source's own zone ("Mon, 2 Feb 2026, 02:30 CET"). */
export function formatInZone(iso: string, timezone: string): string {
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  try {
    return new Intl.DateTimeFormat(undefined, {
      weekday: 'short',
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      timeZone: timezone,
      timeZoneName: 'short',
    }).format(date)
  } catch {
    return date.toISOString()
  }
}
