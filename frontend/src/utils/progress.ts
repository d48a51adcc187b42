// Transfer rate and time left for a running job, from the byte counts seen at successive
// polls. The server only reports totals; the rate is a smoothed difference between polls.

export interface Sample {
  bytes: number
  at: number // ms since epoch, when the poll answered
}

export interface ProgressEstimate {
  /** 0..1, or null when the total is unknown. */
  fraction: number | null
  /** bytes per second, or null until two samples exist. */
  rate: number | null
  /** seconds left, or null when unknown. */
  secondsLeft: number | null
}

export interface ProgressState {
  last: Sample | null
  rate: number | null
}

const SMOOTHING = 0.5

/** Folds one poll's byte count into the running rate. */
export function addSample(state: ProgressState, sample: Sample): ProgressState {
  const { last } = state
  if (!last || sample.at <= last.at || sample.bytes < last.bytes) {
    // First sample, or the counter went backwards (a retry restarted the job).
    return { last: sample, rate: last && sample.bytes < last.bytes ? null : state.rate }
  }
  if (sample.bytes === last.bytes && sample.at - last.at < 1000) return state
  const instant = ((sample.bytes - last.bytes) * 1000) / (sample.at - last.at)
  const rate = state.rate === null ? instant : SMOOTHING * instant + (1 - SMOOTHING) * state.rate
  return { last: sample, rate }
}

export function estimate(
  state: ProgressState,
  processed: number,
  total: number | null | undefined,
): ProgressEstimate {
  const known = typeof total === 'number' && total > 0
  const fraction = known ? Math.min(1, Math.max(0, processed / total)) : null
  const rate = state.rate
  let secondsLeft: number | null = null
  if (known && rate !== null && rate > 0) {
    secondsLeft = Math.max(0, (total - processed) / rate)
  }
  return { fraction, rate, secondsLeft }
}

/** "about 2 min left"; short and honest about being an estimate. */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return 'estimating…'
  if (seconds < 5) return 'almost done'
  if (seconds < 60) return `about ${Math.round(seconds)} s left`
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min left`
  return `about ${(seconds / 3600).toFixed(1)} h left`
}
