#!/usr/bin/env node
// Fails the build when the app's JavaScript, gzipped, is over the initial-load budget.
// It counts every chunk in dist/assets (entry plus lazy routes): an upper bound of what
// the first visit to any page downloads, so a route chunk can't sneak past the budget.
// Run after `vite build`.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const BUDGET_BYTES = 150 * 1024
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const assets = join(root, 'dist', 'assets')

let files
try {
  files = readdirSync(assets).filter((name) => name.endsWith('.js'))
} catch {
  console.error('check-bundle-size: dist/assets not found; run `vite build` first.')
  process.exit(2)
}
if (!files.length) {
  console.error('check-bundle-size: no JavaScript found in dist/assets.')
  process.exit(2)
}

let total = 0
for (const name of files.sort()) {
  const gz = gzipSync(readFileSync(join(assets, name)), { level: 9 }).length
  total += gz
  console.log(`  assets/${name}  ${(gz / 1024).toFixed(1)} KB gzipped`)
}
const ok = total <= BUDGET_BYTES
console.log(
  `JavaScript: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_BYTES / 1024} KB): ${ok ? 'ok' : 'OVER BUDGET'}`,
)
process.exit(ok ? 0 : 1)
