import type { Backup } from '@/api/types'
import { parseDate } from '@/utils/format'

export interface ChartPoint {
  id: number
  filename: string
  date: Date
  size: number
  durationMs: number | null
  failed: boolean
  message: string | null
}

/** Finished backups (cancelled ones aside), oldest first: the chart's x axis. */
export function chartPoints(backups: readonly Backup[], limit = 30): ChartPoint[] {
  const points: ChartPoint[] = []
  for (const b of backups) {
    if (b.status !== 'completed' && b.status !== 'failed') continue
    // A cancelled backup is the person's choice, not a failure, and has no size: not drawn.
    if (b.cancelled === true) continue
    const date = parseDate(b.backup_date)
    if (!date) continue
    points.push({
      id: b.id,
      filename: b.filename,
      date,
      size: b.status === 'completed' ? b.file_size : 0,
      durationMs: b.duration_ms,
      failed: b.status === 'failed',
      message: b.error_message,
    })
  }
  points.sort((a, b) => a.date.getTime() - b.date.getTime())
  return points.slice(-limit)
}

/** A round axis maximum at or above `value`: 1, 2, 2.5 or 5 times a power of ten. */
export function niceMax(value: number): number {
  if (!(value > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power
  }
  return 10 * power
}

/** Same, in binary byte units (1, 2, 5 × 1024^n), so the ticks read as round sizes. */
export function niceBytesMax(value: number): number {
  if (!(value > 0)) return 1024
  let unit = 1
  while (value / unit >= 1024) unit *= 1024
  return niceMax(value / unit) * unit
}
