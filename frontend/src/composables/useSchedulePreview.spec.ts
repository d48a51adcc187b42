import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'

import { jsonResponse } from '@/test/factories'

import { useSchedulePreview } from './useSchedulePreview'

const RUNS = ['2026-02-01T01:30:00Z', '2026-02-02T01:30:00Z', '2026-02-03T01:30:00Z', '2026-02-04T01:30:00Z', '2026-02-05T01:30:00Z']

describe('useSchedulePreview', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => {
    vi.useFakeTimers()
    vi.stubGlobal('fetch', fetchMock)
  })
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
    vi.useRealTimers()
  })

  it('asks the server once the typing pauses, with the zone, and shows its runs', async () => {
    fetchMock.mockResolvedValue(jsonResponse({ success: true, data: { runs: RUNS, interval_seconds: 86400 } }))
    const schedule = ref('')
    const timezone = ref('Europe/Berlin')
    const scope = effectScope()
    const preview = scope.run(() => useSchedulePreview(schedule, timezone, 400))!
    for (const text of ['3', '30', '30 2 * * *']) {
      schedule.value = text
      await nextTick()
      await vi.advanceTimersByTimeAsync(100)
    }
    expect(fetchMock).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(400)
    expect(fetchMock).toHaveBeenCalledTimes(1)
    const [url, init] = fetchMock.mock.calls[0]!
    expect(url).toBe('/admin/api/sources/schedule-preview')
    expect(JSON.parse(String(init?.body))).toEqual({ schedule: '30 2 * * *', timezone: 'Europe/Berlin' })
    expect(preview.runs.value).toEqual(RUNS)
    expect(preview.intervalSeconds.value).toBe(86400)
    scope.stop()
  })

  it('shows the cron error at the field, and nothing for a blank schedule', async () => {
    fetchMock.mockResolvedValue(
      jsonResponse({ success: false, message: 'Invalid schedule: x.', errors: { schedule: ["minute field (1st) '61': 61 is out of range 0-59"] } }, 422),
    )
    const schedule = ref('61 * * * *')
    const scope = effectScope()
    const preview = scope.run(() => useSchedulePreview(schedule, ref('UTC'), 400))!
    await vi.advanceTimersByTimeAsync(400)
    expect(preview.error.value).toBe("minute field (1st) '61': 61 is out of range 0-59")
    expect(preview.runs.value).toEqual([])
    schedule.value = '  '
    await nextTick()
    expect(preview.error.value).toBeNull()
    await vi.advanceTimersByTimeAsync(1000)
    expect(fetchMock).toHaveBeenCalledTimes(1)
    scope.stop()
  })
})
