import { http } from './http'
import type { LoginData, LoginRequest, MeData } from './types'

export const authApi = {
  me: () => http.get<MeData>('/api/auth/me'),
  login: (body: LoginRequest) => http.post<LoginData>('/api/auth/login', { body }),
  logout: () => http.post<null>('/api/auth/logout'),
}
