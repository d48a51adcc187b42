#!/usr/bin/env node
// Generates src/api/schema.d.ts from the committed openapi.json with openapi-typescript.
//   node scripts/gen-api-types.mjs           write src/api/schema.d.ts
//   node scripts/gen-api-types.mjs --check   fail if the committed file is stale (CI)
//   node scripts/gen-api-types.mjs --dump    first refresh openapi.json from the backend
//                                            (../.venv/bin/python, app.main.create_app)
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const spec = join(root, 'openapi.json')
const target = join(root, 'src', 'api', 'schema.d.ts')
const bin = join(root, 'node_modules', '.bin', 'openapi-typescript')
const args = new Set(process.argv.slice(2))

if (args.has('--dump')) {
  const python = resolve(root, '..', '.venv', 'bin', 'python')
  const code =
    'import json; from app.main import create_app; print(json.dumps(create_app().openapi(), indent=2, sort_keys=True))'
  const out = execFileSync(python, ['-c', code], { cwd: resolve(root, '..'), encoding: 'utf8' })
  writeFileSync(spec, out.endsWith('\n') ? out : `${out}\n`)
  console.log(`wrote ${spec}`)
}

function generate(outFile) {
  execFileSync(bin, [spec, '--output', outFile, '--alphabetize'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] })
}

if (args.has('--check')) {
  const dir = mkdtempSync(join(tmpdir(), 'dbkeep-api-'))
  try {
    const fresh = join(dir, 'schema.d.ts')
    generate(fresh)
    let committed = ''
    try {
      committed = readFileSync(target, 'utf8')
    } catch {
      // missing counts as stale
    }
    if (readFileSync(fresh, 'utf8') !== committed) {
      console.error(
        'src/api/schema.d.ts is stale: run `npm run gen:api` (after `npm run gen:api -- --dump` if the backend changed) and commit it.',
      )
      process.exit(1)
    }
    console.log('src/api/schema.d.ts matches openapi.json')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
} else {
  generate(target)
  console.log(`wrote ${target}`)
}
