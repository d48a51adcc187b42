// What the import accepts, checked before a byte is sent: a wrong file is said at once rather
// than after a long upload.
export const IMPORT_EXTENSIONS = ['.sql', '.sql.gz', '.sql.zst'] as const

/** Why this file can't be imported, or null when it can. */
export function importProblem(file: { name: string; size: number }): string | null {
  const name = file.name.toLowerCase()
  if (!IMPORT_EXTENSIONS.some((ext) => name.endsWith(ext))) {
    return `${file.name} is not a dump dbkeep can import: use a .sql, .sql.gz or .sql.zst file.`
  }
  if (file.size === 0) return `${file.name} is empty.`
  return null
}
