// Starting a download. The file goes through the browser's own download (a backup can be far
// larger than memory), which never shows why a server refused it: so the backup is asked for
// first (a cheap JSON GET), and a backup that can't be downloaded (gone, not completed, found
// missing or corrupt by a verification) gets the reason as a notice instead of a silent failure.
import { backupsApi, downloadUrl, exportCsvUrl } from '@/api/backups'
import { ApiError } from '@/api/http'
import type { Backup, ExportQuery } from '@/api/types'
import { pushToast } from '@/composables/useToasts'
import { downloadBlocked } from '@/utils/backup'

/** Hands a URL to the browser's download manager, as a click on a `download` link would. */
export function triggerDownload(url: string): void {
  const link = document.createElement('a')
  link.href = url
  link.download = ''
  link.rel = 'noopener'
  link.style.display = 'none'
  document.body.append(link)
  link.click()
  link.remove()
}

/**
 * Checks the backup, then downloads it (`raw`: the stored file). Resolves to the fresh backup
 * when the download was started, or null (after a notice saying why) when it was not.
 */
export async function startDownload(backup: Backup, raw = false): Promise<Backup | null> {
  let fresh: Backup
  try {
    fresh = (await backupsApi.get(backup.id)).data
  } catch (error) {
    pushToast('error', error instanceof ApiError ? error.message : 'The download could not be started.')
    return null
  }
  const reason = downloadBlocked(fresh)
  if (reason) {
    pushToast('error', `${fresh.filename} can't be downloaded. ${reason}`)
    return null
  }
  triggerDownload(downloadUrl(fresh.id, raw))
  return fresh
}

/**
 * Downloads the backup history as CSV with the list's filters. The same filters are first asked
 * of the list (one row): a session that expired or a filter the server refuses then gets its
 * reason as a notice, which the browser's download would swallow. Resolves to whether it started.
 */
export async function startExport(query: ExportQuery): Promise<boolean> {
  let total: number
  try {
    total = (await backupsApi.list({ ...query, page: 1, per_page: 1 })).meta?.total ?? 0
  } catch (error) {
    pushToast('error', error instanceof ApiError ? error.message : 'The export could not be started.')
    return false
  }
  triggerDownload(exportCsvUrl(query))
  pushToast('info', `Exporting ${total} backup${total === 1 ? '' : 's'} as CSV.`)
  return true
}
