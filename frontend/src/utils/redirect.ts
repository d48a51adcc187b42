export const HOME = '/admin/database-backups'

/** Only same-app paths are followed after login (no open redirect). */
export function safeRedirect(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.startsWith('/\\')
    ? value
    : HOME
}
