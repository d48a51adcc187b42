// Calls `task` now and then again `interval()` ms after each run finishes (runs never
// overlap). Pauses while the tab is hidden and runs at once when it is shown again.
import { onScopeDispose } from 'vue'

export interface Polling {
  /** Run now (skipping the wait) and reschedule. */
  refresh: () => Promise<void>
  /** Re-read the interval, e.g. after it dropped from 30 s to 3 s. */
  reschedule: () => void
  stop: () => void
}

export function usePolling(task: () => Promise<unknown>, interval: () => number): Polling {
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | null = null
  let again = false
  let stopped = false
  let lastRunAt = 0

  const schedule = (): void => {
    clearTimeout(timer)
    timer = undefined
    if (stopped || document.visibilityState === 'hidden') return
    const wait = Math.max(0, lastRunAt + interval() - Date.now())
    timer = setTimeout(() => void run(), wait)
  }

  const run = (): Promise<void> => {
    if (running) {
      again = true
      return running
    }
    clearTimeout(timer)
    running = (async () => {
      try {
        await task()
      } catch {
        // The task reports its own errors; polling simply goes on.
      } finally {
        lastRunAt = Date.now()
        running = null
      }
      if (again) {
        again = false
        await run()
      } else {
        schedule()
      }
    })()
    return running
  }

  const onVisibility = (): void => {
    if (document.visibilityState === 'hidden') {
      clearTimeout(timer)
      timer = undefined
    } else if (!running) {
      void run()
    }
  }
  document.addEventListener('visibilitychange', onVisibility)

  const stop = (): void => {
    stopped = true
    clearTimeout(timer)
    document.removeEventListener('visibilitychange', onVisibility)
  }
  onScopeDispose(stop)

  void run()
  return {
    refresh: run,
    reschedule: () => {
      if (!running) schedule()
    },
    stop,
  }
}
