import { describe, expect, it } from 'vitest'

import { addSample, estimate, formatEta, type ProgressState } from './progress'

const empty: ProgressState = { last: null, rate: null }

describe('progress estimate', () => {
  it('has no rate until two polls have been seen', () => {
    const one = addSample(empty, { bytes: 1000, at: 0 })
    expect(estimate(one, 1000, 10_000)).toEqual({ fraction: 0.1, rate: null, secondsLeft: null })
  })

  it('computes the rate between polls and the time left', () => {
    let state = addSample(empty, { bytes: 0, at: 0 })
    state = addSample(state, { bytes: 3_000_000, at: 3000 })
    const result = estimate(state, 3_000_000, 9_000_000)
    expect(result.rate).toBe(1_000_000)
    expect(result.secondsLeft).toBe(6)
    expect(result.fraction).toBeCloseTo(1 / 3)
  })

  it('smooths the rate over successive polls', () => {
    let state = addSample(empty, { bytes: 0, at: 0 })
    state = addSample(state, { bytes: 1000, at: 1000 }) // 1000 B/s
    state = addSample(state, { bytes: 4000, at: 2000 }) // 3000 B/s
    expect(state.rate).toBe(2000)
  })

  it('starts over when the counter goes backwards (the job was retried)', () => {
    let state = addSample(empty, { bytes: 0, at: 0 })
    state = addSample(state, { bytes: 5000, at: 1000 })
    state = addSample(state, { bytes: 100, at: 2000 })
    expect(state.rate).toBeNull()
    expect(state.last).toEqual({ bytes: 100, at: 2000 })
  })

  it('has no fraction or time left without an estimated total', () => {
    let state = addSample(empty, { bytes: 0, at: 0 })
    state = addSample(state, { bytes: 1000, at: 1000 })
    expect(estimate(state, 1000, null)).toEqual({ fraction: null, rate: 1000, secondsLeft: null })
  })

  it('caps the fraction at 100 % when the estimate was low', () => {
    expect(estimate(empty, 2000, 1000).fraction).toBe(1)
  })
})

describe('formatEta', () => {
  it('reads naturally', () => {
    expect(formatEta(null)).toBe('estimating…')
    expect(formatEta(2)).toBe('almost done')
    expect(formatEta(42)).toBe('about 42 s left')
    expect(formatEta(600)).toBe('about 10 min left')
    expect(formatEta(5400)).toBe('about 1.5 h left')
  })
})
