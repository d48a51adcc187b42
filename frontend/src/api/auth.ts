import { http } from './http'
import type { User } from './types'

export const authApi = {
  me: () => http.get<User>('/api/auth/me'),
  login: (email: string, password: string) =>
    http.post<User>('/api/auth/login', { body: { email, password } }),
  logout: () => http.post<unknown>('/api/auth/logout'),
}
