#!/usr/bin/env node
// The dashboard's API types come from the backend's OpenAPI document, never by hand.
//   node scripts/gen-api-types.mjs           src/api/schema.d.ts from the committed openapi.json
//   node scripts/gen-api-types.mjs --dump    first refresh openapi.json from the backend
//                                            (../.venv/bin/python, app.main.create_app())
//   node scripts/gen-api-types.mjs --check   fail if openapi.json differs from what the backend
//                                            serves now, or schema.d.ts from what it generates (CI)
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const repo = resolve(root, '..')
const spec = join(root, 'openapi.json')
const target = join(root, 'src', 'api', 'schema.d.ts')
const bin = join(root, 'node_modules', '.bin', 'openapi-typescript')
const python = join(repo, '.venv', 'bin', 'python')
const args = new Set(process.argv.slice(2))

function dumpOpenApi() {
  const code =
    'import json; from app.main import create_app; ' +
    'print(json.dumps(create_app().openapi(), indent=2, sort_keys=True))'
  const out = execFileSync(python, ['-c', code], {
    cwd: repo,
    encoding: 'utf8',
    // A placeholder-free environment: the document must not depend on local settings.
    env: { ...process.env, DBKEEP_ENV: 'test', DBKEEP_SECRET_KEY: 'x'.repeat(48) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return out.endsWith('\n') ? out : `${out}\n`
}

function generate(specFile, outFile) {
  execFileSync(bin, [specFile, '--output', outFile, '--alphabetize'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}

function read(file) {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

if (args.has('--check')) {
  const dir = mkdtempSync(join(tmpdir(), 'dbkeep-api-'))
  let stale = []
  try {
    let source = spec
    if (existsSync(python)) {
      const fresh = dumpOpenApi()
      if (fresh !== read(spec)) stale.push('openapi.json (the backend serves a different document)')
      source = join(dir, 'openapi.json')
      writeFileSync(source, fresh)
    } else {
      console.warn(`no ${python}: checking schema.d.ts against the committed openapi.json only`)
    }
    const types = join(dir, 'schema.d.ts')
    generate(source, types)
    if (read(types) !== read(target)) stale.push('src/api/schema.d.ts')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  if (stale.length) {
    console.error(`Stale API types: ${stale.join(', ')}.`)
    console.error('Run `npm run gen:api -- --dump` in frontend/ and commit openapi.json and src/api/schema.d.ts.')
    process.exit(1)
  }
  console.log('openapi.json and src/api/schema.d.ts match the backend')
} else {
  if (args.has('--dump')) {
    writeFileSync(spec, dumpOpenApi())
    console.log(`wrote ${spec}`)
  }
  generate(spec, target)
  console.log(`wrote ${target}`)
}
