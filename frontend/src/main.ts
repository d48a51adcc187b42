import { createApp } from 'vue'

import App from './App.vue'
import { watchBrowserConnectivity } from './composables/useConnection'
import { router } from './router'
import './styles/main.css'

watchBrowserConnectivity()
createApp(App).use(router).mount('#app')
