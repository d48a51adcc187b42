import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'

import { useSession } from '@/composables/useSession'
import { admin, jsonResponse } from '@/test/factories'

import LoginView from './LoginView.vue'

describe('LoginView', () => {
  const fetchMock = vi.fn<typeof fetch>()
  beforeEach(() => vi.stubGlobal('fetch', fetchMock))
  afterEach(() => {
    fetchMock.mockReset()
    vi.unstubAllGlobals()
  })

  async function mountLogin(path = '/login') {
    const router = createRouter({
      history: createMemoryHistory(),
      routes: [
        { path: '/login', component: LoginView },
        { path: '/admin/database-backups', component: { template: '<p>backups</p>' } },
      ],
    })
    await router.push(path)
    const wrapper = mount(LoginView, { global: { plugins: [router] } })
    return { wrapper, router }
  }

  it("shows the server's message and clears the password on failure", async () => {
    fetchMock.mockResolvedValue(jsonResponse({ success: false, message: 'These credentials do not match our records.' }, 401))
    const { wrapper, router } = await mountLogin()
    await wrapper.get('#email').setValue('a@example.com')
    await wrapper.get('#password').setValue('wrong')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(wrapper.get('[data-testid="login-error"]').text()).toBe('These credentials do not match our records.')
    expect(wrapper.get<HTMLInputElement>('#password').element.value).toBe('')
    expect(router.currentRoute.value.path).toBe('/login')
  })

  it('signs in and goes where the person was headed (same app only)', async () => {
    fetchMock.mockResolvedValue(
      jsonResponse({ success: true, message: 'Logged in.', data: { user: admin(), csrf_token: 't', expires_at: '2026-02-01T00:00:00Z' } }),
    )
    const { wrapper, router } = await mountLogin('/login?redirect=/admin/database-backups?page=2')
    await wrapper.get('#email').setValue(' admin@example.com ')
    await wrapper.get('#password').setValue('s3cret')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(JSON.parse(String(fetchMock.mock.calls[0]?.[1]?.body))).toEqual({ email: 'admin@example.com', password: 's3cret' })
    expect(router.currentRoute.value.fullPath).toBe('/admin/database-backups?page=2')
    expect(useSession().user.value?.email).toBe('admin@example.com')
  })

  it('never follows a redirect to another site', async () => {
    fetchMock.mockResolvedValue(
      jsonResponse({ success: true, message: 'Logged in.', data: { user: admin(), csrf_token: 't', expires_at: '2026-02-01T00:00:00Z' } }),
    )
    const { wrapper, router } = await mountLogin('/login?redirect=//evil.example.com/x')
    await wrapper.get('#email').setValue('admin@example.com')
    await wrapper.get('#password').setValue('s3cret')
    await wrapper.get('form').trigger('submit')
    await flushPromises()
    expect(router.currentRoute.value.fullPath).toBe('/admin/database-backups')
  })
})
