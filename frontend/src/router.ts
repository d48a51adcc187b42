import { createRouter, createWebHistory } from 'vue-router'

import { onUnauthorized } from '@/api/http'
import { forgetSessionHint, loadSession, setSessionUser } from '@/composables/useSession'
import { HOME } from '@/utils/redirect'

export { HOME }

export const router = createRouter({
  history: createWebHistory(import.meta.env.BASE_URL),
  routes: [
    {
      path: '/login',
      name: 'login',
      component: () => import('@/views/LoginView.vue'),
      meta: { title: 'Sign in' },
    },
    {
      path: HOME,
      name: 'backups',
      component: () => import('@/views/BackupsView.vue'),
      meta: { requiresAuth: true, title: 'Database backups' },
    },
    {
      path: '/admin/sources',
      name: 'sources',
      component: () => import('@/views/SourcesView.vue'),
      meta: { requiresAuth: true, title: 'Sources' },
    },
    {
      path: '/admin/notifications',
      name: 'notifications',
      component: () => import('@/views/NotificationsView.vue'),
      meta: { requiresAuth: true, title: 'Notifications' },
    },
    {
      path: '/admin/destinations',
      name: 'destinations',
      component: () => import('@/views/DestinationsView.vue'),
      meta: { requiresAuth: true, title: 'Destinations' },
    },
    { path: '/:rest(.*)*', redirect: HOME },
  ],
})

router.beforeEach(async (to) => {
  let user = null
  try {
    user = await loadSession()
  } catch {
    // Server unreachable: let the page render; it shows the banner and retries.
    return true
  }
  if (to.meta.requiresAuth && !user) {
    return { name: 'login', query: to.fullPath !== HOME ? { redirect: to.fullPath } : {} }
  }
  if (to.name === 'login' && user) return HOME
  return true
})

router.afterEach((to) => {
  const title = typeof to.meta.title === 'string' ? to.meta.title : ''
  document.title = title ? `${title} · dbkeep` : 'dbkeep'
})

onUnauthorized(() => {
  setSessionUser(null)
  forgetSessionHint()
  const current = router.currentRoute.value
  if (current.meta.requiresAuth) {
    void router.push({ name: 'login', query: { redirect: current.fullPath } })
  }
})

declare module 'vue-router' {
  interface RouteMeta {
    requiresAuth?: boolean
    title?: string
  }
}
