// GET /health: the same checks the operator's monitoring sees. It answers 503 (with the whole
// report) when a critical check fails, so the body is read whatever the status.
import type { HealthReport } from './types'

export const healthApi = {
  async report(signal?: AbortSignal): Promise<HealthReport | null> {
    try {
      const response = await fetch('/health', { headers: { Accept: 'application/json' }, signal })
      const body = (await response.json()) as { data?: HealthReport }
      return body && typeof body === 'object' && body.data && typeof body.data === 'object' ? body.data : null
    } catch {
      return null
    }
  },
}
