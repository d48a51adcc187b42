import { describe, expect, it } from 'vitest'

import { backup } from '@/test/factories'

import { chartPoints, niceBytesMax, niceMax } from './chart'

describe('chartPoints', () => {
  it('keeps finished backups, oldest first, and marks failures', () => {
    const points = chartPoints([
      backup({ id: 3, status: 'completed', backup_date: '2026-01-03T00:00:00Z', file_size: 300 }),
      backup({ id: 2, status: 'failed', backup_date: '2026-01-02T00:00:00Z', file_size: 0 }),
      backup({ id: 4, status: 'in_progress', backup_date: '2026-01-04T00:00:00Z' }),
      backup({ id: 1, status: 'completed', backup_date: '2026-01-01T00:00:00Z', file_size: 100 }),
    ])
    expect(points.map((p) => [p.id, p.failed])).toEqual([
      [1, false],
      [2, true],
      [3, false],
    ])
  })

  it('keeps only the most recent ones', () => {
    const many = Array.from({ length: 40 }, (_, i) =>
      backup({ id: i + 1, backup_date: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() }),
    )
    const points = chartPoints(many, 30)
    expect(points).toHaveLength(30)
    expect(points[0]?.id).toBe(11)
  })
})

describe('axis maxima', () => {
  it('rounds up to friendly numbers', () => {
    expect(niceMax(0)).toBe(1)
    expect(niceMax(7)).toBe(10)
    expect(niceMax(1.3)).toBe(2)
    expect(niceMax(230)).toBe(250)
    expect(niceBytesMax(3 * 1024 * 1024)).toBe(5 * 1024 * 1024)
    expect(niceBytesMax(900)).toBe(1000)
  })
})

describe('chartPoints and cancelled backups', () => {
  it('leaves cancelled backups out: they are neither failures nor sizes', () => {
    const points = chartPoints([
      backup({ id: 1, status: 'failed', cancelled: true, backup_date: '2026-01-01T00:00:00Z' }),
      backup({ id: 2, status: 'failed', cancelled: false, backup_date: '2026-01-02T00:00:00Z' }),
      backup({ id: 3, status: 'completed', backup_date: '2026-01-03T00:00:00Z' }),
    ])
    expect(points.map((p) => [p.id, p.failed])).toEqual([
      [2, true],
      [3, false],
    ])
  })
})
