import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Tauri serves the built files from ui/dist through its custom protocol; `npm run dev` serves them
// on a fixed port for `tauri dev`.
export default defineConfig(({ mode }) => ({
  plugins: [svelte()],
  // Component tests mount Svelte in jsdom: resolve Svelte's browser build there.
  resolve: mode === 'test' ? { conditions: ['browser'] } : undefined,
  clearScreen: false,
  server: { port: 5173, strictPort: true },
  build: {
    target: 'safari16',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
}));
