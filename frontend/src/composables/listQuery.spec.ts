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
    ).toEqual({ view: 'trash', page: 3, search: 'shop', sort: 'size_desc', status: 'failed', selected: [4, 7] })
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
    const state = { view: 'trash' as const, page: 5, search: 'a b', sort: 'name_asc' as const, status: 'completed' as const, selected: [9] }
    const query = toQuery(state)
    expect(parseQuery(query as Record<string, string>)).toEqual(state)
    expect(sameQuery(query, query as Record<string, string>)).toBe(true)
    expect(sameQuery(query, {})).toBe(false)
  })
})
