// The next runs of the schedule being typed, from the server (the same cron code the scheduler
// uses, so what is shown is what will happen), asked for once the typing pauses.
import { onScopeDispose, ref, shallowRef, watch, type Ref } from 'vue'

import { ApiError } from '@/api/http'
import { sourcesApi } from '@/api/sources'

export const PREVIEW_DELAY_MS = 400

export function useSchedulePreview(schedule: Ref<string>, timezone: Ref<string>, delayMs = PREVIEW_DELAY_MS) {
  const runs = shallowRef<string[]>([])
  const intervalSeconds = ref<number | null>(null)
  const error = ref<string | null>(null)
  const loading = ref(false)
  let timer: ReturnType<typeof setTimeout> | undefined
  let controller: AbortController | null = null

  async function ask(expression: string, zone: string): Promise<void> {
    controller?.abort()
    const mine = new AbortController()
    controller = mine
    loading.value = true
    try {
      const { data } = await sourcesApi.previewSchedule(expression, zone, mine.signal)
      runs.value = data.runs
      intervalSeconds.value = data.interval_seconds
      error.value = null
    } catch (caught) {
      if (caught instanceof DOMException && caught.name === 'AbortError') return
      runs.value = []
      intervalSeconds.value = null
      const fieldError = caught instanceof ApiError ? (caught.errors?.schedule?.[0] ?? caught.errors?.timezone?.[0]) : undefined
      error.value = fieldError ?? (caught instanceof ApiError ? caught.message : 'The schedule could not be checked.')
    } finally {
      if (controller === mine) {
        loading.value = false
        controller = null
      }
    }
  }

  watch(
    [schedule, timezone],
    ([expression, zone]) => {
      clearTimeout(timer)
      controller?.abort()
      const text = expression.trim()
      if (!text) {
        runs.value = []
        intervalSeconds.value = null
        error.value = null
        loading.value = false
        return
      }
      timer = setTimeout(() => void ask(text, zone), delayMs)
    },
    { immediate: true },
  )
  onScopeDispose(() => {
    clearTimeout(timer)
    controller?.abort()
  })

  return { runs, intervalSeconds, error, loading }
}
