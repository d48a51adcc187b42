import { describe, expect, it } from 'vitest'

import { destination, source } from '@/test/factories'

import {
  defaultDestinationIds,
  errorsByField,
  formFromSource,
  formatInZone,
  moveId,
  orderedDestinations,
  splitNames,
  splitRecipients,
  timezones,
  toCreateBody,
  toUpdateBody,
} from './sourceForm'

describe('the source form', () => {
  it('makes a create body from what was typed', () => {
    const form = formFromSource(null, 'Europe/Berlin')
    Object.assign(form, { name: ' shop ', url: ' mysql://u:p@h/shop ', databases: 'shop, crm shop', schedule: ' 30 2 * * * ' })
    form.keep.keep_daily = '7'
    expect(toCreateBody(form)).toEqual({
      name: 'shop',
      engine: 'mysql',
      url: 'mysql://u:p@h/shop',
      databases: ['shop', 'crm'],
      exclude: [],
      schedule: '30 2 * * *',
      timezone: 'Europe/Berlin',
      retention: { trash_after_days: 15, purge_after_days: 7, keep_last: null, keep_daily: 7, keep_weekly: null, keep_monthly: null, keep_yearly: null },
      enabled: true,
      encryption: { enabled: false, recipients: [] },
    })
  })

  it('sends every database as ["*"] with the exclusions, and a blank list as the URL\'s', () => {
    const form = formFromSource(null)
    Object.assign(form, { name: 'all', url: 'mysql://h/', allDatabases: true, exclude: 'scratch,test' })
    expect(toCreateBody(form)).toMatchObject({ databases: ['*'], exclude: ['scratch', 'test'] })
    Object.assign(form, { allDatabases: false, databases: '  ' })
    expect(toCreateBody(form)).toMatchObject({ databases: null, exclude: [] })
  })

  it('on edit sends only what changed, and the URL only when one was typed', () => {
    const stored = source({ name: 'shop', schedule: '30 2 * * *', timezone: 'Europe/Berlin' })
    const form = formFromSource(stored)
    expect(form.url).toBe('')
    expect(toUpdateBody(form, stored)).toEqual({})

    form.schedule = '0 3 * * *'
    form.keep.keep_weekly = '4'
    expect(toUpdateBody(form, stored)).toEqual({
      schedule: '0 3 * * *',
      retention: { trash_after_days: 15, purge_after_days: 7, keep_last: null, keep_daily: null, keep_weekly: 4, keep_monthly: null, keep_yearly: null },
    })
    form.url = 'mysql://u:new@h/shop'
    form.schedule = ''
    expect(toUpdateBody(form, stored)).toMatchObject({ url: 'mysql://u:new@h/shop', schedule: null })
  })

  it('sends the verify URL only when typed, and the verify schedule when it changed', () => {
    const created = formFromSource(null)
    expect(toCreateBody(created)).not.toHaveProperty('verify_url')
    created.verifyUrl = ' mysql://scratch:pw@h:3306/ '
    created.verifySchedule = '0 4 * * 0'
    expect(toCreateBody(created)).toMatchObject({ verify_url: 'mysql://scratch:pw@h:3306/', verify_schedule: '0 4 * * 0' })

    const stored = source({ verify_schedule: '0 4 * * 0', verify_url: 'mysql://scratch:***@h:3306/' })
    const form = formFromSource(stored)
    expect(form.verifyUrl).toBe('')
    expect(toUpdateBody(form, stored)).toEqual({})
    form.verifySchedule = ''
    form.verifyUrl = 'mysql://other:pw@h2/'
    expect(toUpdateBody(form, stored)).toEqual({ verify_schedule: null, verify_url: 'mysql://other:pw@h2/' })
  })

  it('never sends the name, URL or databases of the environment\'s source', () => {
    const stored = source({ name: 'default', from_environment: true })
    const form = formFromSource(stored)
    Object.assign(form, { name: 'renamed', url: 'mysql://x/y', databases: 'other', enabled: false })
    expect(toUpdateBody(form, stored)).toEqual({ enabled: false })
  })

  it('reads an "all databases" source back into the form', () => {
    const form = formFromSource(source({ databases: ['*'], exclude: ['tmp'] }))
    expect(form).toMatchObject({ allDatabases: true, databases: '', exclude: 'tmp' })
  })

  it('puts the server\'s field errors at the form\'s fields', () => {
    expect(errorsByField({ 'retention.keep_daily': ['must be ≥ 1'], url: ['bad scheme', 'and more'] })).toEqual({
      'retention.keep_daily': 'must be ≥ 1',
      retention: 'must be ≥ 1',
      url: 'bad scheme and more',
    })
    expect(errorsByField(null)).toEqual({})
  })

  it('nests field errors: a recipient\'s error is also the recipients\' and the encryption\'s', () => {
    expect(errorsByField({ 'encryption.recipients.1': ['not an age key'], 'destination_ids.0': ['unknown destination: 9'] })).toEqual({
      'encryption.recipients.1': 'not an age key',
      'encryption.recipients': 'not an age key',
      encryption: 'not an age key',
      'destination_ids.0': 'unknown destination: 9',
      destination_ids: 'unknown destination: 9',
    })
  })

  it('sends the chosen destinations in order, and none when none could be chosen (the server\'s default)', () => {
    const form = formFromSource(null)
    Object.assign(form, { name: 'shop', url: 'mysql://h/shop' })
    expect(toCreateBody(form)).not.toHaveProperty('destination_ids')
    form.destinationIds = [3, 1]
    expect(toCreateBody(form).destination_ids).toEqual([3, 1])
  })

  it('on edit sends the destinations only when they or their order changed', () => {
    const stored = source({ destination_ids: [1, 2] })
    const form = formFromSource(stored)
    expect(form.destinationIds).toEqual([1, 2])
    expect(toUpdateBody(form, stored)).toEqual({})
    form.destinationIds = [2, 1]
    expect(toUpdateBody(form, stored)).toEqual({ destination_ids: [2, 1] })
    expect(stored.destination_ids).toEqual([1, 2])
  })

  it('encryption: recipients one a line, trimmed, once each; on edit only when it changed', () => {
    expect(splitRecipients('  age1aaa \n\n age1bbb\tage1ccc\r\nage1aaa ')).toEqual(['age1aaa', 'age1bbb', 'age1ccc'])
    const form = formFromSource(null)
    Object.assign(form, { encrypt: true, recipients: ' age1aaa\n age1bbb \n' })
    expect(toCreateBody(form).encryption).toEqual({ enabled: true, recipients: ['age1aaa', 'age1bbb'] })
    form.encrypt = false
    expect(toCreateBody(form).encryption).toEqual({ enabled: false, recipients: [] })

    const stored = source({ encryption: { enabled: true, recipients: ['age1aaa'] } })
    const edit = formFromSource(stored)
    expect(edit).toMatchObject({ encrypt: true, recipients: 'age1aaa' })
    edit.recipients = ' age1aaa \n'
    expect(toUpdateBody(edit, stored)).toEqual({})
    edit.recipients = 'age1aaa\nage1bbb'
    expect(toUpdateBody(edit, stored)).toEqual({ encryption: { enabled: true, recipients: ['age1aaa', 'age1bbb'] } })
    edit.encrypt = false
    expect(toUpdateBody(edit, stored)).toEqual({ encryption: { enabled: false, recipients: [] } })

    // Off before and after: nothing to send, whatever the hidden recipients say.
    const off = source({ encryption: { enabled: false, recipients: ['age1kept'] } })
    const offForm = formFromSource(off)
    offForm.recipients = 'age1other'
    expect(toUpdateBody(offForm, off)).toEqual({})
  })

  it('lists the chosen destinations first in order, then the others, keeping unknown ids', () => {
    const local = destination({ id: 1, name: 'local', from_environment: true })
    const s3 = destination({ id: 2, name: 'offsite', kind: 's3' })
    const nas = destination({ id: 3, name: 'nas' })
    expect(orderedDestinations([local, s3, nas], [3, 9, 1]).map((row) => [row.id, row.chosen, row.destination?.name ?? null])).toEqual([
      [3, true, 'nas'],
      [9, true, null],
      [1, true, 'local'],
      [2, false, 'offsite'],
    ])
    expect(defaultDestinationIds([s3, local])).toEqual([1])
    expect(defaultDestinationIds([s3])).toEqual([2])
    expect(defaultDestinationIds([])).toEqual([])
    expect(moveId([1, 2, 3], 2, -1)).toEqual([1, 3, 2])
    expect(moveId([1, 2, 3], 0, -1)).toEqual([1, 2, 3])
    expect(moveId([1, 2, 3], 2, 1)).toEqual([1, 2, 3])
  })

  it('splits names on commas and spaces, once each', () => {
    expect(splitNames(' a, b  c,,a ')).toEqual(['a', 'b', 'c'])
  })

  it('lists IANA zones with UTC first, and shows a run in the source\'s zone', () => {
    const zones = timezones()
    expect(zones[0]).toBe('UTC')
    expect(zones).toContain('Europe/Berlin')
    expect(formatInZone('2026-02-01T01:30:00Z', 'Europe/Berlin')).toMatch(/02:30/)
    expect(formatInZone('2026-02-01T01:30:00Z', 'Asia/Kolkata')).toMatch(/07:00/)
  })
})
