import { copyFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig, type Plugin } from 'vite'

// Swagger UI for the API's /docs page, served from dist/swagger/ by the backend so the page
// works without internet access (the CDN it would load from is often out of reach).
function swaggerUi(): Plugin {
  const source = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
  return {
    name: 'dbkeep-swagger-ui',
    apply: 'build',
    writeBundle(options) {
      const target = join(options.dir ?? 'dist', 'swagger')
      mkdirSync(target, { recursive: true })
      for (const name of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
        copyFileSync(join(source, name), join(target, name))
      }
    },
  }
}

// The FastAPI app serves dist/ itself: index.html for the SPA routes and the hashed
// files under /assets/. The dev server proxies the API to a running `dbkeep serve`.
const backend = process.env.DBKEEP_DEV_BACKEND ?? 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/',
  plugins: [vue(), swaggerUi()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/api': backend,
      '/admin/api': backend,
      '/health': backend,
      '^/admin/database-backups/\\d+/download': backend,
    },
  },
})
