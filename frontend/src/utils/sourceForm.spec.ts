import { describe, expect, it } from 'vitest'

import { source } from '@/test/factories'

import { errorsByField, formFromSource, formatInZone, splitNames, timezones, toCreateBody, toUpdateBody } from './sourceForm'

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
