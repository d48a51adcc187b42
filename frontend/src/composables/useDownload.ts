// Starting a download. The file goes through the browser's own download (a backup can be far
// larger than memory), which never shows why a server refused it: so the backup is asked for
// first (a cheap JSON GET), and a backup that can't be downloaded (gone, not completed, found
// missing or corrupt by a verification) gets the reason as a notice instead of a silent failure.
import { backupsApi, downloadUrl } from '@/api/backups'
import { ApiError } from '@/api/http'
import type { Backup } from '@/api/types'
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
