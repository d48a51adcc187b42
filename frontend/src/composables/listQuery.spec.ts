import { describe, expect, it } from 'vitest'

import { DEFAULT_STATE, parseQuery, sameQuery, toQuery } from './listQuery'

describe('list query <-> URL', () => {
  it('reads every field', () => {
    expect(
      parseQuery({
        view: 'trash',
        page: '3',
        search: 'shop',
        sort: 'size_desc',
        status: 'failed',
        selected: '4,7,4',
      }),
    ).toEqual({ view: 'trash', page: 3, search: 'shop', sort: 'size_desc', status: 'failed', sourceId: 0, database: '', selected: [4, 7] })
  })

  it('falls back to defaults for anything unknown or hostile', () => {
    expect(
      parseQuery({
        view: 'everything',
        page: '-2',
        sort: "latest'; DROP TABLE x",
        status: 'in_trash',
        selected: 'a,0,-1',
      }),
    ).toEqual({ ...DEFAULT_STATE, selected: [] })
  })

  it('writes only what differs from the defaults', () => {
    expect(toQuery({ ...DEFAULT_STATE })).toEqual({})
    expect(toQuery({ ...DEFAULT_STATE, page: 2, sort: 'oldest', selected: [1, 2] })).toEqual({
      page: '2',
      sort: 'oldest',
      selected: '1,2',
    })
  })

  it('round-trips', () => {
    const state = { view: 'trash' as const, page: 5, search: 'a b', sort: 'name_asc' as const, status: 'completed' as const, sourceId: 3, database: 'orders', selected: [9] }
    const query = toQuery(state)
    expect(parseQuery(query as Record<string, string>)).toEqual(state)
    expect(sameQuery(query, query as Record<string, string>)).toBe(true)
    expect(sameQuery(query, {})).toBe(false)
  })

  it('keeps the source and database filters in the URL, and drops a bad source id', () => {
    expect(toQuery({ ...DEFAULT_STATE, sourceId: 4, database: 'crm' })).toEqual({ source_id: '4', database: 'crm' })
    expect(parseQuery({ source_id: '4', database: ' crm ' })).toMatchObject({ sourceId: 4, database: 'crm' })
    expect(parseQuery({ source_id: 'x' }).sourceId).toBe(0)
    expect(parseQuery({ source_id: '-2' }).sourceId).toBe(0)
    expect(parseQuery({ database: 'd'.repeat(100) }).database).toHaveLength(64)
  })
})
