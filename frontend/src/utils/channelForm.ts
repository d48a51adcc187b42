// The notification channel form: what the person types, and the API bodies made from it.
// Secrets (a webhook's secret, an Apprise URL) work like password fields: blank on edit keeps
// the stored value, which the API never returns.
import type {
  NotificationChannel,
  NotificationChannelCreate,
  NotificationChannelUpdate,
  NotificationEventName,
  NotificationKind,
} from '@/api/types'

export const EVENTS: { value: NotificationEventName; label: string }[] = [
  { value: 'backup.failed', label: 'Backup failed' },
  { value: 'backup.completed', label: 'Backup completed' },
  { value: 'backup.degraded', label: 'Backup degraded (a copy failed)' },
  { value: 'restore.finished', label: 'Restore finished' },
  { value: 'verification.failed', label: 'Verification failed' },
  { value: 'health.changed', label: 'Health changed' },
]

export const KINDS: { value: NotificationKind; label: string }[] = [
  { value: 'email', label: 'Email' },
  { value: 'webhook', label: 'Webhook (signed)' },
  { value: 'apprise', label: 'Apprise URL (chat services)' },
]

export interface ChannelForm {
  name: string
  kind: NotificationKind
  to: string
  url: string
  secret: string
  appriseUrl: string
  events: NotificationEventName[]
  enabled: boolean
}

export function emptyForm(): ChannelForm {
  return { name: '', kind: 'email', to: '', url: '', secret: '', appriseUrl: '', events: ['backup.failed'], enabled: true }
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

export function formFromChannel(channel: NotificationChannel): ChannelForm {
  return {
    ...emptyForm(),
    name: channel.name,
    kind: channel.kind,
    to: stringList(channel.config.to).join(', '),
    url: typeof channel.config.url === 'string' ? channel.config.url : '',
    events: [...channel.events],
    enabled: channel.enabled,
  }
}

export function addresses(text: string): string[] {
  return text
    .split(/[\s,;]+/)
    .map((part) => part.trim())
    .filter(Boolean)
}

function configOf(form: ChannelForm, editing: boolean): Record<string, unknown> {
  if (form.kind === 'email') return { to: addresses(form.to) }
  if (form.kind === 'webhook') {
    const config: Record<string, unknown> = { url: form.url.trim() }
    if (form.secret || !editing) config.secret = form.secret
    return config
  }
  return form.appriseUrl || !editing ? { url: form.appriseUrl.trim() } : {}
}

export function toCreateBody(form: ChannelForm): NotificationChannelCreate {
  return {
    name: form.name.trim(),
    kind: form.kind,
    config: configOf(form, false),
    events: [...form.events],
    enabled: form.enabled,
  }
}

export function toUpdateBody(form: ChannelForm, channel: NotificationChannel): NotificationChannelUpdate {
  const body: NotificationChannelUpdate = { events: [...form.events], enabled: form.enabled }
  if (form.name.trim() !== channel.name) body.name = form.name.trim()
  const config = configOf(form, true)
  // An Apprise channel has no plain fields: send config only when a new URL was typed.
  if (form.kind !== 'apprise' || Object.keys(config).length) body.config = config
  return body
}

/** The server's field errors keyed by the form's fields ("config.to" → "to"). */
export function errorsByField(errors: Record<string, string[]> | null): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, messages] of Object.entries(errors ?? {})) {
    const field = key.replace(/^config\./, '').split('.')[0] ?? key
    const name = field === 'url' ? 'url' : field
    if (!out[name]) out[name] = messages.join(' ')
  }
  return out
}

/** Where a channel sends, in one line (never a secret: the API has none to give). */
export function destinationOf(channel: NotificationChannel): string {
  if (channel.kind === 'email') return stringList(channel.config.to).join(', ')
  if (channel.kind === 'webhook') return typeof channel.config.url === 'string' ? channel.config.url : ''
  return channel.secrets_set.includes('url') ? 'Apprise URL (stored encrypted)' : 'No Apprise URL'
}

export function eventLabel(event: string): string {
  if (event === 'test') return 'Test'
  return EVENTS.find((e) => e.value === event)?.label ?? event
}
