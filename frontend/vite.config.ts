import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

// The FastAPI app serves dist/ itself: index.html for the SPA routes and the hashed
// files under /assets/. The dev server proxies the API to a running `dbkeep serve`.
const backend = process.env.DBKEEP_DEV_BACKEND ?? 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/',
  plugins: [vue()],
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
      '^/admin/database-backups/\\d+/download': backend,
    },
  },
})
