import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'

import { useDebounced } from './useDebounced'

describe('useDebounced', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('follows the source only after it settles', async () => {
    const source = ref('')
    const scope = effectScope()
    const debounced = scope.run(() => useDebounced(source, 300))!
    source.value = 's'
    await nextTick()
    vi.advanceTimersByTime(200)
    source.value = 'sh'
    await nextTick()
    vi.advanceTimersByTime(200)
    source.value = 'shop'
    await nextTick()
    vi.advanceTimersByTime(299)
    expect(debounced.value).toBe('')
    vi.advanceTimersByTime(1)
    expect(debounced.value).toBe('shop')
    scope.stop()
  })
})
