import { describe, expect, it } from 'vitest'

import { formatBytes, formatDuration, parseDate, statusLabel } from './format'

describe('formatBytes', () => {
  it('uses binary units with sensible precision', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(1023)).toBe('1023 B')
    expect(formatBytes(1536)).toBe('1.50 KB')
    expect(formatBytes(15 * 1024 * 1024)).toBe('15.0 MB')
    expect(formatBytes(300 * 1024 ** 3)).toBe('300 GB')
  })
  it('shows a dash for missing values', () => {
    expect(formatBytes(null)).toBe('—')
    expect(formatBytes(undefined)).toBe('—')
    expect(formatBytes(-1)).toBe('—')
  })
})

describe('formatDuration', () => {
  it('formats short and long durations', () => {
    expect(formatDuration(450)).toBe('0.5s')
    expect(formatDuration(83_000)).toBe('1m 23s')
    expect(formatDuration(3_720_000)).toBe('1h 2m')
    expect(formatDuration(null)).toBe('—')
  })
})

describe('parseDate', () => {
  it('reads offsets and treats bare timestamps as UTC', () => {
    expect(parseDate('2026-01-31T00:00:00Z')?.toISOString()).toBe('2026-01-31T00:00:00.000Z')
    expect(parseDate('2026-01-31T00:00:00')?.toISOString()).toBe('2026-01-31T00:00:00.000Z')
    expect(parseDate('2026-01-31T02:00:00+02:00')?.toISOString()).toBe('2026-01-31T00:00:00.000Z')
    expect(parseDate('nonsense')).toBeNull()
    expect(parseDate(null)).toBeNull()
  })
})

describe('statusLabel', () => {
  it('names every status', () => {
    expect(statusLabel('in_progress')).toBe('In progress')
    expect(statusLabel('in_trash')).toBe('In trash')
    expect(statusLabel('rolled_back')).toBe('Rolled back')
  })
})
