import { describe, expect, it } from 'vitest'

import type { NotificationChannel } from '@/api/types'

import { destinationOf, emptyForm, errorsByField, formFromChannel, toCreateBody, toUpdateBody } from './channelForm'

function channel(overrides: Partial<NotificationChannel> = {}): NotificationChannel {
  return {
    id: 7,
    name: 'ops-hook',
    kind: 'webhook',
    config: { url: 'https://hooks.example.com/in' },
    secrets_set: ['secret'],
    events: ['backup.failed'],
    enabled: true,
    created_at: '2026-12-01T00:00:00Z',
    updated_at: '2026-12-01T00:00:00Z',
    ...overrides,
  }
}

describe('channelForm', () => {
  it('makes an email body with the addresses split and cleaned', () => {
    const form = { ...emptyForm(), name: ' ops-mail ', to: 'a@example.com, b@example.com;\n c@example.com' }
    expect(toCreateBody(form)).toEqual({
      name: 'ops-mail',
      kind: 'email',
      config: { to: ['a@example.com', 'b@example.com', 'c@example.com'] },
      events: ['backup.failed'],
      enabled: true,
    })
  })

  it('sends a webhook secret on create, and on edit only when a new one is typed', () => {
    const form = { ...emptyForm(), name: 'hook', kind: 'webhook' as const, url: 'https://h/x', secret: 's'.repeat(20) }
    expect(toCreateBody(form).config).toEqual({ url: 'https://h/x', secret: 's'.repeat(20) })
    const stored = channel()
    const edit = formFromChannel(stored)
    expect(edit.secret).toBe('')
    expect(toUpdateBody(edit, stored)).toEqual({ events: ['backup.failed'], enabled: true, config: { url: 'https://hooks.example.com/in' } })
    expect(toUpdateBody({ ...edit, secret: 'n'.repeat(20) }, stored).config).toEqual({
      url: 'https://hooks.example.com/in',
      secret: 'n'.repeat(20),
    })
  })

  it('leaves an Apprise URL alone on edit unless a new one is typed', () => {
    const stored = channel({ kind: 'apprise', config: {}, secrets_set: ['url'], name: 'chat' })
    const edit = formFromChannel(stored)
    expect(toUpdateBody(edit, stored)).toEqual({ events: ['backup.failed'], enabled: true })
    expect(toUpdateBody({ ...edit, appriseUrl: 'tgram://t/c' }, stored).config).toEqual({ url: 'tgram://t/c' })
    expect(destinationOf(stored)).toBe('Apprise URL (stored encrypted)')
  })

  it('puts the server field errors at the form fields', () => {
    expect(errorsByField({ 'config.to': ['each entry must be an e-mail address'], 'events.0': ['bad'], name: ['taken'] })).toEqual({
      to: 'each entry must be an e-mail address',
      events: 'bad',
      name: 'taken',
    })
  })
})
