import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope } from 'vue'

import { usePolling } from './usePolling'

function setVisibility(state: 'visible' | 'hidden'): void {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
  document.dispatchEvent(new Event('visibilitychange'))
}

describe('usePolling', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    setVisibility('visible')
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('runs at once, then every interval', async () => {
    const task = vi.fn().mockResolvedValue(undefined)
    const scope = effectScope()
    scope.run(() => usePolling(task, () => 30_000))
    await vi.advanceTimersByTimeAsync(0)
    expect(task).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(29_000)
    expect(task).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(task).toHaveBeenCalledTimes(2)
    scope.stop()
  })

  it('follows a changing interval (30 s idle, 3 s busy)', async () => {
    let busy = false
    const task = vi.fn().mockResolvedValue(undefined)
    const scope = effectScope()
    const polling = scope.run(() => usePolling(task, () => (busy ? 3_000 : 30_000)))!
    await vi.advanceTimersByTimeAsync(0)
    busy = true
    polling.reschedule()
    await vi.advanceTimersByTimeAsync(3_000)
    expect(task).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(3_000)
    expect(task).toHaveBeenCalledTimes(3)
    scope.stop()
  })

  it('pauses while the tab is hidden and catches up when shown', async () => {
    const task = vi.fn().mockResolvedValue(undefined)
    const scope = effectScope()
    scope.run(() => usePolling(task, () => 3_000))
    await vi.advanceTimersByTimeAsync(0)
    setVisibility('hidden')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(task).toHaveBeenCalledTimes(1)
    setVisibility('visible')
    await vi.advanceTimersByTimeAsync(0)
    expect(task).toHaveBeenCalledTimes(2)
    scope.stop()
  })

  it('never overlaps runs and keeps going after a failure', async () => {
    let release: () => void = () => {}
    const task = vi
      .fn()
      .mockImplementationOnce(() => new Promise<void>((resolve) => (release = resolve)))
      .mockRejectedValueOnce(new Error('boom'))
      .mockResolvedValue(undefined)
    const scope = effectScope()
    const polling = scope.run(() => usePolling(task, () => 1_000))!
    void polling.refresh()
    void polling.refresh()
    expect(task).toHaveBeenCalledTimes(1)
    release()
    await vi.advanceTimersByTimeAsync(0)
    expect(task).toHaveBeenCalledTimes(2) // the queued refresh, which fails
    await vi.advanceTimersByTimeAsync(1_000)
    expect(task).toHaveBeenCalledTimes(3)
    scope.stop()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(task).toHaveBeenCalledTimes(3)
  })
})
